"""The window's menus, toolbar and keyboard shortcuts (one list, shown by Help → Keyboard shortcuts)."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMessageBox

SHORTCUTS = (("Ctrl+R", "Start a run"), ("Ctrl+P", "Pause / resume"), ("Ctrl+.", "Stop (saves a checkpoint)"),
             ("Ctrl+O", "Open corpus files"), ("Ctrl+Shift+O", "Open corpus folder"), ("Ctrl+N", "Next masking example"),
             ("Ctrl+E", "Export model"), ("Ctrl+Q", "Quit"))


def build_menus(window) -> None:
    """File, Run, View and Help menus and the Run toolbar of ``window`` (a ``MainWindow``)."""
    def action(text, slot, shortcut=None, tip=""):
        a = QAction(text, window)
        if shortcut:
            a.setShortcut(QKeySequence(shortcut))
        a.setStatusTip(tip)
        a.triggered.connect(slot)
        return a

    training, runner, actions = window.training, window.runner, window.run_actions
    run_actions = (action("Start", training.start_button.click, "Ctrl+R", "Start a new run"),
                   action("Pause / Resume", training.pause_button.click, "Ctrl+P"),
                   action("Stop", training.stop_button.click, "Ctrl+.", "Stop and save a checkpoint"))
    menu = window.menuBar().addMenu("&File")
    menu.addAction(action("Open corpus files…", window.corpus.open_files, "Ctrl+O"))
    menu.addAction(action("Open corpus folder…", window.corpus.open_folder, "Ctrl+Shift+O"))
    menu.addAction(action("Use the sample corpus", window.corpus.choose_sample))
    menu.addSeparator()
    menu.addAction(action("Open database…", actions.open_database, tip="Show the runs of another run database"))
    menu.addAction(action("Export model…", actions.export_selected, "Ctrl+E"))
    menu.addSeparator()
    menu.addAction(action("Quit", window.close, "Ctrl+Q"))
    menu = window.menuBar().addMenu("&Run")
    menu.addActions(list(run_actions))
    menu.addAction(action("Resume an interrupted run…", actions.resume_interrupted))
    menu.addSeparator()
    menu.addAction(action("New sweep…", lambda: window.sweeps.open_dialog(), tip="Vary settings over the current "
                          "config; the runs go one after another"))
    menu.addAction(action("Continue a sweep…", window.sweeps.choose_and_continue, tip="Run what is left of a sweep"))
    menu.addAction(action("Pause the sweep", runner.pause_sweep, tip="The run in progress finishes; no new one "
                          "starts"))
    menu.addAction(action("Cancel the sweep", runner.cancel_sweep, tip="Stop the run in progress (with a "
                          "checkpoint) and cancel the waiting runs"))
    menu = window.view_menu = window.menuBar().addMenu("&View")
    for dock in window.docks.values():
        menu.addAction(dock.toggleViewAction())
    menu.addSeparator()
    menu.addAction(action("Reset layout", window.reset_layout))
    menu = window.menuBar().addMenu("&Help")
    menu.addAction(action("Keyboard shortcuts", lambda: show_shortcuts(window), "F1"))
    examples = menu.addMenu("Example sweeps")
    from workbench.sweeps import EXAMPLES

    for key, example in EXAMPLES.items():
        examples.addAction(action(example["name"], lambda _=False, k=key: window.sweeps.start_example(k),
                                  tip="Queue and start it over the current config (Run → Pause or Cancel the "
                                      "sweep stops it; Run → New sweep… edits an example first)"))
    menu.addAction(action("About", lambda: QMessageBox.about(window, "About Pre-training Workbench",
                                                             window.about_text())))
    toolbar = window.addToolBar("Run")
    toolbar.setObjectName("runToolbar")
    toolbar.addActions(list(run_actions))
    window.start_action, window.pause_action, window.stop_action = run_actions


def show_shortcuts(window) -> None:
    text = "\n".join(f"{keys:<14} {what}" for keys, what in SHORTCUTS)
    QMessageBox.information(window, "Keyboard shortcuts", text)
