"""Table cells shared by the panels that list runs."""

from __future__ import annotations

from PySide6.QtWidgets import QTableWidgetItem

class NumberItem(QTableWidgetItem):
    """A cell that sorts by its number, not its text (an empty cell sorts first)."""

    def __init__(self, value, text: str):
        super().__init__(text)
        self.value = value if value is not None else float("-inf")

    def __lt__(self, other):
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)
