"""What the window does with a recorded run: resume it, start a new run from its config, show its curves,
load its model into the probe and the preview, export it, compare runs, open another run database.

Each reads the database or the disk (a resume target verifies checkpoint hashes, an export writes the model,
a model load hashes and builds it) on a worker and finishes on the GUI thread (``in_background``, ``Job``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog, QMessageBox

from workbench.config import WorkbenchConfig
from workbench.gui.jobs import Job
from workbench.gui.workers import LoadedModel, ModelLoadWorker, in_background


class RunActions(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.model_job: Job | None = None
        self.loading: str | None = None       # the model being loaded (its description)

    # --- models ---------------------------------------------------------------------------------------------

    def load_model(self, path: str, description: str) -> None:
        """Load a checkpoint or an export into the probe and the masking preview (on a worker)."""
        if self.window.closing:
            return
        worker = ModelLoadWorker(path, description)
        worker.done.connect(self._model_loaded)
        worker.failed.connect(self._model_failed)
        self.loading = description           # the newest request wins: an older load that ends later is dropped
        self.model_job = Job(worker, self)
        self.window.statusBar().showMessage(f"loading the model of {description}…", 10000)

    def _model_loaded(self, loaded: LoadedModel) -> None:
        if loaded.description != self.loading or self.window.closing:
            return
        self.model_job, self.loading = None, None
        pair_task = loaded.config is None or loaded.config.nsp.pair_task
        self.window.probe.set_model(loaded.model, loaded.tokenizer, loaded.description, pair_task=pair_task)
        self.window.masking.set_model(loaded.model, loaded.tokenizer, loaded.checkpoint)
        self.window.statusBar().showMessage(f"model loaded: {loaded.description}", 5000)

    def _model_failed(self, message: str) -> None:
        self.model_job, self.loading = None, None
        self.window.show_error("Cannot load the model", message)

    def _with_checkpoint(self, run_id: int, then) -> None:
        """``then(run, checkpoint folder)`` for run ``run_id``'s newest checkpoint, or a message if it has none."""
        from workbench.checkpoint import CheckpointError, find_checkpoint

        repository = self.window.repository

        def find():
            run = repository.get(run_id)
            try:
                return run, str(find_checkpoint(run.run_dir))
            except CheckpointError:
                return run, None

        def found(pair) -> None:
            run, path = pair
            if path is None:
                self.window.show_error("No checkpoint", f"Run {run_id} has no checkpoint in {run.run_dir}.")
            else:
                then(run, path)

        in_background(find, "find-checkpoint", then=found,
                      failed=lambda message: self.window.show_error("Cannot read the run", message))

    def use_run_model(self, run_id: int) -> None:
        self._with_checkpoint(run_id, lambda run, path: self.load_model(path, f"run {run_id}, {Path(path).name}"))

    # --- runs -----------------------------------------------------------------------------------------------

    def resume_run(self, run_id: int) -> None:
        """Continue run ``run_id`` from its newest good checkpoint (a finished run trains half as long again)."""
        from workbench.services.run_launch import find_resume_target

        repository = self.window.repository

        def target():
            run = repository.get(run_id)
            config: WorkbenchConfig = find_resume_target(str(run_id), repository).config()
            if run.status == "completed" and run.steps >= config.train.max_steps:
                config.train.max_steps = run.steps + max(100, run.steps // 2)
            return config

        def start(config: WorkbenchConfig) -> None:
            self.show_run_curves(run_id)
            self.window.runner.start(resume=str(run_id), config=config)

        in_background(target, "resume-target", then=start,
                      failed=lambda message: self.window.show_error("Cannot resume", message))

    def resume_interrupted(self) -> None:
        repository = self.window.repository

        def resume(interrupted) -> None:
            if not interrupted:
                QMessageBox.information(self.window, "Resume", "No interrupted run.")
            else:
                self.resume_run(interrupted[-1].id)

        in_background(lambda: repository.list_runs(status="interrupted"), "interrupted-runs", then=resume,
                      failed=lambda message: self.window.show_error("Cannot read the runs", message))

    def new_run_from_config(self, stored: dict) -> None:
        """The Training form set to a recorded run's config (a new name; its dataset if it still exists)."""
        try:
            config = WorkbenchConfig.from_record(stored)
        except Exception as exc:
            self.window.show_error("Cannot use this config", str(exc))
            return
        config.train.name = ""
        dataset = config.data.dataset
        config.data.dataset = ""
        self.window.apply_config(config)
        if dataset:
            from workbench.data.dataset import TokenizedDataset

            in_background(lambda: TokenizedDataset(dataset) if Path(dataset).exists() else None, "open-dataset",
                          then=lambda opened: opened is not None and self.window.set_dataset(opened),
                          failed=lambda message: self.window.show_error("Cannot open the run's dataset", message))
        self.window.docks["training"].raise_()

    def compare_runs(self, run_ids: list[int], group_by: str | None = None) -> None:
        """Draw these runs in the Compare panel (brought to the front when two or more are chosen)."""
        runs = self.window.runs.records(run_ids)
        self.window.compare.show_runs(runs, group_by)
        if len(runs) >= 2:
            self.window.docks["compare"].raise_()

    def inspect_runs(self, run_ids: list[int]) -> None:
        """These runs (the first two) in the Inspect panel, brought to the front."""
        runs = [r for r in self.window.runs.records(run_ids) if r.run_dir]
        if not runs:
            self.window.show_error("Nothing to inspect", "The run has no folder on this machine.")
            return
        self.window.inspect.show_runs([(f"{r.id}: {r.name}", r.run_dir) for r in runs])
        self.window.docks["inspect"].raise_()

    def show_run_curves(self, run_id: int) -> None:
        from workbench.store.summary import all_series

        repository = self.window.repository
        in_background(lambda: all_series(repository, run_id), "run-curves", then=self._show_series,
                      failed=lambda message: self.window.show_error("Cannot read the run's curves", message))

    def _show_series(self, series) -> None:
        self.window.plots.load_series(series)
        self.window.docks["plots"].raise_()

    def export_run(self, run_id: int) -> None:
        self._with_checkpoint(run_id, self._export)

    def _export(self, run, path: str) -> None:
        from workbench.interop.huggingface import export_checkpoint

        out = QFileDialog.getExistingDirectory(self.window, "Export to folder (a new folder is created inside)")
        if not out:
            return
        target = Path(out) / f"{run.name}-hf"
        self.window.statusBar().showMessage(f"exporting run {run.id} to {target}…", 10000)
        in_background(lambda: export_checkpoint(path, target), "export",
                      then=lambda _: self.window.statusBar().showMessage(f"exported to {target}", 8000),
                      failed=lambda message: self.window.show_error("Export failed", message))

    def export_selected(self) -> None:
        ids = self.window.runs.selected_ids()
        if len(ids) == 1:
            self.export_run(ids[0])
        else:
            self.window.show_error("Export model", "Select one run in the Runs panel to export.")

    def open_database(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open run database", "",
                                              "SQLite databases (*.db *.sqlite);;All files (*)")
        if path:
            self.window.open_repository(path)
