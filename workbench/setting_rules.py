"""How a setting is declared: its help, kind, choices and bounds (``setting``), the interval type
(``Bounds``), and the one check of a section against its declarations (``check_rules``). ``config.py``
declares the settings with these; ``validate``, the window's fields, the command line, the sweep dialog and
the README's reference read them back (``config.choices_of``, ``config.bounds_of``)."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from workbench.errors import ConfigError


def setting(default: Any, help: str, kind: str = "structural", choices: tuple | Callable[[], tuple] = (),
            bounds: str = "") -> Any:
    """A dataclass field with its documentation and its rules attached: ``choices`` (or a function giving
    them), ``bounds`` as an interval (``"[0, 1)"``, ``"[1, 10**12]"``). ``validate``, the window's fields,
    the command line and the sweep dialog all read them from here (``choices_of``, ``bounds_of``)."""
    return field(default=default, metadata={"help": help, "kind": kind, "choices": choices,
                                            "bounds": Bounds.parse(bounds) if bounds else None})


@dataclass(frozen=True)
class Bounds:
    """An interval of allowed numbers; open or closed at either end. Counts stop at 10**12 (far beyond any
    real run, far below an overflow), sizes where torch would fail: a typo's extra digits are refused."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def parse(cls, text: str) -> "Bounds":
        match = re.fullmatch(r"([\[(])\s*([^,]+),\s*([^\])]+)([\])])", text.strip())
        if not match:
            raise ValueError(f"bounds {text!r}: write an interval like [0, 1)")
        low, high = (_number(part) for part in match.group(2, 3))
        return cls(low, high, match.group(1) == "(", match.group(4) == ")")

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and below

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{_show(self.low)}, {_show(self.high)}{')' if self.high_open else ']'}"


def _number(text: str) -> int | float:
    """``10**12``, ``2**63 - 1``, ``1e9``, ``0.5``: the literal forms bounds are written in."""
    text = text.strip()
    match = re.fullmatch(r"(\d+)\*\*(\d+)(?:\s*-\s*(\d+))?", text)
    if match:
        return int(match.group(1)) ** int(match.group(2)) - int(match.group(3) or 0)
    return float(text) if any(c in text for c in ".e") else int(text)


def _show(value: float) -> str:
    if isinstance(value, int) and value >= 10**6:
        for base in (10, 2):
            exponent = round(math.log(value + 1, base))
            if base ** exponent in (value, value + 1):
                return f"{base}**{exponent}" + (" - 1" if base ** exponent == value + 1 else "")
    return f"{value:g}" if isinstance(value, float) else str(value)


def check_rules(section: Any) -> None:
    """Every setting of ``section`` within its declared bounds and among its choices (the message names the
    key)."""
    for f in dataclasses.fields(section):
        bounds, choices = f.metadata.get("bounds"), choices_in(f)
        value = getattr(section, f.name)
        if choices and value not in choices:
            raise ConfigError(f"{section.SECTION}.{f.name} must be one of {', '.join(choices)}; got {value!r}")
        if bounds is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value in bounds):
            raise ConfigError(f"{section.SECTION}.{f.name} must be in {bounds}, got {value!r}")


def choices_in(f: dataclasses.Field) -> tuple[str, ...]:
    choices = f.metadata.get("choices", ())
    return tuple(choices() if callable(choices) else choices)
