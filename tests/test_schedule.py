"""The learning-rate schedule: warm-up by steps or a share of the budget, decay over the budget's progress, and resume anchors."""

import pytest

from workbench.config import TrainConfig
from workbench.train.schedule import learning_rate, run_progress, warmup_end


def config(**values) -> TrainConfig:
    base = dict(learning_rate=1e-3, warmup_steps=10, warmup_fraction=0.0, max_steps=110, max_minutes=0.0,
                schedule="linear")
    base.update(values)
    return TrainConfig(**base)


def test_warm_up_rises_linearly_to_the_peak():
    c = config()
    assert [learning_rate(c, s, 0.0, 10 / 110) for s in (0, 4, 9)] == pytest.approx([1e-4, 5e-4, 1e-3])


def test_warm_up_ends_at_its_share_of_the_budget_when_the_steps_would_take_longer():
    short = config(warmup_steps=100, warmup_fraction=0.06, max_steps=330, schedule="constant")   # a slow machine
    ramp = [learning_rate(short, s, s / 330, warmup_end(short)) for s in range(0, 30)]
    assert warmup_end(short) == pytest.approx(0.06)
    assert ramp[9] == pytest.approx(1e-3 * (9 / 330) / 0.06)                 # the budget's ramp: faster than 10/100
    assert all(a < b for a, b in zip(ramp[:20], ramp[1:20]))
    assert ramp[20:] == pytest.approx([1e-3] * 10)                           # at the peak from 6% of 330 steps on
    long = config(warmup_steps=100, warmup_fraction=0.06, max_steps=5000)    # 100 steps come first: by steps
    assert warmup_end(long) == pytest.approx(100 / 5000)
    assert learning_rate(long, 49, 49 / 5000, warmup_end(long)) == pytest.approx(5e-4)
    timed = config(warmup_steps=100, warmup_fraction=0.06, max_steps=0, max_minutes=5.0)
    assert learning_rate(timed, 9, 0.03, 0.0) == pytest.approx(5e-4)         # half of 6% of the time: half the peak
    assert learning_rate(timed, 9, 0.061, 0.061) == pytest.approx(1e-3)        # over: the decay starts here
    by_steps = config(warmup_steps=100, max_steps=330)                       # warmup_fraction 0: steps alone
    assert learning_rate(by_steps, 49, 49 / 330, warmup_end(by_steps)) == pytest.approx(5e-4)


@pytest.mark.parametrize("schedule, half, end", [("linear", 5e-4, 0.0), ("cosine", 5e-4, 0.0),
                                                  ("constant", 1e-3, 1e-3)])
def test_decay_runs_from_the_end_of_warm_up_to_the_end_of_the_budget(schedule, half, end):
    c = config(schedule=schedule)
    start = 10 / 110
    assert learning_rate(c, 10, start, start) == pytest.approx(1e-3)
    assert learning_rate(c, 60, (start + 1) / 2, start) == pytest.approx(half)
    assert learning_rate(c, 110, 1.0, start) == pytest.approx(end, abs=1e-12)


def test_wsd_holds_the_peak_then_falls_linearly_to_zero_over_the_cool_down():
    c = config(schedule="wsd", cooldown_fraction=0.2)
    start = 10 / 110
    at = lambda fraction: learning_rate(c, 50, start + fraction * (1 - start), start)   # noqa: E731
    assert [at(f) for f in (0.0, 0.5, 0.8)] == pytest.approx([1e-3, 1e-3, 1e-3])
    assert [at(f) for f in (0.9, 0.95, 1.0)] == pytest.approx([5e-4, 2.5e-4, 0.0], abs=1e-12)
    whole = config(schedule="wsd", cooldown_fraction=1.0)                     # the whole budget: linear's decay
    assert learning_rate(whole, 60, (start + 1) / 2, start) == pytest.approx(learning_rate(config(), 60, (start + 1) / 2, start))


def test_cosine_stays_above_linear_in_the_first_half():
    c_cos, c_lin = config(schedule="cosine"), config()
    assert learning_rate(c_cos, 30, 0.3, 0.0) > learning_rate(c_lin, 30, 0.3, 0.0)


def test_progress_is_steps_or_time_whichever_is_further():
    assert run_progress(config(), 55, 0.0) == pytest.approx(0.5)
    timed = config(max_steps=0, max_minutes=2.0)
    assert run_progress(timed, 10**6, 30.0) == pytest.approx(0.25)          # no step limit: time alone
    both = config(max_steps=100, max_minutes=1.0)
    assert run_progress(both, 10, 45.0) == pytest.approx(0.75)
    assert run_progress(both, 90, 6.0) == pytest.approx(0.9)
    assert run_progress(both, 500, 600.0) == 1.0                              # never past the end


def test_a_budget_raised_on_resume_continues_the_decay_without_a_jump():
    c = config(warmup_steps=0)
    # The old budget had decayed 60% when it was raised; the new budget's progress was then 0.3.
    before = learning_rate(c, 50, 0.6, 0.0)
    after = learning_rate(c, 50, 0.3, 0.0, anchor_progress=0.3, anchor_fraction=0.6)
    assert after == pytest.approx(before)
    assert learning_rate(c, 80, 0.65, 0.0, anchor_progress=0.3, anchor_fraction=0.6) == pytest.approx(2e-4)
    assert learning_rate(c, 99, 1.0, 0.0, anchor_progress=0.3, anchor_fraction=0.6) == pytest.approx(0.0)


def test_a_warm_up_anchored_on_resume_climbs_on_from_where_it_stood():
    from workbench.train.schedule import warmup_scale

    c = config(warmup_steps=100, warmup_fraction=0.06)
    # At step 30 of the old budget the ramp stood at 0.5; the new budget's progress was then 0.01.
    assert warmup_scale(c, 30, 0.01, (0.5, 30, 0.01)) == pytest.approx(0.5)
    assert warmup_scale(c, 40, 0.012, (0.5, 30, 0.01)) == pytest.approx(0.6)          # by steps: 10 of 100
    assert warmup_scale(c, 31, 0.04, (0.5, 30, 0.01)) == pytest.approx(1.0)           # by budget: 3% of 6%
    assert warmup_scale(c, 31, 0.0101, (1.0, 30, 0.01)) == 1.0                        # over stays over
    assert warmup_scale(c, 31, 0.0101) < 0.4                                          # (unanchored: back to 32%)
