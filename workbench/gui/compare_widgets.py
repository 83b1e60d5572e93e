"""The Compare panel's helpers with widgets of their own: a group's band, the Columns… dialog, and a plot (or
any view, for the Inspect panel) written as PNG or SVG."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPen
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QGraphicsPathItem, QLabel, QListWidget, QListWidgetItem,
                               QVBoxLayout)


class BandItem(QGraphicsPathItem):
    """A group's min-max (or ± std) band: a filled polygon in the plot's coordinates, without an outline."""

    def __init__(self):
        super().__init__()
        self.setPen(QPen(Qt.NoPen))
        self.setZValue(-1)                          # under the curves


class ColumnsDialog(QDialog):
    """Choose the table's columns: settings, and metrics' last / best / min / max / held-out values."""

    def __init__(self, available: list[str], chosen: list[str], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Table columns")
        self.list = QListWidget(objectName="columnsList")
        for key in available:
            item = QListWidgetItem(key)
            item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
            item.setCheckState(Qt.Checked if key in chosen else Qt.Unchecked)
            self.list.addItem(item)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Settings are section.key; metrics are metric:statistic (eval_ = held-out)."))
        layout.addWidget(self.list, 1)
        layout.addWidget(buttons)
        self.resize(420, 520)

    def chosen(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.Checked]


def export_plot(widget, kind: str, path: str, title: str) -> None:
    """``widget`` as PNG or SVG (Qt's own painter: vector paths and text, at the view's size); OSError when it
    cannot be written. A pyqtgraph plot's PNG is 2,400 px wide; any other widget's is drawn at twice its size."""
    if kind == "png" and hasattr(widget, "getPlotItem"):
        import pyqtgraph.exporters as exporters

        exporter = exporters.ImageExporter(widget.getPlotItem())
        exporter.parameters()["width"] = 2400
        exporter.export(path)
        return
    from PySide6.QtCore import QPoint, QRect
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtWidgets import QGraphicsView

    def draw(painter: QPainter) -> None:
        if isinstance(widget, QGraphicsView):
            widget.render(painter)
        else:                                        # a plain widget and its children
            widget.render(painter, QPoint())

    if kind == "png":
        image = QImage(widget.size() * 2, QImage.Format_ARGB32)
        image.setDevicePixelRatio(2.0)
        image.fill(0xFFFFFFFF)
        painter = QPainter(image)
        draw(painter)
        painter.end()
        if not image.save(path):
            raise OSError(f"cannot write {path}")
        return
    from PySide6.QtSvg import QSvgGenerator

    generator = QSvgGenerator()
    generator.setFileName(path)
    generator.setSize(widget.size())
    generator.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    generator.setTitle(title)
    painter = QPainter()
    if not painter.begin(generator):
        raise OSError(f"cannot write {path}")
    draw(painter)
    painter.end()
