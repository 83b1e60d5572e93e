"""Learning-rate schedule: linear warm-up, then decay over the run's progress (linear, cosine, or ``wsd``:
stable at the peak, then linear to zero over the last ``cooldown_fraction``).

Warm-up lasts ``warmup_steps`` steps, or the first ``warmup_fraction`` of the
budget if that comes first: on a slow machine a 5-minute budget holds a few
hundred steps, and 100 of them would be a third of the run.

Progress is the larger of steps done / max_steps and time used / time budget,
so a run with ``max_minutes`` decays to zero exactly when its time runs out
(as in Cramming), and a step-limited run behaves as the usual schedule.

A budget changed on resume is anchored (the trainer's ``_anchor_schedule``):
the learning rate goes on from where it stood, at the new budget's pace.
"""

from __future__ import annotations

import math

from workbench.config import TrainConfig


def decay_fraction(config: TrainConfig, progress: float, state) -> float:
    """How far the decay has gone, in [0, 1], for a state with ``decay_start`` and an anchor."""
    return _fraction(progress, state.decay_start, state.anchor_progress, state.anchor_fraction)


def _fraction(progress: float, decay_start: float, anchor_progress: float, anchor_fraction: float) -> float:
    if anchor_progress > 0.0:
        # The budget changed on resume: the decay goes on from where it stood to the new end.
        done = (progress - anchor_progress) / max(1e-12, 1.0 - anchor_progress)
        return min(1.0, max(0.0, anchor_fraction + (1.0 - anchor_fraction) * done))
    return min(1.0, max(0.0, (progress - decay_start) / max(1e-12, 1.0 - decay_start)))


def warmup_scale(config: TrainConfig, step: int, progress: float,
                 anchor: tuple[float, int, float] | None = None) -> float:
    """How far warm-up has gone after optimizer step ``step`` (0-based), in (0, 1]: by steps, or by the share of
    the budget used (``progress``) where that is further; 1 once it is over.

    After the budget (or the warm-up settings) changed on resume, ``anchor`` is (scale, step, progress) at that
    moment: the warm-up goes on from the scale it had reached at the new settings' pace, so the learning rate
    neither jumps nor falls back into a warm-up that had ended."""
    if anchor is not None:
        scale, from_step, from_progress = anchor
        if scale >= 1.0 or not config.warmup_steps:
            return 1.0
        by_steps = (step - from_step) / config.warmup_steps
        by_budget = (progress - from_progress) / config.warmup_fraction if config.warmup_fraction else 0.0
        return min(1.0, scale + max(0.0, by_steps, by_budget))
    if not config.warmup_steps:
        return 1.0
    by_steps = (step + 1) / config.warmup_steps
    by_budget = progress / config.warmup_fraction if config.warmup_fraction else 0.0
    return min(1.0, max(by_steps, by_budget))


def learning_rate(config: TrainConfig, step: int, progress: float, decay_start: float,
                  anchor_progress: float = 0.0, anchor_fraction: float = 0.0,
                  warmup_anchor: tuple[float, int, float] | None = None) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    ``progress`` is the budget used so far in [0, 1]; ``decay_start`` is the progress at
    which warm-up ended (``warmup_end`` for a step budget). After the
    budget was changed on resume, ``anchor_progress`` is the new budget's progress at
    that moment and ``anchor_fraction`` how far the decay had gone then; ``warmup_anchor`` see ``warmup_scale``.
    """
    peak = config.learning_rate
    warmed = warmup_scale(config, step, progress, warmup_anchor)
    if warmed < 1.0:
        return peak * warmed
    if config.schedule == "constant":
        return peak
    fraction = _fraction(progress, decay_start, anchor_progress, anchor_fraction)
    if config.schedule == "cosine":
        return peak * 0.5 * (1.0 + math.cos(math.pi * fraction))
    if config.schedule == "wsd":                       # the peak until the last cooldown_fraction, then linear
        return peak * min(1.0, (1.0 - fraction) / config.cooldown_fraction)
    return peak * (1.0 - fraction)


def warmup_end(config: TrainConfig) -> float:
    """The progress at which warm-up ends in a run with a step limit and no time budget (a time budget's is known
    only when it comes: the trainer records it)."""
    if not config.max_steps or not config.warmup_steps:
        return 0.0
    by_steps = config.warmup_steps / config.max_steps
    return min(by_steps, config.warmup_fraction) if config.warmup_fraction else by_steps


def schedule_settings(config: TrainConfig) -> tuple:
    """What the schedule's shape in time depends on besides the learning rate: a change on resume is anchored."""
    return config.max_steps, config.max_minutes, config.warmup_steps, config.warmup_fraction


def run_progress(config: TrainConfig, step: int, elapsed_seconds: float) -> float:
    """Fraction of the budget used: steps, or time when a time budget is set, whichever is further."""
    progress = step / config.max_steps if config.max_steps else 0.0
    if config.max_minutes:
        progress = max(progress, elapsed_seconds / (60.0 * config.max_minutes))
    return min(1.0, progress)
