"""Python's cyclic garbage collector, run on the GUI thread only, while the window lives.

The collector runs in whichever thread happens to allocate when its thresholds are crossed: a worker
preparing a corpus or training. When the garbage it finds holds Qt objects (a closed window's widgets, plot
items taken off a plot), PySide deletes them there: the C++ destructor takes Qt's connection lock and then
asks for the GIL, while the GUI thread, holding the GIL, waits for that lock to disconnect a signal. The two
threads wait for each other forever (seen in the window's tests: a hang in ``QObject::~QObject`` on a
worker against ``QMetaObject::disconnect`` on the GUI thread). So while a window is open the automatic
collector is off and a timer on the GUI thread collects, generation by generation, as the thresholds say.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 1000


class GuiThreadCollector(QObject):
    def __init__(self, parent: QObject):
        super().__init__(parent)
        self.timer = QTimer(self, interval=INTERVAL_MS)
        self.timer.timeout.connect(self.collect)

    def start(self) -> None:
        gc.disable()
        self.timer.start()

    def collect(self) -> None:
        """What the automatic collector would have done by now, here on the GUI thread."""
        thresholds, counts = gc.get_threshold(), gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """The last window closed: collect here once, then let the automatic collector run again."""
        self.timer.stop()
        gc.collect()
        gc.enable()


def collect_on_gui_thread() -> GuiThreadCollector:
    """Turn the automatic collector off and collect on the GUI thread (the application's one collector)."""
    app = QCoreApplication.instance()
    collector = app.findChild(GuiThreadCollector)
    if collector is None:
        collector = GuiThreadCollector(app)
    collector.start()
    return collector
