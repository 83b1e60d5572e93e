"""The main window: dockable panels, status bar, the run database, preparing a corpus, and closing.

Panels lay out and forward; the window builds them and wires them together. Training and sweeps belong to
``RunController``, what is done with recorded runs to ``RunActions``, starting sweeps to ``SweepLauncher``,
the menus to ``menus``. The layout, geometry, last corpus and last settings are restored from ``QSettings``
(versioned). Nothing here imports torch at start-up: the window paints first, the model code loads when a
run starts or a checkpoint is opened.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow, QMessageBox, QWidget

from workbench import __version__
from workbench.config import WorkbenchConfig, dumps_toml
from workbench.packaged import icon_path
from workbench.redaction import scrub
from workbench.gui.dock_layout import default_state, hide_empty_tab_bars
from workbench.gui.panels.compare_panel import ComparePanel
from workbench.gui.panels.corpus_panel import CorpusPanel
from workbench.gui.panels.finetune_panel import FinetunePanel
from workbench.gui.panels.inspect_panel import InspectPanel
from workbench.gui.panels.masking_panel import MaskingPanel
from workbench.gui.panels.plots_panel import PlotsPanel
from workbench.gui.panels.probe_panel import ProbePanel
from workbench.gui.panels.runs_panel import RunsPanel
from workbench.gui.panels.training_panel import TrainingPanel
from workbench.gui.run_settings import RunSettings
from workbench.gui.gui_gc import collect_on_gui_thread
from workbench.gui.jobs import Job
from workbench.gui.menus import build_menus
from workbench.gui.panel_registry import PANELS, PanelSpec, areas, layout_version
from workbench.gui.run_actions import RunActions
from workbench.gui.run_controller import RunController
from workbench.gui.sweep_launcher import SweepLauncher
from workbench.gui.workers import FinetuneWorker, PrepareWorker, wait_for_background
from workbench.user_folders import data_folder

ICON = icon_path()       # shipped inside the package: an installed wheel has it too
log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    def __init__(self, db: str | None = None, data_dir: str | Path | None = None, settings: QSettings | None = None,
                 prepare_on_start: bool = True, panels: tuple[PanelSpec, ...] = PANELS):
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
        self.prepare_job: Job | None = None
        self.finetune_job: Job | None = None
        self.last_error = ""
        self.closing = False
        self.collector = collect_on_gui_thread()   # never in a worker thread: see gui_gc

        import pyqtgraph as pg

        palette = self.palette()  # plots follow the light or dark system palette
        # Colour names, not QColor objects: a QColor kept in pyqtgraph's global options outlives the
        # application and crashes the interpreter at exit.
        pg.setConfigOptions(background=palette.base().color().name(), foreground=palette.text().color().name())
        self.run_settings = RunSettings(parent=self)     # the window's one WorkbenchConfig, shared by the panels
        self.panels: dict[str, tuple[str, QWidget]] = {spec.key: (spec.title, spec.build(self)) for spec in panels}
        # The saved layout's version follows the set of panels: an older layout would hide a new panel.
        self.layout_version = layout_version(panels)
        # The panels the window wires together (a panel that talks to no other needs no line here).
        self.training: TrainingPanel = self.panels["training"][1]
        self.corpus: CorpusPanel = self.panels["corpus"][1]
        self.plots: PlotsPanel = self.panels["plots"][1]
        self.masking: MaskingPanel = self.panels["masking"][1]
        self.compare: ComparePanel = self.panels["compare"][1]
        self.runs: RunsPanel = self.panels["runs"][1]
        self.probe: ProbePanel = self.panels["probe"][1]
        self.finetune: FinetunePanel = self.panels["finetune"][1]
        self.inspect: InspectPanel = self.panels["inspect"][1]
        self.docks: dict[str, QDockWidget] = {key: self._new_dock(key) for key in self.panels}
        self.setDockNestingEnabled(True)
        central = QWidget()
        central.setMaximumSize(0, 0)
        self.setCentralWidget(central)
        self.default_state = default_state(areas(panels), self.layout_version)

        self.runner = RunController(self)
        self.run_actions = RunActions(self)
        self.sweeps = SweepLauncher(self)
        build_menus(self)
        self._build_status_bar()
        self._connect()
        self.resize(1500, 950)
        self.restored_layout = self._restore_settings()
        if not self.restored_layout:      # the one restore into fresh docks: Qt draws no stale tab bars then
            self.restoreState(self.default_state, self.layout_version)
        QTimer.singleShot(0, self.open_repository)
        if prepare_on_start:
            QTimer.singleShot(0, self.corpus.request_prepare)

    def open_repository(self, path: str | None = None) -> None:
        """Open (and, if needed, create or upgrade) the run database, or switch to the one at ``path`` (File →
        Open database…); errors become a message.

        This one stays on the GUI thread, right after the first paint (about 1 s with SQLAlchemy and Alembic):
        opened on a worker, its first migration of a fresh database raced with the first run's own open of
        the same file and hung both."""
        if self.repository is not None and path is None:
            return
        from workbench.errors import WorkbenchError
        from workbench.store.location import resolve_url
        from workbench.store.repository import RunRepository

        try:
            self.repository = RunRepository(path or self.db_url)
        except WorkbenchError as exc:
            self.show_error("Cannot open the run database", str(exc))
            return
        self.db_url = resolve_url(path) if path else self.db_url
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
        self.restoreState(self.default_state, self.layout_version)
        hide_empty_tab_bars(self)
        self._default_sizes()

    def _build_status_bar(self) -> None:
        self.device_label = QLabel("device: chosen when a run starts", objectName="statusDevice")
        self.state_label = QLabel("idle", objectName="statusState")
        self.rate_label = QLabel("", objectName="statusRate")
        for label in (self.state_label, self.rate_label, self.device_label):
            self.statusBar().addPermanentWidget(label)

    def _connect(self) -> None:
        self.corpus.prepare_requested.connect(self.prepare)
        self.corpus.cancel_requested.connect(self.cancel_prepare)
        runner, actions = self.runner, self.run_actions
        self.training.start_requested.connect(lambda _config: runner.start())
        self.training.pause_requested.connect(runner.pause)
        self.training.resume_requested.connect(runner.resume)
        self.training.stop_requested.connect(runner.stop)
        runner.run_ended.connect(self._run_ended)
        self.runs.resume_requested.connect(actions.resume_run)
        self.runs.new_run_requested.connect(actions.new_run_from_config)
        self.runs.export_requested.connect(actions.export_run)
        self.runs.curves_requested.connect(actions.show_run_curves)
        self.runs.model_requested.connect(actions.use_run_model)
        self.runs.selection_changed.connect(actions.compare_runs)
        self.runs.inspect_requested.connect(actions.inspect_runs)
        self.compare.inspect_requested.connect(actions.inspect_runs)
        self.runs.runs_listed.connect(self.inspect.set_choices)
        self.finetune.start_requested.connect(self.start_finetune)
        self.finetune.stop_requested.connect(self.stop_finetune)

    # --- settings ----------------------------------------------------------------------------------------

    def _restore_settings(self) -> bool:
        s = self.settings
        if int(s.value("version", 0) or 0) != self.layout_version:
            return False  # no settings, or another version's: start from the defaults
        geometry, state = s.value("geometry"), s.value("state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        restored = isinstance(state, QByteArray) and self.restoreState(state, self.layout_version)
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
        s.setValue("version", self.layout_version)
        s.setValue("geometry", self.saveGeometry())
        s.setValue("state", self.saveState(self.layout_version))
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
        self.prepare_job = Job(worker, self)

    def cancel_prepare(self) -> None:
        if self.prepare_job is not None and self.prepare_job.worker is not None:
            self.prepare_job.worker.cancel()

    def _prepared(self, result) -> None:
        self.prepare_job = None
        self.corpus.set_busy(False)
        self.set_dataset(result.dataset)
        if result.resumed_at is not None:
            self.statusBar().showMessage(f"dataset ready: went on from a prepare that had done "
                                         f"{result.resumed_at:.0%} of the corpus", 8000)

    def _prepare_failed(self, message: str) -> None:
        self.prepare_job = None
        self.corpus.set_busy(False)
        resumable = "goes on from where it stopped" in message
        self.corpus.progress.setFormat("cancelled: Prepare goes on from where it stopped" if resumable
                                       else "not prepared")
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

    def _run_ended(self, result) -> None:
        """A run (not a sweep's) ended: fine-tune from it next, and load its model into the probe and preview."""
        if result.last_checkpoint:
            self.finetune.set_source(str(Path(result.last_checkpoint).parent.parent))
            if result.status != "failed":
                self.run_actions.load_model(result.last_checkpoint,
                                            f"run {self.runner.run_id}, {Path(result.last_checkpoint).name}")

    # --- fine-tuning ----------------------------------------------------------------------------------------------

    def start_finetune(self, request) -> None:
        if self.finetune_job is not None:
            return
        worker = FinetuneWorker(request, self.db_url)
        worker.point.connect(self.finetune.add_point)
        worker.done.connect(self._finetune_done)
        worker.failed.connect(self._finetune_failed)
        self.finetune.set_running(True)
        self.finetune_job = Job(worker, self)
        self.docks["finetune"].raise_()

    def stop_finetune(self) -> None:
        if self.finetune_job is not None and self.finetune_job.worker is not None:
            self.finetune_job.worker.stop()

    def _finetune_done(self, outcome) -> None:
        self.finetune_job = None
        self.finetune.set_running(False)
        self.finetune.show_result(outcome)
        self.runs.refresh(background=True)

    def _finetune_failed(self, message: str) -> None:
        self.finetune_job = None
        self.finetune.set_running(False)
        self.finetune.status.setText("failed")
        self.show_error("Fine-tuning failed", message)

    # --- help ----------------------------------------------------------------------------------------------------

    def about_text(self) -> str:
        """Version, torch and Qt versions, device, run database and data folder (the About dialog)."""
        import html

        import PySide6
        import torch

        from workbench.store.database import display_url
        from workbench.train.device import describe_device, resolve_device

        rows = [("Version", __version__), ("torch", torch.__version__), ("Qt / PySide6", PySide6.__version__),
                ("Device", describe_device(resolve_device("auto"))), ("Run database", display_url(self.db_url)),
                ("Data folder", str(self.data_dir))]
        table = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td><td>{html.escape(v)}</td></tr>"
                        for k, v in rows)
        return ("<b>Pre-training Workbench</b><br>Run and inspect BERT-style pre-training (MLM + NSP)."
                f"<table>{table}</table>")

    # --- closing ---------------------------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:
        if self.runner.busy:
            answer = QMessageBox.question(self, "A run is training",
                                          "Stop the run (a checkpoint is saved) and quit?")
            if answer != QMessageBox.Yes:
                event.ignore()
                return
        try:
            self._close_jobs()
            others = [w for w in QApplication.topLevelWidgets()
                      if isinstance(w, MainWindow) and w is not self and w.isVisible()]
            if not others:
                self.collector.stop()            # no worker runs now: the automatic collector is safe again
        except Exception:       # an exception out of a Qt override crashes PySide 6.11: log it, close anyway
            log.exception("while closing the window")
        event.accept()

    def _close_jobs(self) -> None:
        self.closing = True
        self.runner.stop_and_wait()
        if self.prepare_job is not None and self.prepare_job.worker is not None:
            self.prepare_job.worker.cancel()
        if self.finetune_job is not None and self.finetune_job.worker is not None:
            self.finetune_job.worker.stop()      # stops at the next step; nothing of it is on disk yet
        for job in self.findChildren(Job):       # every worker thread has ended before the window goes
            job.wait(60_000)
        self.save_settings()
        wait_for_background()                    # statistics, guesses or a refresh still reading: let them finish
