"""Plain events the trainer emits; subscribers turn them into output, rows or Qt signals.

The trainer knows nothing of terminals, databases or Qt: it calls every
subscriber with one of these dataclasses. ``to_dict()`` gives the JSON form
the CLI prints with ``--json`` (one object per line, with a ``type``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

log = logging.getLogger(__name__)


@dataclass
class Event:
    type: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, **dataclasses.asdict(self)}


@dataclass
class RunStarted(Event):
    type: ClassVar[str] = "started"
    run_dir: str
    device: str
    precision: str
    num_parameters: int
    world_size: int
    start_step: int          # 0, or the step a resumed run continues from
    max_steps: int
    config: dict


@dataclass
class StepMetrics(Event):
    """Training metrics, averaged over the ``log_every`` steps that end at ``step``."""

    type: ClassVar[str] = "step"
    step: int
    epoch: int
    loss: float
    mlm_loss: float
    nsp_loss: float | None         # None without a pair task (nsp.objective = "none"), as nsp_accuracy
    mlm_accuracy: float            # over all selected positions
    mlm_accuracy_masked: float     # ... where the input was [MASK]
    mlm_accuracy_random: float     # ... where it was a random token
    mlm_accuracy_kept: float       # ... where it was left unchanged
    nsp_accuracy: float | None
    lr: float
    grad_norm: float
    tokens_per_second: float       # real (non-padding) tokens, all processes
    padding_fraction: float
    masking_rate: float            # predicted positions / real tokens (it falls with masking.final_probability)
    step_time: float               # seconds per optimizer step
    tokens_seen: int
    elapsed: float                 # training seconds so far (pauses excluded)
    progress: float                # 0..1 of the step or time budget
    eta_seconds: float


@dataclass
class EvalMetrics(Event):
    """Scores on the dataset's fixed, pre-masked evaluation set (``workbench.train.evaluation``)."""

    type: ClassVar[str] = "eval"
    step: int
    mlm_loss: float
    mlm_accuracy: float
    perplexity: float
    nsp_loss: float | None            # None without a pair task, as nsp_accuracy
    nsp_accuracy: float | None
    sequences: int
    floor_mlm_loss: float = 0.0       # the context-free (unigram) references on the same positions
    floor_mlm_accuracy: float = 0.0
    chance_nsp_accuracy: float = 0.5  # 0 without a pair task
    elapsed: float = 0.0              # training seconds when evaluated


@dataclass
class CheckpointSaved(Event):
    type: ClassVar[str] = "checkpoint"
    step: int
    path: str
    size_bytes: int


@dataclass
class SnapshotTaken(Event):
    """An inspection snapshot was stored (``workbench.snapshots``)."""

    type: ClassVar[str] = "snapshot"
    step: int
    run_dir: str
    size_bytes: int
    seconds: float                    # what taking it cost (outside the step times and the time budget)


@dataclass
class StateChanged(Event):
    type: ClassVar[str] = "state"
    state: str   # "paused" | "running"
    step: int


@dataclass
class Notice(Event):
    type: ClassVar[str] = "notice"
    message: str


@dataclass
class RunFinished(Event):
    type: ClassVar[str] = "finished"
    status: str                  # "completed" | "stopped"
    reason: str
    step: int
    elapsed: float
    last_checkpoint: str
    final: dict = field(default_factory=dict)


@dataclass
class RunFailed(Event):
    type: ClassVar[str] = "failed"
    step: int
    reason: str
    last_checkpoint: str


Subscriber = Callable[[Event], None]


class EventBus:
    """Calls each subscriber with each event; a failing subscriber is logged, not fatal."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self.failures: dict[int, int] = {}   # id(subscriber) -> failures so far

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except Exception as exc:  # a broken printer must not kill a training run
                count = self.failures.get(id(subscriber), 0) + 1
                self.failures[id(subscriber)] = count
                if count == 1:  # one line, once; the traceback only at debug level
                    log.warning("%s failed on a %s event: %s: %s (further failures are not reported)",
                                type(subscriber).__name__, event.type, type(exc).__name__, exc)
                log.debug("subscriber failure", exc_info=True)
