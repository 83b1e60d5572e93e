"""Table cells and colours shared by the panels that list runs."""

from __future__ import annotations

from PySide6.QtWidgets import QTableWidgetItem

# One colour per run, chosen by its id, so a run keeps its colour in every plot and whatever else is selected.
PALETTE = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def run_colour(run_id: int) -> tuple[int, int, int]:
    return PALETTE[(run_id - 1) % len(PALETTE)]


class NumberItem(QTableWidgetItem):
    """A cell that sorts by its number, not its text (an empty cell sorts first)."""

    def __init__(self, value, text: str):
        super().__init__(text)
        self.value = value if value is not None else float("-inf")

    def __lt__(self, other):
        if isinstance(other, NumberItem):
            return self.value < other.value
        return super().__lt__(other)
