"""Curve arithmetic for the plots, in numpy only (no Qt): growing columns, EMA smoothing, a peak-keeping envelope.

* ``GrowingColumns`` - float64 columns that grow by doubling as points arrive;
* ``ema`` / ``ema_biased`` - TensorBoard's smoothing (debiased EMA), vectorised;
* ``SmoothedCache`` - smoothed copies extended as points arrive, computed on the full series (never on the
  drawn subsample, so smoothing does not change with the zoom);
* ``envelope`` - at most 2 x bins points that keep every bin's min and max (what is drawn of long curves);
* ``band_outline`` - a group's band as one polygon that does not cross itself.
"""

from __future__ import annotations

import math
import warnings

import numpy as np


class GrowingColumns:
    """Columns of float64 that grow by doubling; ``view(name)`` is the filled part."""

    def __init__(self, names: tuple[str, ...], capacity: int = 1024):
        self.n = 0
        self.data = {name: np.empty(capacity) for name in names}

    def append(self, values: dict[str, float]) -> None:
        if self.n == len(next(iter(self.data.values()))):
            for name, column in self.data.items():
                grown = np.empty(2 * len(column))
                grown[: self.n] = column[: self.n]
                self.data[name] = grown
        for name, column in self.data.items():
            column[self.n] = values.get(name, math.nan)
        self.n += 1

    def extend(self, columns: dict[str, np.ndarray]) -> None:
        count = len(next(iter(columns.values())))
        needed = self.n + count
        for name, column in self.data.items():
            if needed > len(column):
                grown = np.empty(max(needed, 2 * len(column)))
                grown[: self.n] = column[: self.n]
                column = self.data[name] = grown
            column[self.n:needed] = columns.get(name, np.full(count, math.nan))
        self.n = needed

    def view(self, name: str) -> np.ndarray:
        return self.data[name][: self.n]

    def clear(self) -> None:
        self.n = 0


def ema_biased(values: np.ndarray, weight: float, previous: float = 0.0) -> np.ndarray:
    """y_k = w y_(k-1) + (1 - w) x_k from y_0 = ``previous``, vectorised by blocks.

    Inside a block, y_k = w^k (y_0 + (1 - w) sum_(j<=k) w^-j x_j); blocks are short
    enough that w^-k stays finite.
    """
    out = np.empty(len(values))
    block = max(1, min(4096, int(200 / -math.log(weight))))
    for start in range(0, len(values), block):
        x = values[start:start + block]
        k = np.arange(1, len(x) + 1)
        out[start:start + len(x)] = weight ** k * (previous + (1 - weight) * np.cumsum(x * weight ** -k))
        previous = out[start + len(x) - 1]
    return out


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """Exponential moving average, debiased as TensorBoard's smoothing."""
    if weight <= 0 or len(values) == 0:
        return values
    return ema_biased(values, weight) / (1 - weight ** np.arange(1, len(values) + 1))


def envelope(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """At most 2 * ``bins`` points that keep every peak: the min and max of each bin, in order."""
    n = len(x)
    if n <= 2 * bins:
        return x, y
    per = n // bins
    cut = per * bins
    ys = y[:cut].reshape(bins, per)
    xs = x[:cut].reshape(bins, per)
    if np.isnan(ys).any():  # a missing metric (NaN) must not win the min or the max
        low = np.where(np.isnan(ys), np.inf, ys).argmin(axis=1)
        high = np.where(np.isnan(ys), -np.inf, ys).argmax(axis=1)
    else:
        low, high = ys.argmin(axis=1), ys.argmax(axis=1)
    first = np.minimum(low, high)
    second = np.maximum(low, high)
    # A flat bin has its min and max at one point: take its two ends instead, so no point is drawn twice.
    flat = first == second
    second = np.where(flat & (first < per - 1), per - 1, second)
    first = np.where(flat & (second == first), 0, first)
    rows = np.arange(bins)
    out_x = np.column_stack([xs[rows, first], xs[rows, second]]).ravel()
    out_y = np.column_stack([ys[rows, first], ys[rows, second]]).ravel()
    return np.concatenate([out_x, x[cut:]]), np.concatenate([out_y, y[cut:]])


def band_outline(x: np.ndarray, low: np.ndarray, high: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """A band as one polygon without self-crossings: the low edge forwards, then the high edge backwards.

    Past 2 * ``bins`` points each edge is one point per bin, at the bin's first x: the lowest ``low`` and
    the highest ``high`` in the bin, so the band still covers every value. (Zig-zag min/max edges make a
    polygon that crosses itself thousands of times, and filling one took a third of a second.)"""
    x, low, high = np.asarray(x, float), np.asarray(low, float), np.asarray(high, float)
    n = len(x)
    if n > 2 * bins:
        per = n // bins
        cut = per * bins
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)          # an all-NaN bin stays NaN
            lows = np.nanmin(low[:cut].reshape(bins, per), axis=1)
            highs = np.nanmax(high[:cut].reshape(bins, per), axis=1)
        # Each bin's extremes hold from its first x to the next bin's; the last bin's up to its own last x.
        end = [cut - 1] if cut == n else []
        x = np.concatenate([x[:cut:per], x[end], x[cut:]])
        low = np.concatenate([lows, lows[-1:] if end else [], low[cut:]])
        high = np.concatenate([highs, highs[-1:] if end else [], high[cut:]])
    return np.concatenate([x, x[::-1]]), np.concatenate([low, high[::-1]])


class SmoothedCache:
    """Smoothed copies of the curves, extended as points arrive (a full pass only when the weight changes)."""

    def __init__(self) -> None:
        self.weight = -1.0
        self.biased: dict[str, GrowingColumns] = {}
        self.state: dict[str, float] = {}
        self.debias = np.ones(0)   # 1 / (1 - w^k), shared by every curve

    def get(self, name: str, values: np.ndarray, weight: float) -> np.ndarray:
        if weight <= 0:
            return values
        if weight != self.weight:
            self.weight, self.biased, self.state, self.debias = weight, {}, {}, np.ones(0)
        column = self.biased.setdefault(name, GrowingColumns(("y",)))
        if column.n > len(values):
            column.clear()
            self.state[name] = 0.0
        if column.n < len(values):
            new = ema_biased(values[column.n:], weight, self.state.get(name, 0.0))
            column.extend({"y": new})
            self.state[name] = float(new[-1])
        n = len(values)
        if len(self.debias) < n:
            size = max(n, 2 * len(self.debias))
            with np.errstate(over="ignore"):
                self.debias = 1.0 / (1.0 - weight ** np.arange(1, size + 1, dtype=float))
        return column.view("y")[:n] * self.debias[:n]
