"""Starting sweeps from the window: the sweep dialog, the built-in examples, Continue a sweep…, and the
comparison a finished sweep opens. The runs themselves go through ``RunController`` (the CLI's sweep loop)."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QInputDialog, QMessageBox

from workbench.errors import WorkbenchError
from workbench.gui.workers import in_background
from workbench.store.statuses import OPEN_SWEEPS, SweepStatus


class SweepLauncher(QObject):
    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.dialog = None
        self.last_sweep_id: int | None = None
        window.runner.sweep_ended.connect(self._ended)

    def _refuse_if_busy(self) -> bool:
        if self.window.runner.busy:
            self.window.show_error("Cannot start a sweep", "A run or a sweep is in progress; stop it first.")
            return True
        return False

    def open_dialog(self, example: str | None = None) -> bool:
        """The sweep dialog over the current config (prefilled with a built-in example); True if one started."""
        from workbench.gui.sweep_dialog import SweepDialog
        from workbench.sweeps import EXAMPLES

        if self._refuse_if_busy():
            return False
        try:
            base = self.window.current_config()
        except WorkbenchError as exc:
            self.window.show_error("Cannot start a sweep", str(exc))
            return False
        self.dialog = SweepDialog(base, EXAMPLES.get(example) if example else None, self.window)
        if self.dialog.exec() != SweepDialog.Accepted or self.dialog.spec is None:
            return False
        self.window.runner.start_sweep(self.dialog.spec)
        return True

    def start_example(self, key: str) -> bool:
        """One click: the built-in example ``key`` over the current config, queued and started."""
        from workbench.sweeps import EXAMPLES, sweep_from_dict

        if self._refuse_if_busy():
            return False
        try:
            spec = sweep_from_dict(EXAMPLES[key], source=f"example sweep {key}", base=self.window.current_config())
            count = spec.run_count
        except WorkbenchError as exc:
            self.window.show_error("Cannot start a sweep", str(exc))
            return False
        self.window.runner.start_sweep(spec)
        self.window.statusBar().showMessage(f"sweep {spec.name}: {count} runs queued over the current config; "
                                            "Run → Pause or Cancel the sweep stops it", 15000)
        return True

    def choose_and_continue(self) -> None:
        """Ask which unfinished sweep to continue, then run what is left of it."""
        repository = self.window.repository
        if repository is None or self.window.runner.busy:
            return
        in_background(lambda: [s for s in repository.sweeps.list_all()
                               if s.status in OPEN_SWEEPS], "open-sweeps",
                      then=self._choose, failed=lambda message: self.window.show_error("Continue a sweep", message))

    def _choose(self, open_sweeps) -> None:
        if not open_sweeps:
            QMessageBox.information(self.window, "Continue a sweep", "No sweep has runs left.")
            return
        labels = [f"{s.id}: {s.name} ({sum(i.status in ('queued', 'interrupted', 'running') for i in s.items)} "
                  f"runs left, {s.status})" for s in open_sweeps]
        choice, ok = QInputDialog.getItem(self.window, "Continue a sweep", "Sweep", labels, 0, False)
        if ok:
            self.window.runner.continue_sweep(open_sweeps[labels.index(choice)].id)

    def _ended(self, ended) -> None:
        """A completed sweep's runs, selected and compared, grouped by seed (what a sweep varies across)."""
        self.last_sweep_id = ended.sweep_id
        self.window.statusBar().showMessage(f"sweep {ended.sweep_id}: {ended.status}", 15000)
        if ended.status != SweepStatus.COMPLETED or self.window.runner.closing:
            return
        repository = self.window.repository
        in_background(lambda: [i.run_id for i in repository.sweeps.get(ended.sweep_id).items
                               if i.run_id is not None], "sweep-runs", then=self._compare)

    def _compare(self, run_ids: list[int]) -> None:
        def show() -> None:
            self.window.runs.select_runs(run_ids)
            self.window.run_actions.compare_runs(run_ids, group_by="seed")
            self.window.docks["compare"].raise_()

        self.window.runs.refresh(background=True, then=show)
