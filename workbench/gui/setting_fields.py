"""Form fields for config settings, with the limits the config declares (``config.bounds_of``,
``config.choices_of``): the window accepts exactly what ``validate`` accepts, never a narrower or wider range.

Qt's ``QSpinBox`` holds 32-bit integers; settings whose bound is larger (the seed goes to 2**63 - 1, step
counts to 10**12) get a ``WideSpinBox``.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QDoubleSpinBox, QSpinBox

from workbench.config import bounds_of, choices_of

INT32_MAX = 2**31 - 1


class WideSpinBox(QAbstractSpinBox):
    """An integer spin box over any Python int range (``QSpinBox``'s API: value, setValue, setRange,
    valueChanged)."""

    valueChanged = Signal(object)      # object: an int beyond 32 bits would not cross as int

    def __init__(self, parent=None):
        super().__init__(parent)
        self._low, self._high, self._value = 0, INT32_MAX, 0
        self.lineEdit().textEdited.connect(self._edited)
        self.editingFinished.connect(lambda: self._show(self._value))
        self._show(0)

    def setRange(self, low: int, high: int) -> None:
        self._low, self._high = int(low), int(high)
        self.setValue(self._value)

    def minimum(self) -> int:
        return self._low

    def maximum(self) -> int:
        return self._high

    def value(self) -> int:
        return self._value

    def setValue(self, value: int) -> None:
        value = min(self._high, max(self._low, int(value)))
        changed = value != self._value
        self._value = value
        self._show(value)
        if changed:
            self.valueChanged.emit(value)

    def stepBy(self, steps: int) -> None:
        self.setValue(self._value + steps)

    def stepEnabled(self):
        flags = QAbstractSpinBox.StepNone
        if self._value > self._low:
            flags |= QAbstractSpinBox.StepDownEnabled
        if self._value < self._high:
            flags |= QAbstractSpinBox.StepUpEnabled
        return flags

    def validate(self, text: str, pos: int):
        digits = text.replace(",", "").strip()
        if not digits or digits == "-" and self._low < 0:
            return QValidator.Intermediate, text, pos
        if not digits.lstrip("-").isdigit():
            return QValidator.Invalid, text, pos
        inside = self._low <= int(digits) <= self._high
        return (QValidator.Acceptable if inside else QValidator.Intermediate), text, pos

    def _edited(self, text: str) -> None:
        digits = text.replace(",", "").strip()
        if digits.lstrip("-").isdigit() and self._low <= int(digits) <= self._high and int(digits) != self._value:
            self._value = int(digits)
            self.valueChanged.emit(self._value)

    def _show(self, value: int) -> None:
        self.lineEdit().setText(f"{value:,}")


def number_field(key: str, decimals: int = 0):
    """A spin box for the numeric setting ``key`` ("train.seed"), limited to its declared bounds; an open
    bound (``(0, 1)``) is kept out by the smallest step the field shows."""
    bounds = bounds_of(key)
    if bounds is None:
        raise KeyError(f"{key} declares no bounds")
    if decimals:
        widget = QDoubleSpinBox()
        widget.setDecimals(decimals)
        step = 10.0 ** -decimals
        widget.setRange(bounds.low + (step if bounds.low_open else 0.0), bounds.high - (step if bounds.high_open else 0.0))
        return widget
    low, high = int(bounds.low) + bounds.low_open, int(bounds.high) - bounds.high_open
    widget = QSpinBox() if high <= INT32_MAX else WideSpinBox()
    if isinstance(widget, QSpinBox):
        widget.setGroupSeparatorShown(True)
    widget.setRange(low, high)
    return widget


def choice_field(key: str) -> QComboBox:
    widget = QComboBox()
    widget.addItems(list(choices_of(key)))
    return widget
