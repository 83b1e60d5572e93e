"""Runs: every recorded run, filterable and sortable; overlay curves and diff configs of a selection.

The table re-reads the database every few seconds while visible, so runs
started by the headless CLI against the same database appear and move too.
Actions (rename, notes and tags, delete, resume, export, new run from this
config) are forwarded to the window or done through the repository.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QLineEdit, QMessageBox,
    QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget,
)

from workbench.formatting import duration
from workbench.store.comparison import config_differences
from workbench.store.statuses import ENDED, STATUSES
from workbench.errors import StoreError
from workbench.gui.table_items import NumberItem
from workbench.gui.workers import in_background
from workbench.metrics import RUN_LIST, format_value, title as metric_title

# The run's state, then its metrics as the metric table names and formats them (``metrics.RUN_LIST``).
COLUMNS = ("id", "name", "status", "steps", "time", *(metric_title(name, short=True) for name in RUN_LIST), "device", "created")
HELDOUT_LOSS_COLUMN = 5 + RUN_LIST.index("eval_mlm_loss")


def load_rows(repository, status: str | None, cache: dict | None = None):
    """(runs, their table rows) - or the error's text; any thread (the Runs panel reads on a worker).

    ``cache`` keeps the rows of runs that have ended, keyed by what can still change about them (name,
    tags, status, steps): a history of a hundred finished runs costs one query, not hundreds."""
    from workbench.store.summary import run_summary

    cache = {} if cache is None else cache
    try:
        repository.mark_interrupted_runs()
        runs = repository.list_runs(status=status)
        rows = []
        for run in runs:
            key = (run.name, tuple(run.tag_names), run.status, run.steps, run.finished_at)
            cached = cache.get(run.id)
            if cached is not None and cached[0] == key:
                rows.append(cached[1])
                continue
            row = run_summary(repository, run)
            if run.status in ENDED:
                cache[run.id] = (key, row)
            rows.append(row)
        return runs, rows
    except StoreError as exc:
        return str(exc)


class RunsPanel(QWidget):
    resume_requested = Signal(int)
    new_run_requested = Signal(dict)     # a stored config
    export_requested = Signal(int)
    curves_requested = Signal(int)
    model_requested = Signal(int)        # load this run's latest checkpoint for predictions and probing
    inspect_requested = Signal(list)     # open these runs (the first two) in the Inspect panel
    runs_listed = Signal(list)           # (label, run folder) of every listed run with a folder, newest first
    selection_changed = Signal(list)     # the selected run ids (the Compare panel draws them)

    def __init__(self, repository=None, parent=None):
        super().__init__(parent)
        self.setObjectName("runsPanel")
        self.repository = repository

        self.filter = QLineEdit(objectName="runsFilter")
        self.filter.setPlaceholderText("filter: name or tag, or an expression such as "
                                       "masking.probability >= 0.2 and eval_mlm_loss < 5")
        self.filter_error = QLabel("", objectName="runsFilterError")
        self.filter_error.setStyleSheet("color: #b03a2e")
        self.filter_error.setWordWrap(True)
        self.filter_error.setVisible(False)
        self.status = QComboBox(objectName="runsStatusFilter")
        self.status.addItems(["all statuses", *STATUSES])
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.status)

        self.table = QTableWidget(0, len(COLUMNS), objectName="runsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.setMinimumHeight(60)
        self.table.verticalHeader().setVisible(False)
        # Sized to the contents once per refresh, not per cell (ResizeToContents re-measures every row at
        # every setItem: three seconds of frozen window for a hundred runs).
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)

        buttons = QHBoxLayout()
        self.buttons = {}
        for key, label, tip in (("curves", "Show curves", "Show the selected run in the live plots"),
                                ("model", "Use model", "Load the run's latest checkpoint for predictions and the probe"),
                                ("inspect", "Inspect", "What the model learned, where and when (select two runs to "
                                                       "see them side by side)"),
                                ("resume", "Resume", "Continue the run from its last checkpoint"),
                                ("new", "New run from config", "Put the run's settings into the training form"),
                                ("export", "Export…", "Write a Hugging Face transformers model directory"),
                                ("rename", "Rename…", ""), ("notes", "Notes && tags…", ""), ("delete", "Delete…", "")):
            button = QPushButton(label, objectName=f"runs_{key}Button")
            button.setToolTip(tip)
            buttons.addWidget(button)
            self.buttons[key] = button
        buttons.addStretch(1)

        self.diff = QTableWidget(0, 0, objectName="configDiff")
        self.diff.verticalHeader().setDefaultSectionSize(20)
        self.diff.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.ignore = QLineEdit(objectName="diffIgnore")
        self.ignore.setPlaceholderText("keys to ignore, e.g. train.seed, train.max_minutes")
        self.ignore.setToolTip("Settings left out of the differences (comma-separated; a section name such as "
                               "'train.' leaves out the whole section)")
        diff_box = QWidget()
        diff_layout = QVBoxLayout(diff_box)
        diff_layout.setContentsMargins(0, 0, 0, 0)
        self.diff_title = QLabel("Select two or more runs to see the settings that differ; the Compare panel "
                                 "draws the selected runs.")
        self.diff_title.setWordWrap(True)
        ignore_row = QHBoxLayout()
        ignore_row.addWidget(self.diff_title, 1)
        ignore_row.addWidget(QLabel("ignore"))
        ignore_row.addWidget(self.ignore, 1)
        diff_layout.addLayout(ignore_row)
        diff_layout.addWidget(self.diff, 1)
        self.diff.setVisible(False)
        diff_layout.addStretch(0)

        lower = diff_box
        splitter = QSplitter(Qt.Vertical)
        table_box = QWidget()
        table_layout = QVBoxLayout(table_box)
        table_layout.setContentsMargins(0, 0, 0, 0)
        table_layout.addLayout(top)
        table_layout.addWidget(self.filter_error)
        self.empty_hint = QLabel("No runs yet: press Start in the Training panel (or run `pretrain-workbench "
                                 "train`); every run is listed here.", objectName="runsHint")
        self.empty_hint.setWordWrap(True)
        table_layout.addWidget(self.empty_hint)
        table_layout.addWidget(self.table, 1)
        table_layout.addLayout(buttons)
        splitter.addWidget(table_box)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 1)          # the table takes the height the differences do not need
        splitter.setStretchFactor(1, 0)
        self.splitter = splitter
        self._fit_differences(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.filter.textChanged.connect(self._apply_filter)
        self.status.currentIndexChanged.connect(self.refresh)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.ignore.textChanged.connect(lambda: self._show_diff(self.selected_ids()))
        self.buttons["curves"].clicked.connect(lambda: self._emit_single(self.curves_requested))
        self.buttons["model"].clicked.connect(lambda: self._emit_single(self.model_requested))
        self.buttons["resume"].clicked.connect(lambda: self._emit_single(self.resume_requested))
        self.buttons["export"].clicked.connect(lambda: self._emit_single(self.export_requested))
        self.buttons["inspect"].clicked.connect(lambda: self.inspect_requested.emit(self.selected_ids()[:2]))
        self.buttons["new"].clicked.connect(self._new_run)
        self.buttons["rename"].clicked.connect(self._rename)
        self.buttons["notes"].clicked.connect(self._notes)
        self.buttons["delete"].clicked.connect(self._delete)
        self.loading = self.pending = False
        self.row_cache: dict = {}      # rows of ended runs (see load_rows)
        self.shown_rows: list = []     # the rows on display
        self.timer = QTimer(self, interval=3000)
        self.timer.timeout.connect(self._refresh_if_visible)
        self.timer.start()
        self.runs = {}
        self.after_refresh: list = []      # called once the rows being read are shown
        self.refresh(background=True)

    def set_repository(self, repository) -> None:
        """Show another run database; its rows are read on a worker (a long history takes a second)."""
        self.repository = repository
        self.row_cache, self.shown_rows = {}, []
        self.loading = self.pending = False      # rows in flight from the previous database are dropped
        self.refresh(background=True)

    # --- table ---------------------------------------------------------------------------------------

    def _refresh_if_visible(self) -> None:
        if self.isVisible():
            self.refresh(background=True)

    def refresh(self, background: bool = False, then=None) -> None:
        """Re-read the run history. ``background``: on a worker thread (the periodic refresh), so a slow
        or busy database never stalls the window; the table is filled when the rows arrive, then ``then()``
        is called."""
        if self.repository is None:
            return  # the window opens the database after its first paint
        if then is not None:
            self.after_refresh.append(then)
        status = self.status.currentText()
        status = None if status == "all statuses" else status
        if not background:
            self._show_rows((self.repository, load_rows(self.repository, status, self.row_cache)))
        elif self.loading:
            self.pending = True           # read again when the rows in flight arrive
        else:
            self.loading, self.pending = True, False
            repository = self.repository
            cache = self.row_cache
            in_background(lambda: load_rows(repository, status, cache), "runs-refresh",
                          then=lambda rows: self._show_rows((repository, rows)))

    def _show_rows(self, read) -> None:
        self._fill(read)
        if not self.loading:
            waiting, self.after_refresh = self.after_refresh, []
            for then in waiting:
                then()

    def _fill(self, read) -> None:
        repository, rows = read
        if repository is not self.repository:
            return                    # read from a database no longer on display
        self.loading = False
        if self.pending:
            self.refresh(background=True)
        if isinstance(rows, str):
            self.diff_title.setText(f"Cannot read the run database: {rows}")
            return
        runs, summaries = rows
        if summaries == self.shown_rows and len(summaries) == self.table.rowCount():
            self.runs = {run.id: run for run in runs}
            return                         # nothing changed: the table (and the selection) stay as they are
        first_fill = not self.shown_rows
        self.shown_rows = summaries
        self.runs_listed.emit([(f"{r.id}: {r.name}", r.run_dir) for r in sorted(runs, key=lambda r: -r.id)
                               if r.run_dir])
        selected = set(self.selected_ids())
        self.runs = {run.id: run for run in runs}
        self.table.setSortingEnabled(False)
        self.table.blockSignals(True)
        self.table.setRowCount(len(summaries))
        for row, s in enumerate(summaries):
            cells = [
                NumberItem(s["id"], str(s["id"])), QTableWidgetItem(s["name"]), QTableWidgetItem(s["status"]),
                NumberItem(s["steps"], f"{s['steps']:,}/{s['max_steps']:,}" if s["max_steps"] else f"{s['steps']:,}"),
                NumberItem(s["duration_seconds"], duration(s["duration_seconds"])),
                *(NumberItem(s[name], format_value(name, s[name])) for name in RUN_LIST),
                QTableWidgetItem(s["device"]), QTableWidgetItem(s["created"].replace("T", " ")),
            ]
            cells[1].setToolTip(", ".join(s["tags"]) or "no tags")
            if s["floor_mlm_loss"] is not None and s["eval_mlm_loss"] is not None:
                cells[HELDOUT_LOSS_COLUMN].setToolTip(f"{s['floor_mlm_loss'] - s['eval_mlm_loss']:+.2f} nats below the context-free "
                                    f"floor ({s['floor_mlm_loss']:.3f}) on the fixed evaluation set")
            cells[0].setData(Qt.UserRole, s["id"])
            cells[0].setData(Qt.UserRole + 1, " ".join([s["name"]] + s["tags"]).lower())
            for column, item in enumerate(cells):
                self.table.setItem(row, column, item)
        self.table.setSortingEnabled(True)
        if first_fill:
            self.table.resizeColumnsToContents()
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.UserRole) in selected:
                self.table.selectRow(row)
        self.table.blockSignals(False)
        self.empty_hint.setVisible(not summaries)
        self._apply_filter()

    def _fit_differences(self, shown: bool) -> None:
        """Show or hide the table of differing settings; hidden, its area shrinks to its one line of text."""
        self.diff.setVisible(shown)
        total = max(sum(self.splitter.sizes()), 300)
        lower = total * 9 // 20 if shown else self.splitter.widget(1).minimumSizeHint().height()
        self.splitter.setSizes([total - lower, lower])

    def _apply_filter(self) -> None:
        """Words match names and tags; an expression (``masking.probability >= 0.2 and eval_mlm_loss < 5``)
        is checked against each run's settings and latest values; a bad one is named under the box."""
        from workbench.store.run_filter import FilterError, compile_filter, looks_like_expression, run_namespace

        text = self.filter.text().strip()
        self.filter_error.setVisible(False)
        namespaces = {s["id"]: run_namespace(s, getattr(self.runs.get(s["id"]), "config", None))
                      for s in self.shown_rows}
        match = None
        if looks_like_expression(text):
            known = set().union(*namespaces.values()) if namespaces else set()
            try:
                predicate = compile_filter(text, known or None)
                match = lambda run_id: predicate(namespaces.get(run_id, {}))     # noqa: E731
            except FilterError as exc:
                self.filter_error.setText(str(exc))
                self.filter_error.setVisible(True)
                return                     # the rows stay as they were until the expression reads
        needle = text.lower()
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if match is not None:
                hidden = not match(item.data(Qt.UserRole))
            else:
                hidden = bool(needle) and needle not in (item.data(Qt.UserRole + 1) or "")
            self.table.setRowHidden(row, hidden)

    def visible_ids(self) -> list[int]:
        """The runs the filter lets through, in table order."""
        return [self.table.item(row, 0).data(Qt.UserRole) for row in range(self.table.rowCount())
                if not self.table.isRowHidden(row)]

    def selected_ids(self) -> list[int]:
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.table.item(row, 0).data(Qt.UserRole) for row in rows]

    def records(self, run_ids: list[int]) -> list:
        """The listed runs among ``run_ids`` (as last read), in that order."""
        return [self.runs[i] for i in run_ids if i in self.runs]

    def select_runs(self, run_ids: list[int]) -> None:
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.MultiSelection)
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(Qt.UserRole) in run_ids:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    # --- comparison ------------------------------------------------------------------------------------

    def _selection_changed(self) -> None:
        ids = self.selected_ids()
        single = len(ids) == 1
        for key in ("curves", "model", "resume", "new", "export", "rename", "notes"):
            self.buttons[key].setEnabled(single)
        self.buttons["delete"].setEnabled(bool(ids))
        self.buttons["inspect"].setEnabled(len(ids) in (1, 2))
        self.selection_changed.emit(ids)
        self._show_diff(ids)

    def _show_diff(self, ids: list[int]) -> None:
        runs = self.records(ids)
        if self.diff.isHidden() == (len(runs) >= 2):
            self._fit_differences(len(runs) >= 2)
        if len(runs) < 2:
            self.diff.setRowCount(0)
            self.diff.setColumnCount(0)
            self.diff_title.setText("Select two or more runs to see the settings that differ; the Compare panel "
                                    "draws the selected runs.")
            return
        ignored = tuple(key.strip() for key in self.ignore.text().split(",") if key.strip())
        differences = {key: values for key, values in config_differences([run.config for run in runs]).items()
                       if not key.startswith(ignored)} if ignored else config_differences([run.config for run in runs])
        self.diff_title.setText(f"{len(differences)} settings differ" if differences else "Same settings")
        self.diff.setColumnCount(len(runs))
        self.diff.setHorizontalHeaderLabels([f"{run.id} {run.name}" for run in runs])
        self.diff.setRowCount(len(differences))
        self.diff.setVerticalHeaderLabels(list(differences))
        for row, values in enumerate(differences.values()):
            for column, value in enumerate(values):
                self.diff.setItem(row, column, QTableWidgetItem(json.dumps(value)))

    def diff_keys(self) -> list[str]:
        return [self.diff.verticalHeaderItem(row).text() for row in range(self.diff.rowCount())]

    # --- actions ---------------------------------------------------------------------------------------

    def _emit_single(self, signal) -> None:
        ids = self.selected_ids()
        if len(ids) == 1:
            signal.emit(ids[0])

    def _new_run(self) -> None:
        ids = [i for i in self.selected_ids() if i in self.runs]
        if len(ids) == 1:
            self.new_run_requested.emit(self.runs[ids[0]].config)     # as read with the list

    def _write(self, change, what: str) -> None:
        """A change to the run database on a worker; the list is read again when it is written."""
        repository = self.repository
        in_background(lambda: change(repository), what, then=lambda _: self.refresh(background=True),
                      failed=lambda message: QMessageBox.warning(self, "Cannot change the run", message))

    def _rename(self) -> None:
        ids = [i for i in self.selected_ids() if i in self.runs]
        if len(ids) != 1:
            return
        name, ok = QInputDialog.getText(self, "Rename run", "Name:", text=self.runs[ids[0]].name)
        if ok and name.strip():
            self._write(lambda repository: repository.rename(ids[0], name), "run-rename")

    def _notes(self) -> None:
        ids = [i for i in self.selected_ids() if i in self.runs]
        if len(ids) != 1:
            return
        run = self.runs[ids[0]]
        notes, ok = QInputDialog.getMultiLineText(self, "Notes", f"Notes for run {run.id}:", run.notes or "")
        if not ok:
            return
        tags, ok = QInputDialog.getText(self, "Tags", "Tags (comma separated):", text=", ".join(run.tag_names))
        wanted = {t.strip() for t in tags.split(",") if t.strip()} if ok else None

        def change(repository) -> None:
            repository.set_notes(run.id, notes)
            if wanted is not None:
                repository.tag(run.id, add=wanted, remove=set(run.tag_names) - wanted)

        self._write(change, "run-notes")

    def _delete(self) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        busy = [i for i in ids if self.runs[i].status in ("running", "paused")]
        if busy:
            QMessageBox.information(self, "Delete runs", f"Run {busy[0]} is still {self.runs[busy[0]].status}; stop it first.")
            return
        answer = QMessageBox.question(
            self, "Delete runs", f"Delete {len(ids)} run(s) ({', '.join(map(str, ids))}) with their curves and "
            "checkpoints on disk? This cannot be undone.")
        if answer == QMessageBox.Yes:
            self.delete_runs(ids)

    def delete_runs(self, ids: list[int]) -> None:
        """Delete the runs and what they own on disk (checkpoints can be GBs) on a worker; then say what was
        kept and why."""
        from workbench.errors import WorkbenchError
        from workbench.services.run_removal import delete_run

        repository = self.repository

        def delete() -> list[str]:
            said = []
            for run_id in ids:
                try:
                    said.append(delete_run(repository, run_id))
                except WorkbenchError as exc:
                    said.append(str(exc))
            return said

        def done(said: list[str]) -> None:
            self.refresh(background=True)
            kept = [line for line in said if "kept" in line or "stop it first" in line]
            if kept:
                QMessageBox.information(self, "Delete runs", "\n".join(kept))

        in_background(delete, "run-delete", then=done,
                      failed=lambda message: QMessageBox.warning(self, "Delete runs", message))


if __name__ == "__main__":  # python -m workbench.gui.panels.runs_panel [DATABASE_URL]: the run history on its own
    import sys

    from workbench.gui.standalone import run_alone

    def make() -> RunsPanel:
        from PySide6.QtWidgets import QMessageBox

        from workbench.errors import WorkbenchError
        from workbench.store.repository import RunRepository

        panel = RunsPanel()
        try:
            panel.set_repository(RunRepository(sys.argv[1] if len(sys.argv) > 1 else None))
        except WorkbenchError as exc:
            QMessageBox.warning(None, "Cannot open the run database", str(exc))
        return panel

    sys.exit(run_alone(make, 1000, 600))
