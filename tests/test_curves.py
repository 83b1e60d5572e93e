"""The plots' curve arithmetic (workbench.gui.curves, numpy only): against plain loops and by invariants."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.gui.curves import GrowingColumns, SmoothedCache, band_outline, ema, ema_biased, envelope

finite = st.floats(-1e6, 1e6, allow_nan=False)


def ema_loop(values, weight):
    """TensorBoard's smoothing, written out."""
    out, last = [], 0.0
    for k, x in enumerate(values, start=1):
        last = weight * last + (1 - weight) * x
        out.append(last / (1 - weight ** k))
    return np.array(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=300), st.sampled_from([0.3, 0.6, 0.9, 0.99]))
def test_ema_equals_the_loop(values, weight):
    values = np.array(values)
    assert np.allclose(ema(values, weight), ema_loop(values, weight), rtol=1e-9, atol=1e-6 * (1 + np.abs(values).max()))


@pytest.mark.parametrize("weight", [0.9, 0.999])
def test_ema_stays_exact_across_blocks_on_long_series(weight):
    """Blocks are short enough that w^-k stays finite; 50,000 points cross many of them."""
    values = np.random.default_rng(0).normal(3.0, 1.0, 50_000)
    assert np.allclose(ema(values, weight), ema_loop(values, weight), rtol=1e-9)
    assert ema(np.full(1000, 2.5), weight) == pytest.approx(np.full(1000, 2.5))   # debiased: no ramp from 0


def test_ema_with_no_smoothing_is_the_series():
    values = np.array([1.0, 5.0, 2.0])
    assert ema(values, 0.0) is values
    assert len(ema(np.array([]), 0.6)) == 0
    assert ema_biased(np.array([4.0]), 0.5, previous=2.0) == pytest.approx([3.0])


def test_smoothed_cache_extends_to_what_a_full_pass_gives():
    values = np.random.default_rng(1).normal(size=5000)
    cache = SmoothedCache()
    for n in (1, 7, 900, 901, 5000):                       # points arrive in uneven chunks
        assert np.allclose(cache.get("loss", values[:n], 0.9), ema_loop(values[:n], 0.9))
    assert np.allclose(cache.get("loss", values, 0.6), ema_loop(values, 0.6))   # a new weight: recomputed
    assert np.allclose(cache.get("loss", values[:10], 0.6), ema_loop(values[:10], 0.6))   # a shorter series
    assert cache.get("loss", values, 0.0) is values


@settings(max_examples=60, deadline=None)
@given(st.lists(finite, min_size=1, max_size=2000), st.integers(1, 50))
def test_envelope_keeps_every_peak_in_order(values, bins):
    y = np.array(values)
    x = np.arange(len(y), dtype=float)
    ex, ey = envelope(x, y, bins)
    assert len(ex) == len(ey) <= max(len(y), 2 * bins + len(y) // bins + 1)
    assert np.all(np.diff(ex) > 0)                        # drawn left to right, no point twice
    assert ey.max() == y.max() and ey.min() == y.min()
    assert np.array_equal(y[ex.astype(int)], ey)           # only real points


def test_a_missing_value_never_wins_the_envelope():
    y = np.array([1.0, math.nan, 3.0, 2.0] * 100)
    _, ey = envelope(np.arange(len(y), dtype=float), y, 10)
    assert not np.isnan(ey).any() and ey.max() == 3.0 and ey.min() == 1.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(finite, finite), min_size=1, max_size=2000), st.integers(1, 50))
def test_a_band_outline_covers_every_value_without_crossing_itself(pairs, bins):
    low = np.array([min(a, b) for a, b in pairs])
    high = np.array([max(a, b) for a, b in pairs])
    x = np.arange(len(low), dtype=float) * 3.0
    px, py = band_outline(x, low, high, bins)
    half = len(px) // 2
    assert len(px) == 2 * half and half <= max(len(x), bins + len(x) // bins + 1)
    edge_x, lower, upper = px[:half], py[:half], py[half:][::-1]
    assert np.array_equal(px[half:][::-1], edge_x) and edge_x[0] == x[0] and edge_x[-1] == x[-1]
    assert np.all(np.diff(edge_x) >= 0) and np.all(lower <= upper)     # one loop: out along low, back along high
    # every value lies inside the band where it is drawn: the bin that starts at or before its x
    where = np.searchsorted(edge_x, x, side="right") - 1
    assert np.all(lower[where] <= low) and np.all(upper[where] >= high)


def test_growing_columns_keep_every_value_as_they_grow():
    columns = GrowingColumns(("a", "b"), capacity=2)
    for i in range(5):
        columns.append({"a": float(i)})                    # "b" missing: NaN
    columns.extend({"a": np.arange(5.0, 105.0), "b": np.ones(100)})
    assert np.array_equal(columns.view("a"), np.arange(105.0))
    assert np.isnan(columns.view("b")[:5]).all() and (columns.view("b")[5:] == 1).all()
    columns.clear()
    assert len(columns.view("a")) == 0
