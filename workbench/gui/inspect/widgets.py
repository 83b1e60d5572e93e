"""The Inspect panel's painted widgets: the head atlas (a tile per head, with its sparkline), a head's full
attention map with tokens on both axes, and the surprisal-coloured passage."""

from __future__ import annotations

import html
import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QWidget

# One colour per head kind (``workbench.snapshots.views.classify_heads``).
KIND_COLOURS = {
    "previous": "#4e79a7", "next": "#76b7b2", "self": "#9c9c9c", "cls": "#f28e2b", "sep": "#b07aa1",
    "punctuation": "#9c755f", "local": "#59a14f", "broad": "#a0cbe8", "content": "#ffbe7d",
}
KIND_TEXT = {
    "previous": "previous token", "next": "next token", "self": "itself", "cls": "[CLS]", "sep": "[SEP]",
    "punctuation": "punctuation", "local": "local (itself and neighbours)", "broad": "broad (spread out)",
    "content": "content (focused)",
}


class HeadTile(QWidget):
    """One head: coloured by its kind, its strongest share, and a sparkline of that share over the steps."""

    clicked = Signal(int, int)

    def __init__(self, layer: int, head: int, parent=None):
        super().__init__(parent)
        self.layer, self.head = layer, head
        self.kind = "broad"
        self.caption = ""
        self.series = np.zeros(0)           # (N,) the kind's share over the snapshots
        self.current = 0
        self.selected = False
        self.setMinimumSize(118, 86)
        self.setMaximumHeight(120)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setCursor(Qt.PointingHandCursor)

    def show_head(self, kind: str, caption: str, series: np.ndarray, current: int, tooltip: str) -> None:
        self.kind, self.caption, self.series, self.current = kind, caption, series, current
        self.setToolTip(tooltip)
        self.update()

    def mousePressEvent(self, event) -> None:
        self.clicked.emit(self.layer, self.head)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.Antialiasing)
        box = QRectF(self.rect()).adjusted(2, 2, -2, -2)
        painter.setBrush(QColor(KIND_COLOURS.get(self.kind, "#e6e6e6")))
        painter.setPen(QPen(QColor("#202020"), 2.5) if self.selected else Qt.NoPen)
        painter.drawRoundedRect(box, 5, 5)
        painter.setPen(QColor("#111111"))
        font = QFont(self.font())
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(box.adjusted(6, 3, -4, 0), Qt.AlignLeft | Qt.AlignTop, f"L{self.layer} H{self.head}")
        painter.setFont(self.font())
        painter.drawText(box.adjusted(6, 19, -4, 0), Qt.AlignLeft | Qt.AlignTop, self.caption)
        below = 19 + (self.caption.count("\n") + 1) * painter.fontMetrics().height() + 3
        if len(self.series) >= 2 and box.height() - below - 5 >= 8:            # the sparkline under the caption
            spark = box.adjusted(6, below, -6, -5)
            values = np.nan_to_num(np.asarray(self.series, float))
            xs = spark.left() + spark.width() * np.arange(len(values)) / (len(values) - 1)
            ys = spark.bottom() - spark.height() * np.clip(values, 0.0, 1.0)
            painter.setPen(QPen(QColor("#222222"), 1.3))
            painter.drawPolyline(QPolygonF([QPointF(x, y) for x, y in zip(xs, ys)]))
            painter.setBrush(QColor("#000000"))
            i = min(self.current, len(values) - 1)
            painter.drawEllipse(QPointF(xs[i], ys[i]), 3, 3)
        painter.end()


class HeadGrid(QWidget):
    """The layers x heads atlas of one run."""

    clicked = Signal(int, int)

    def __init__(self, title: str = "", parent=None):
        super().__init__(parent)
        self.layout_ = QGridLayout(self)
        self.layout_.setSpacing(3)
        self.title = QLabel(title)
        self.title.setStyleSheet("font-weight: bold;")
        self.layout_.addWidget(self.title, 0, 0, 1, 8)
        self.tiles: dict[tuple[int, int], HeadTile] = {}

    def set_shape(self, layers: int, heads: int) -> None:
        if len(self.tiles) == layers * heads and (layers - 1, heads - 1) in self.tiles:
            return
        for tile in self.tiles.values():
            tile.deleteLater()
        self.tiles = {}
        for layer in range(layers):
            for head in range(heads):
                tile = HeadTile(layer, head, self)
                tile.clicked.connect(self.clicked)
                self.layout_.addWidget(tile, layer + 1, head)
                self.tiles[layer, head] = tile
        self.layout_.setRowStretch(layers + 1, 1)              # tiles at the top, room below

    def select(self, layer: int, head: int) -> None:
        for key, tile in self.tiles.items():
            tile.selected = key == (layer, head)
            tile.update()


class AttentionMapView(QWidget):
    """A head's attention map: query tokens down the left, key tokens along the top, darker = more."""

    CELL = 13

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tokens: list[str] = []
        self.matrix = np.zeros((0, 0))
        self.title = ""
        self.setMinimumSize(300, 300)

    def show_map(self, tokens: list[str], matrix: np.ndarray, title: str) -> None:
        self.tokens, self.matrix, self.title = tokens, np.asarray(matrix, float), title
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor("white"))
        n = len(self.tokens)
        if not n:
            painter.drawText(self.rect(), Qt.AlignCenter | Qt.TextWordWrap, "Click a head in the atlas to see its "
                             "attention on an example of the probe pack.")
            painter.end()
            return
        font = QFont(self.font())
        font.setPointSizeF(max(6.0, font.pointSizeF() - 2))
        painter.setFont(font)
        margin = 16 + max(painter.fontMetrics().horizontalAdvance(t) for t in self.tokens)
        cell = max(4.0, min(self.CELL, (min(self.width(), self.height()) - margin - 24) / n))
        top = margin + 20
        painter.drawText(QRectF(0, 0, self.width(), 18), Qt.AlignLeft, self.title)
        peak = float(self.matrix.max()) or 1.0
        for i in range(n):
            for j in range(n):
                shade = int(255 * (1.0 - min(1.0, self.matrix[i, j] / peak)))
                painter.fillRect(QRectF(margin + j * cell, top + i * cell, cell, cell), QColor(shade, shade, 255))
        painter.setPen(QColor("#333333"))
        line = painter.fontMetrics().height()
        stride = max(1, math.ceil(line / cell))          # labels that would overlap: every k-th token only
        for i, token in enumerate(self.tokens):
            if i % stride:
                continue
            middle = (i + 0.5) * cell
            painter.drawText(QRectF(0, top + middle - line / 2, margin - 4, line), Qt.AlignRight | Qt.AlignVCenter,
                             token)
            painter.save()
            painter.translate(margin + middle, top - 4)
            painter.rotate(-90)
            painter.drawText(QRectF(0, -line / 2, margin, line), Qt.AlignLeft | Qt.AlignVCenter, token)
            painter.restore()
        painter.end()


def surprisal_colour(value: float, high: float = 10.0) -> str:
    """White (known) to red (surprising); grey where the position is not scored."""
    if not math.isfinite(value):
        return "#eeeeee"
    t = min(1.0, max(0.0, value / high))
    return f"#{255:02x}{int(255 - 190 * t):02x}{int(255 - 210 * t):02x}"


def surprisal_html(tokens: list[str], surprisal: np.ndarray, guesses: list[str], high: float = 10.0) -> str:
    """A passage as HTML: each token on a background by its surprisal (nats), word pieces joined."""
    parts = []
    for token, value, guess in zip(tokens, surprisal, guesses):
        if token == "[PAD]":
            break
        text = token[2:] if token.startswith("##") else (" " + token)
        tip = (f"{token}: {value:.2f} nats (p = {math.exp(-value):.3f}); first guess {guess}"
               if math.isfinite(value) else token)
        parts.append(f'<span style="background-color:{surprisal_colour(value, high)}" title="{html.escape(tip)}">'
                     f"{html.escape(text)}</span>")
    return "<div style='font-size: 11pt; line-height: 150%'>" + "".join(parts) + "</div>"
