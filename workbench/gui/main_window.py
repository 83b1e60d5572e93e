"""The main window: dockable panels, menus, toolbar, status bar, and the training thread.

Panels lay out and forward; the window wires them together and owns the two
background jobs (preparing a corpus, training a run). The layout, geometry,
last corpus and last settings are restored from ``QSettings`` (versioned).
Nothing here imports torch at start-up: the window paints first, the model
code loads when a run starts or a checkpoint is opened.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QWidget

from workbench import __version__
from workbench.formatting import duration
from workbench.config import WorkbenchConfig, dumps_toml
from workbench.packaged import icon_path
from workbench.redaction import scrub
from workbench.gui.dock_layout import default_state, hide_empty_tab_bars
from workbench.gui.panels.compare_panel import ComparePanel
from workbench.gui.panels.corpus_panel import CorpusPanel
from workbench.gui.panels.finetune_panel import FinetunePanel
from workbench.gui.panels.masking_panel import MaskingPanel
from workbench.gui.panels.plots_panel import PlotsPanel
from workbench.gui.panels.probe_panel import ProbePanel
from workbench.gui.panels.runs_panel import RunsPanel
from workbench.gui.panels.training_panel import TrainingPanel
from workbench.gui.run_settings import RunSettings
from workbench.gui.workers import (FinetuneWorker, PrepareWorker, TrainingWorker, start_in_thread,
                                   wait_for_background)
from workbench.user_folders import data_folder

SETTINGS_VERSION = 3  # 2: the Fine-tune panel, 3: the Compare panel (an older saved layout would hide them)
ICON = icon_path()       # shipped inside the package: an installed wheel has it too
SHORTCUTS = (("Ctrl+R", "Start a run"), ("Ctrl+P", "Pause / resume"), ("Ctrl+.", "Stop (saves a checkpoint)"),
             ("Ctrl+O", "Open corpus files"), ("Ctrl+Shift+O", "Open corpus folder"), ("Ctrl+N", "Next masking example"),
             ("Ctrl+E", "Export model"), ("Ctrl+Q", "Quit"))


class MainWindow(QMainWindow):
    def __init__(self, db: str | None = None, data_dir: str | Path | None = None, settings: QSettings | None = None,
                 prepare_on_start: bool = True):
        super().__init__()
        from workbench.store.location import resolve_url

        self.setWindowTitle("Pre-training Workbench")
        if ICON.exists():
            self.setWindowIcon(QIcon(str(ICON)))
        self.data_dir = Path(data_dir) if data_dir else data_folder()
        self.db_url = resolve_url(db)
        self.repository = None  # opened right after the first paint (SQLAlchemy and Alembic take ~1 s to load)
        self.settings = settings or QSettings("pretrain-workbench", "workbench")
        self.dataset = None
        self.prepare_job = None      # (thread, worker)
        self.training_job = None     # (thread, worker)
        self.run_id = None
        self.sweep: dict | None = None   # the sweep the window is running: id, name, the item in progress
        self.last_error = ""
        self.closing = False
        self.step_times: list[tuple[float, int]] = []

        import pyqtgraph as pg

        palette = self.palette()  # plots follow the light or dark system palette
        # Colour names, not QColor objects: a QColor kept in pyqtgraph's global options outlives the
        # application and crashes the interpreter at exit.
        pg.setConfigOptions(background=palette.base().color().name(), foreground=palette.text().color().name())
        self.corpus = CorpusPanel(datasets_root=self.data_dir / "datasets")
        self.run_settings = RunSettings(parent=self)     # the window's one WorkbenchConfig, shared by the panels
        self.masking = MaskingPanel(self.run_settings)
        self.training = TrainingPanel(self.run_settings)
        self.plots = PlotsPanel()
        self.runs = RunsPanel()
        self.compare = ComparePanel()
        self.probe = ProbePanel()
        self.finetune = FinetunePanel()
        self.finetune_job = None     # (thread, worker)
        self.panels = {"training": ("Training", self.training), "corpus": ("Corpus", self.corpus),
                       "plots": ("Live plots", self.plots), "masking": ("Masking preview", self.masking),
                       "runs": ("Runs", self.runs), "compare": ("Compare", self.compare),
                       "probe": ("Probe", self.probe), "finetune": ("Fine-tune", self.finetune)}
        self.docks: dict[str, QDockWidget] = {key: self._new_dock(key) for key in self.panels}
        self.setDockNestingEnabled(True)
        central = QWidget()
        central.setMaximumSize(0, 0)
        self.setCentralWidget(central)
        self.default_state = default_state(list(self.panels), SETTINGS_VERSION)

        self._build_actions()
        self._build_status_bar()
        self._connect()
        self.resize(1500, 950)
        self.restored_layout = self._restore_settings()
        if not self.restored_layout:      # the one restore into fresh docks: Qt draws no stale tab bars then
            self.restoreState(self.default_state, SETTINGS_VERSION)
        QTimer.singleShot(0, self.open_repository)
        if prepare_on_start:
            QTimer.singleShot(0, self.corpus.request_prepare)

    def open_repository(self) -> None:
        """Open (and, if needed, create or upgrade) the run database; errors become a message."""
        if self.repository is not None:
            return
        from workbench.errors import WorkbenchError
        from workbench.store.repository import RunRepository

        try:
            self.repository = RunRepository(self.db_url)
        except WorkbenchError as exc:
            self.show_error("Cannot open the run database", str(exc))
            return
        self.runs.set_repository(self.repository)
        self.compare.set_repository(self.repository)

    # --- layout ------------------------------------------------------------------------------------

    def _new_dock(self, key: str) -> QDockWidget:
        title, panel = self.panels[key]
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{key}Dock")
        dock.setWidget(panel)
        return dock

    def _default_sizes(self) -> None:
        """Give the curves most of the height once the window has its real size."""
        d = self.docks
        width, height = self.width(), self.height()
        self.resizeDocks([d["training"], d["plots"]], [430, width - 440], Qt.Horizontal)
        self.resizeDocks([d["plots"], d["runs"]], [int(height * 0.66), int(height * 0.26)], Qt.Vertical)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not getattr(self, "_sized", False):
            self._sized = True
            if not self.restored_layout:
                QTimer.singleShot(0, self._default_sizes)

    def reset_layout(self) -> None:
        """The default arrangement, in new docks holding the same panels: restoring a state over docks that
        are laid out leaves Qt's old tab bars drawn (see ``dock_layout``)."""
        import shiboken6

        for key, old in list(self.docks.items()):
            self.docks[key] = self._new_dock(key)        # takes the panel over
            self.removeDockWidget(old)
            shiboken6.delete(old)                       # now, with its View action: its name must not be found
        self.view_menu.insertActions(self.view_menu.actions()[0] if self.view_menu.actions() else None,
                                     [dock.toggleViewAction() for dock in self.docks.values()])
        self.restoreState(self.default_state, SETTINGS_VERSION)
        hide_empty_tab_bars(self)
        self._default_sizes()

    def _build_actions(self) -> None:
        def action(text, slot, shortcut=None, tip=""):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip)
            a.triggered.connect(slot)
            return a

        self.start_action = action("Start", self.training.start_button.click, "Ctrl+R", "Start a new run")
        self.pause_action = action("Pause / Resume", self.training.pause_button.click, "Ctrl+P")
        self.stop_action = action("Stop", self.training.stop_button.click, "Ctrl+.", "Stop and save a checkpoint")
        menu = self.menuBar().addMenu("&File")
        menu.addAction(action("Open corpus files…", self.corpus._open_files, "Ctrl+O"))
        menu.addAction(action("Open corpus folder…", self.corpus._open_folder, "Ctrl+Shift+O"))
        menu.addAction(action("Use the sample corpus", self.corpus.choose_sample))
        menu.addSeparator()
        menu.addAction(action("Open database…", self._open_database, tip="Show the runs of another run database"))
        menu.addAction(action("Export model…", self._export_selected, "Ctrl+E"))
        menu.addSeparator()
        menu.addAction(action("Quit", self.close, "Ctrl+Q"))
        menu = self.menuBar().addMenu("&Run")
        for a in (self.start_action, self.pause_action, self.stop_action):
            menu.addAction(a)
        menu.addAction(action("Resume an interrupted run…", self._resume_interrupted))
        menu.addSeparator()
        menu.addAction(action("New sweep…", lambda: self.open_sweep_dialog(), tip="Vary settings over the current "
                              "config; the runs go one after another"))
        menu.addAction(action("Continue a sweep…", self._continue_sweep, tip="Run what is left of a sweep"))
        menu.addAction(action("Pause the sweep", self.pause_sweep, tip="The run in progress finishes; no new "
                              "one starts"))
        menu.addAction(action("Cancel the sweep", self.cancel_sweep, tip="Stop the run in progress (with a "
                              "checkpoint) and cancel the waiting runs"))
        menu = self.view_menu = self.menuBar().addMenu("&View")
        for dock in self.docks.values():
            menu.addAction(dock.toggleViewAction())
        menu.addSeparator()
        menu.addAction(action("Reset layout", self.reset_layout))
        menu = self.menuBar().addMenu("&Help")
        menu.addAction(action("Keyboard shortcuts", self._show_shortcuts, "F1"))
        examples = menu.addMenu("Example sweeps")
        from workbench.sweeps import EXAMPLES

        for key, example in EXAMPLES.items():
            examples.addAction(action(example["name"], lambda _=False, k=key: self.start_example_sweep(k),
                                      tip="Queue and start it over the current config (Run → Pause or Cancel the "
                                          "sweep stops it; Run → New sweep… edits an example first)"))
        menu.addAction(action("About", self._show_about))
        toolbar = self.addToolBar("Run")
        toolbar.setObjectName("runToolbar")
        for a in (self.start_action, self.pause_action, self.stop_action):
            toolbar.addAction(a)

    def _build_status_bar(self) -> None:
        self.device_label = QLabel("device: chosen when a run starts", objectName="statusDevice")
        self.state_label = QLabel("idle", objectName="statusState")
        self.rate_label = QLabel("", objectName="statusRate")
        for label in (self.state_label, self.rate_label, self.device_label):
            self.statusBar().addPermanentWidget(label)

    def _connect(self) -> None:
        self.corpus.prepare_requested.connect(self.prepare)
        self.corpus.cancel_requested.connect(self.cancel_prepare)
        self.training.start_requested.connect(self.start_training)
        self.training.pause_requested.connect(self.pause_training)
        self.training.resume_requested.connect(self.resume_training)
        self.training.stop_requested.connect(self.stop_training)
        self.runs.resume_requested.connect(self.resume_run)
        self.runs.new_run_requested.connect(self.new_run_from_config)
        self.runs.export_requested.connect(self.export_run)
        self.runs.curves_requested.connect(self.show_run_curves)
        self.runs.model_requested.connect(self.use_run_model)
        self.runs.selection_changed.connect(self.compare_runs)
        self.finetune.start_requested.connect(self.start_finetune)
        self.finetune.stop_requested.connect(self.stop_finetune)

    # --- settings ----------------------------------------------------------------------------------------

    def _restore_settings(self) -> bool:
        s = self.settings
        if int(s.value("version", 0) or 0) != SETTINGS_VERSION:
            return False  # no settings, or another version's: start from the defaults
        geometry, state = s.value("geometry"), s.value("state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        restored = isinstance(state, QByteArray) and self.restoreState(state, SETTINGS_VERSION)
        sources = s.value("corpus/sources") or []
        sources = [sources] if isinstance(sources, str) else list(sources)
        self.corpus.set_sources(sources, sample=str(s.value("corpus/sample", "true")).lower() == "true" or not sources)
        text = s.value("training/config")
        if text:
            try:
                import tomllib

                config = WorkbenchConfig.from_dict(tomllib.loads(text))
                config.data.dataset = ""
                self.apply_config(config)
            except Exception:  # a stale or hand-edited setting: keep the defaults
                pass
        return restored

    def save_settings(self) -> None:
        s = self.settings
        s.setValue("version", SETTINGS_VERSION)
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState(SETTINGS_VERSION))
        s.setValue("corpus/sources", self.corpus.sources)
        s.setValue("corpus/sample", "true" if self.corpus.use_sample else "false")
        try:
            s.setValue("training/config", dumps_toml(self.current_config()))
        except Exception:  # an invalid form is not saved
            pass
        s.sync()

    # --- errors ------------------------------------------------------------------------------------------

    def show_error(self, title: str, message: str) -> None:
        """A message in a dialog (non-blocking); the window stays usable. No secret is ever shown."""
        message = scrub(message)
        self.last_error = message
        box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self)
        box.setObjectName("errorDialog")
        box.setAttribute(Qt.WA_DeleteOnClose)
        box.open()

    # --- corpus --------------------------------------------------------------------------------------------

    def prepare(self, sources: list, sample: bool, out_dir: str, config: WorkbenchConfig) -> None:
        if self.prepare_job is not None:
            return
        worker = PrepareWorker(sources, out_dir, config, sample)
        worker.progress.connect(self.corpus.show_progress)
        worker.done.connect(self._prepared)
        worker.failed.connect(self._prepare_failed)
        self.corpus.set_busy(True)
        self.prepare_job = (start_in_thread(worker, self), worker)

    def cancel_prepare(self) -> None:
        if self.prepare_job is not None:
            self.prepare_job[1].cancel()

    def _prepared(self, result) -> None:
        self.prepare_job = None
        self.corpus.set_busy(False)
        self.set_dataset(result.dataset)

    def _prepare_failed(self, message: str) -> None:
        self.prepare_job = None
        self.corpus.set_busy(False)
        self.corpus.progress.setFormat("not prepared")
        if "cancelled" not in message:
            self.show_error("Cannot prepare the corpus", message)

    def set_dataset(self, dataset) -> None:
        self.dataset = dataset
        self.corpus.show_dataset(dataset)
        self.training.set_dataset(str(dataset.path))
        self.masking.set_dataset(dataset)
        self.statusBar().showMessage(f"dataset ready: {dataset.path}", 5000)

    # --- training ---------------------------------------------------------------------------------------------

    def current_config(self) -> WorkbenchConfig:
        config = self.run_settings.validated()
        config.train.output_dir = str(self.data_dir / "runs")
        return config

    def apply_config(self, config: WorkbenchConfig) -> None:
        """Every setting from ``config`` (the dataset stays the window's when ``config`` names none)."""
        if not config.data.dataset and self.dataset is not None:
            config.data.dataset = str(self.dataset.path)
        self.run_settings.replace(config)

    def start_training(self, _form_config=None, resume: str | None = None,
                       config: WorkbenchConfig | None = None) -> None:
        """Start a new run from the form, or resume one (``resume``: a run id or a checkpoint folder)."""
        if self.training_job is not None:
            return
        from workbench.errors import WorkbenchError

        try:
            config = config or self.current_config()
            config.validate()
        except WorkbenchError as exc:
            self.show_error("Cannot start the run", str(exc))
            return
        if resume is None:
            self.plots.clear()
        worker = TrainingWorker(config, self.db_url, resume=resume)
        worker.event.connect(self._on_event)
        worker.done.connect(self._training_done)
        worker.failed.connect(self._training_failed)
        worker.run_recorded.connect(self._run_recorded)
        self.training.set_state("starting")
        self.state_label.setText("starting…")
        self.step_times.clear()
        self.training_job = (start_in_thread(worker, self), worker)
        self.docks["plots"].raise_()

    def _run_recorded(self, run_id: int) -> None:
        self.run_id = run_id
        if self.sweep is not None and self.sweep["item"] is not None:
            from workbench.store import sweep_queue

            sweep_queue.link_run(self.repository, self.sweep["item"].item_id, run_id, self.sweep["name"])
        self.runs.refresh(background=True)

    def _on_event(self, event) -> None:
        kind = event.type
        if kind == "started":
            self.device_label.setText(f"device: {event.device}, {event.precision}")
            self.training.set_state("running")
            self.state_label.setText(f"running: {Path(event.run_dir).name}")
            self.max_steps = event.max_steps
        elif kind == "step":
            self.plots.add_event(event)
            self.training.show_progress(event.step, self.max_steps, event.progress, event.eta_seconds)
            self.rate_label.setText(f"{1.0 / max(event.step_time, 1e-9):.1f} steps/s · "
                                    f"{event.tokens_per_second:,.0f} tokens/s · ETA {duration(event.eta_seconds)}")
        elif kind == "eval":
            self.plots.add_event(event)
        elif kind == "state":
            self.training.set_state("paused" if event.state == "paused" else "running")
            self.state_label.setText(event.state)
        elif kind == "notice":
            self.statusBar().showMessage(event.message, 10000)
        elif kind == "checkpoint":
            self.statusBar().showMessage(f"checkpoint saved at step {event.step}", 4000)

    def pause_training(self) -> None:
        if self.training_job:
            self.training_job[1].control.pause()

    def resume_training(self) -> None:
        if self.training_job:
            self.training_job[1].control.resume()

    def stop_training(self, reason: str = "stopped from the window") -> None:
        """Stop the run with a checkpoint; in a sweep, the sweep pauses (Continue a sweep… resumes this run)."""
        if self.sweep is not None:
            self.sweep["stopping"] = True
        if self.training_job:
            self.training.set_state("stopping")
            self.state_label.setText("stopping: saving a checkpoint…")
            self.training_job[1].control.stop(reason)

    def _training_done(self, result) -> None:
        self.training_job = None
        if self.sweep is not None and self.sweep["item"] is not None:
            self._sweep_item_ended(result.status)
        if result.last_checkpoint:
            self.finetune.set_source(str(Path(result.last_checkpoint).parent.parent))
        self.training.set_state("finished")
        self.state_label.setText(f"{result.status} at step {result.step}")
        self.runs.refresh(background=True)
        if result.status == "failed":
            self.show_error("Training failed", result.reason)
        elif result.last_checkpoint and not self.closing:
            self.load_model(result.last_checkpoint, f"run {self.run_id}, {Path(result.last_checkpoint).name}")

    # --- fine-tuning ----------------------------------------------------------------------------------------------

    def start_finetune(self, request: dict) -> None:
        if self.finetune_job is not None:
            return
        worker = FinetuneWorker(request, self.db_url)
        worker.point.connect(self.finetune.add_point)
        worker.done.connect(self._finetune_done)
        worker.failed.connect(self._finetune_failed)
        self.finetune.set_running(True)
        self.finetune_job = (start_in_thread(worker, self), worker)
        self.docks["finetune"].raise_()

    def stop_finetune(self) -> None:
        if self.finetune_job:
            self.finetune_job[1].stop()

    def _finetune_done(self, summary: dict, recorded) -> None:
        self.finetune_job = None
        self.finetune.set_running(False)
        self.finetune.show_result(summary, recorded)
        self.runs.refresh(background=True)

    def _finetune_failed(self, message: str) -> None:
        self.finetune_job = None
        self.finetune.set_running(False)
        self.finetune.status.setText("failed")
        self.show_error("Fine-tuning failed", message)

    def _training_failed(self, message: str) -> None:
        self.training_job = None
        if self.sweep is not None and self.sweep["item"] is not None:
            self._sweep_item_ended("failed")
        self.training.set_state("finished")
        self.state_label.setText("failed")
        self.runs.refresh(background=True)
        self.show_error("Training failed", message)

    # --- sweeps: the queue lives in the database; the window runs its items through start_training ---------

    def open_sweep_dialog(self, example: str | None = None) -> bool:
        """The sweep dialog over the current config (prefilled with a built-in example); True if one started."""
        from workbench.errors import WorkbenchError
        from workbench.gui.sweep_dialog import SweepDialog
        from workbench.sweeps import EXAMPLES

        if self.sweep is not None or self.training_job is not None:
            self.show_error("Cannot start a sweep", "A run or a sweep is in progress; stop it first.")
            return False
        try:
            base = self.current_config()
        except WorkbenchError as exc:
            self.show_error("Cannot start a sweep", str(exc))
            return False
        dialog = SweepDialog(base, EXAMPLES.get(example) if example else None, self)
        self.sweep_dialog = dialog
        if dialog.exec() != SweepDialog.Accepted or dialog.spec is None:
            return False
        self.start_sweep(dialog.spec)
        return True

    def start_example_sweep(self, key: str) -> int | None:
        """One click: the built-in example ``key`` over the current config, queued and started; the sweep's id."""
        from workbench.errors import WorkbenchError
        from workbench.sweeps import EXAMPLES, sweep_from_dict

        if self.sweep is not None or self.training_job is not None:
            self.show_error("Cannot start a sweep", "A run or a sweep is in progress; stop it first.")
            return None
        try:
            spec = sweep_from_dict(EXAMPLES[key], source=f"example sweep {key}", base=self.current_config())
            count = spec.run_count
        except WorkbenchError as exc:
            self.show_error("Cannot start a sweep", str(exc))
            return None
        sweep_id = self.start_sweep(spec)
        if sweep_id is not None:
            self.statusBar().showMessage(f"sweep {sweep_id} ({spec.name}): {count} runs queued over the current "
                                         f"config; Run → Pause or Cancel the sweep stops it", 15000)
        return sweep_id

    def start_sweep(self, spec) -> int | None:
        """Queue ``spec``'s runs in the database and start the first; the sweep's id."""
        from workbench.store import sweep_queue

        if self.repository is None:
            self.show_error("Cannot start a sweep", "The run database is not open.")
            return None
        runs = spec.runs
        sweep_id = sweep_queue.create_sweep(self.repository, spec.name, spec.to_dict(), spec.swept,
                                            [(run.label, run.config.to_dict()) for run in runs])
        self._drive_sweep(sweep_id, spec.name)
        return sweep_id

    def _drive_sweep(self, sweep_id: int, name: str) -> None:
        from workbench.services.sweep_runner import start_sweep

        start_sweep(self.repository, sweep_id, say=lambda message: self.statusBar().showMessage(message, 15000))
        self.sweep = {"id": sweep_id, "name": name, "item": None}
        self._next_sweep_run()

    def _next_sweep_run(self) -> None:
        from workbench.config import WorkbenchConfig
        from workbench.store import sweep_queue

        if self.sweep is None or self.closing:
            return
        sweep_id = self.sweep["id"]
        step = sweep_queue.claim_next(self.repository, sweep_id)
        if step is None:
            sweep = sweep_queue.get_sweep(self.repository, sweep_id)
            self.sweep = None
            self.statusBar().showMessage(f"sweep {sweep_id} ({sweep.name}): {sweep.status}", 15000)
            if sweep.status == "completed":          # compare its runs, grouped by what was swept
                self.runs.refresh()
                ids = [item.run_id for item in sweep.items if item.run_id is not None]
                self.runs.select_runs(ids)
                self.compare_runs(ids, group_by="seed")
                self.docks["compare"].raise_()
            return
        self.sweep["item"] = step
        left = sum(1 for i in sweep_queue.get_sweep(self.repository, sweep_id).items if i.status == "queued")
        self.statusBar().showMessage(f"sweep {sweep_id}: {step.label} ({left} more queued)", 15000)
        if step.resume_run_id is not None:
            self.start_training(resume=str(step.resume_run_id))
        else:
            config = WorkbenchConfig.from_dict(step.config, source=f"sweep {sweep_id}")
            if self.dataset is not None:
                config.data.dataset = str(self.dataset.path)
            self.start_training(config=config)
        if self.training_job is None:                # refused (a message was shown): the item did not run
            sweep_queue.finish_item(self.repository, step.item_id, "failed")
            self.sweep["item"] = None
            QTimer.singleShot(0, self._next_sweep_run)

    def _sweep_item_ended(self, status: str) -> None:
        from workbench.store import sweep_queue

        item, self.sweep["item"] = self.sweep["item"], None
        if status == "stopped" and (self.closing or self.sweep.get("stopping")):
            sweep_queue.finish_item(self.repository, item.item_id, "interrupted")   # resumed when continued
            if not self.sweep.get("cancelled"):
                sweep_queue.set_status(self.repository, self.sweep["id"], "paused")
            self.sweep = None
            return
        sweep_queue.finish_item(self.repository, item.item_id, status)
        QTimer.singleShot(0, self._next_sweep_run)

    def pause_sweep(self) -> None:
        """The run in progress finishes; no new one starts (Continue a sweep… picks it up again)."""
        from workbench.store import sweep_queue

        if self.sweep is not None:
            sweep_queue.set_status(self.repository, self.sweep["id"], "paused")
            self.statusBar().showMessage(f"sweep {self.sweep['id']} pauses after the run in progress", 10000)

    def cancel_sweep(self) -> None:
        from workbench.store import sweep_queue

        if self.sweep is None:
            return
        self.sweep["cancelled"] = self.sweep["stopping"] = True
        sweep_queue.set_status(self.repository, self.sweep["id"], "cancelled")
        if self.training_job is not None:
            self.stop_training("the sweep was cancelled")
        else:
            self.sweep = None

    def _continue_sweep(self) -> None:
        from workbench.store import sweep_queue

        if self.repository is None or self.sweep is not None or self.training_job is not None:
            return
        open_sweeps = [s for s in sweep_queue.list_sweeps(self.repository)
                       if s.status in ("queued", "running", "paused")]
        if not open_sweeps:
            QMessageBox.information(self, "Continue a sweep", "No sweep has runs left.")
            return
        labels = [f"{s.id}: {s.name} ({sum(i.status in ('queued', 'interrupted', 'running') for i in s.items)} "
                  f"runs left, {s.status})" for s in open_sweeps]
        from PySide6.QtWidgets import QInputDialog

        choice, ok = QInputDialog.getItem(self, "Continue a sweep", "Sweep", labels, 0, False)
        if ok:
            chosen = open_sweeps[labels.index(choice)]
            self._drive_sweep(chosen.id, chosen.name)

    def training_running(self) -> bool:
        return self.training_job is not None

    # --- runs ------------------------------------------------------------------------------------------------

    def load_model(self, path: str, description: str) -> None:
        from workbench.errors import WorkbenchError
        from workbench.interop.huggingface import load_for_inference

        try:
            model, tokenizer, config = load_for_inference(path)
        except WorkbenchError as exc:
            self.show_error("Cannot load the model", str(exc))
            return
        self.probe.set_model(model, tokenizer, description, pair_task=config is None or config.nsp.pair_task)
        self.masking.set_model(model, tokenizer, self._run_checkpoint_folder(path))

    @staticmethod
    def _run_checkpoint_folder(path: str) -> Path | None:
        """The checkpoint folder ``path`` names (a run or one of its checkpoints), None for an export."""
        from workbench.interop.huggingface import is_hf_directory
        from workbench.checkpoint import CheckpointError, find_checkpoint

        if is_hf_directory(Path(path)):
            return None
        try:
            return find_checkpoint(path)
        except CheckpointError:
            return None

    def _checkpoint_of(self, run_id: int) -> str | None:
        from workbench.checkpoint import CheckpointError, find_checkpoint

        self.open_repository()
        run = self.repository.get(run_id)
        try:
            return str(find_checkpoint(run.run_dir))
        except CheckpointError:
            self.show_error("No checkpoint", f"Run {run_id} has no checkpoint in {run.run_dir}.")
            return None

    def use_run_model(self, run_id: int) -> None:
        path = self._checkpoint_of(run_id)
        if path:
            self.load_model(path, f"run {run_id}, {Path(path).name}")

    def resume_run(self, run_id: int) -> None:
        from workbench.errors import WorkbenchError
        from workbench.services.run_launch import find_resume_target

        self.open_repository()
        try:
            target = find_resume_target(str(run_id), self.repository)
            config: WorkbenchConfig = target.config()
        except WorkbenchError as exc:
            self.show_error("Cannot resume", str(exc))
            return
        run = self.repository.get(run_id)
        if run.status == "completed" and run.steps >= config.train.max_steps:
            config.train.max_steps = run.steps + max(100, run.steps // 2)  # a finished run continues for longer
        self.show_run_curves(run_id)
        self.start_training(resume=str(run_id), config=config)

    def _resume_interrupted(self) -> None:
        self.open_repository()
        interrupted = self.repository.list_runs(status="interrupted")
        if not interrupted:
            QMessageBox.information(self, "Resume", "No interrupted run.")
            return
        self.resume_run(interrupted[-1].id)

    def new_run_from_config(self, stored: dict) -> None:
        try:
            config = WorkbenchConfig.from_dict(stored)
        except Exception as exc:
            self.show_error("Cannot use this config", str(exc))
            return
        config.train.name = ""
        dataset = config.data.dataset
        config.data.dataset = ""
        self.apply_config(config)
        if dataset and Path(dataset).exists():
            from workbench.data.dataset import TokenizedDataset

            self.set_dataset(TokenizedDataset(dataset))
        self.docks["training"].raise_()

    def compare_runs(self, run_ids: list[int], group_by: str | None = None) -> None:
        """Draw these runs in the Compare panel (brought to the front when two or more are chosen)."""
        runs = [self.runs.runs[i] for i in run_ids if i in self.runs.runs]
        self.compare.show_runs(runs, group_by)
        if len(runs) >= 2:
            self.docks["compare"].raise_()

    def show_run_curves(self, run_id: int) -> None:
        from workbench.store.summary import all_series

        self.open_repository()
        self.plots.load_series(all_series(self.repository, run_id))
        self.docks["plots"].raise_()

    def export_run(self, run_id: int) -> None:
        from workbench.errors import WorkbenchError
        from workbench.interop.huggingface import export_checkpoint

        path = self._checkpoint_of(run_id)
        if path is None:
            return
        out = QFileDialog.getExistingDirectory(self, "Export to folder (a new folder is created inside)")
        if not out:
            return
        target = Path(out) / f"{self.repository.get(run_id).name}-hf"
        try:
            export_checkpoint(path, target)
        except WorkbenchError as exc:
            self.show_error("Export failed", str(exc))
            return
        self.statusBar().showMessage(f"exported to {target}", 8000)

    def _export_selected(self) -> None:
        ids = self.runs.selected_ids()
        if len(ids) == 1:
            self.export_run(ids[0])
        else:
            self.show_error("Export model", "Select one run in the Runs panel to export.")

    def _open_database(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open run database", "", "SQLite databases (*.db *.sqlite);;All files (*)")
        if not path:
            return
        from workbench.errors import WorkbenchError
        from workbench.store.location import resolve_url
        from workbench.store.repository import RunRepository

        try:
            self.repository = RunRepository(path)
        except WorkbenchError as exc:
            self.show_error("Cannot open the database", str(exc))
            return
        self.db_url = resolve_url(path)
        self.runs.set_repository(self.repository)
        self.compare.set_repository(self.repository)

    # --- help ----------------------------------------------------------------------------------------------------

    def _show_shortcuts(self) -> None:
        text = "\n".join(f"{keys:<14} {what}" for keys, what in SHORTCUTS)
        QMessageBox.information(self, "Keyboard shortcuts", text)

    def about_text(self) -> str:
        """Version, torch and Qt versions, device, run database and data folder (the About dialog)."""
        import html

        import PySide6
        import torch

        from workbench.store.database import display_url
        from workbench.train.trainer import describe_device, resolve_device

        rows = [("Version", __version__), ("torch", torch.__version__), ("Qt / PySide6", PySide6.__version__),
                ("Device", describe_device(resolve_device("auto"))), ("Run database", display_url(self.db_url)),
                ("Data folder", str(self.data_dir))]
        table = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>"
                        for k, v in rows)
        return ("<b>Pre-training Workbench</b><br>Run and inspect BERT-style pre-training (MLM + NSP)."
                f"<table>{table}</table>")

    def _show_about(self) -> None:
        QMessageBox.about(self, "About Pre-training Workbench", self.about_text())

    # --- closing ---------------------------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        if self.training_job is not None:
            answer = QMessageBox.question(self, "A run is training",
                                          "Stop the run (a checkpoint is saved) and quit?")
            if answer != QMessageBox.Yes:
                event.ignore()
                return
            self.stop_and_wait()
        if self.prepare_job is not None:
            thread, worker = self.prepare_job
            worker.cancel()
            thread.wait(30_000)
        if self.finetune_job is not None:  # stops at the next step; nothing of it is on disk yet
            thread, worker = self.finetune_job
            worker.stop()
            thread.wait(60_000)
        self.save_settings()
        wait_for_background()             # statistics, guesses or a refresh still reading: let them finish
        event.accept()

    def stop_and_wait(self, timeout_ms: int = 120_000) -> None:
        """Stop the run cleanly (checkpoint, status recorded) and wait for its thread."""
        if self.training_job is None:
            return
        self.closing = True
        thread, _ = self.training_job
        self.stop_training("stopped because the window closed")
        from PySide6.QtCore import QDeadlineTimer, QCoreApplication

        deadline = QDeadlineTimer(timeout_ms)
        while self.training_job is not None and not deadline.hasExpired():
            QCoreApplication.processEvents()
            thread.wait(50)
        QCoreApplication.processEvents()

