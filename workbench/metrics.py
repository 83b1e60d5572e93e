"""The metric table: every metric a run reports, in one place - its title, whether it is measured on
training batches or held out, which direction is better, how it is shown.

The trainer's events carry metrics as fields (``StepMetrics``, ``EvalMetrics``); the recorder stores every
numeric field of them; the live plots, the Runs table, Compare, the summaries and the CLI read titles,
formats and directions from here. A metric the table does not know (a field added to an event, a series
in an older database) is still recorded and shown, with its name as title and no direction.
"""

from __future__ import annotations

from dataclasses import dataclass

EVAL_PREFIX = "eval_"      # a held-out metric's name in summaries and comparisons ("eval_mlm_loss")


@dataclass(frozen=True)
class Metric:
    name: str                # the event field and the stored series ("mlm_loss")
    title: str               # "MLM loss"
    better: str = ""         # "min", "max", or "" (neither: the learning rate, the step time...)
    fmt: str = ".4g"         # format spec of a value
    unit: str = ""           # "s", "tokens/s"
    log_scale: bool = False  # plotted on a log axis when asked
    train: bool = True       # reported on training batches (step events)
    heldout: bool = False    # reported on the fixed evaluation set (eval events)
    short: str = ""          # a narrower title for table columns ("MLM acc")

    def format(self, value: float | None) -> str:
        if value is None:
            return "-"
        return f"{value:{self.fmt}}" + (f" {self.unit}" if self.unit else "")

    def best(self, values) -> float:
        """The best of ``values`` (the last one for a metric with no direction)."""
        values = list(values)
        return min(values) if self.better == "min" else max(values) if self.better == "max" else values[-1]


TABLE: tuple[Metric, ...] = (
    Metric("loss", "Loss", "min", ".4f", log_scale=True),
    Metric("mlm_loss", "MLM loss", "min", ".4f", log_scale=True, heldout=True),
    Metric("nsp_loss", "NSP loss", "min", ".4f", log_scale=True, heldout=True),
    Metric("mlm_accuracy", "MLM accuracy", "max", ".3f", heldout=True, short="MLM acc"),
    Metric("mlm_accuracy_masked", "MLM accuracy at [MASK]", "max", ".3f"),
    Metric("mlm_accuracy_random", "MLM accuracy at random tokens", "max", ".3f"),
    Metric("mlm_accuracy_kept", "MLM accuracy at kept tokens", "max", ".3f"),
    Metric("nsp_accuracy", "NSP accuracy", "max", ".3f", heldout=True, short="NSP acc"),
    Metric("perplexity", "Perplexity", "min", ".2f", log_scale=True, train=False, heldout=True),
    Metric("floor_mlm_loss", "Context-free MLM loss", "", ".4f", train=False, heldout=True),
    Metric("floor_mlm_accuracy", "Context-free MLM accuracy", "", ".3f", train=False, heldout=True),
    Metric("chance_nsp_accuracy", "Chance NSP accuracy", "", ".3f", train=False, heldout=True),
    Metric("lr", "Learning rate", "", ".3g"),
    Metric("grad_norm", "Gradient norm", "min", ".3g", log_scale=True),
    Metric("tokens_per_second", "Tokens / s", "max", ",.0f", "tokens/s", short="tokens/s"),
    Metric("padding_fraction", "Padding", "min", ".1%"),
    Metric("masking_rate", "Masking rate", "", ".3f", short="masked"),
    Metric("step_time", "Step time", "min", ".3f", "s"),
    Metric("tokens_seen", "Tokens seen", "", ",.0f"),
    Metric("elapsed", "Training time", "", ",.0f", "s"),
    # A fine-tuning comparison's curves (``services.finetune_record``): each arm's held-out scores.
    *(Metric(f"{arm}_{name}", f"{arm.capitalize()} arm {title}", "max", ".3f", train=False, heldout=True)
      for arm in ("pretrained", "scratch", "frozen") for name, title in (("accuracy", "accuracy"),
                                                                         ("macro_f1", "macro-F1"))),
)
# What a run list shows of every run (the Runs panel, ``runs``): training values, then held-out ones.
RUN_LIST = ("mlm_loss", "mlm_accuracy", "nsp_accuracy", "eval_mlm_loss", "eval_mlm_accuracy", "eval_nsp_accuracy",
            "tokens_per_second")
METRICS: dict[str, Metric] = {m.name: m for m in TABLE}
# Event fields that are not metrics: where the point is, not what was measured.
NOT_METRICS = frozenset({"step", "epoch", "progress", "eta_seconds", "sequences"})


def metric(name: str) -> Metric:
    """The table's entry for ``name`` (``eval_`` prefix allowed); an unknown one gets a plain entry."""
    bare = name.removeprefix(EVAL_PREFIX)
    return METRICS.get(bare) or Metric(bare, bare.replace("_", " ").capitalize())


def lower_is_better(name: str) -> bool:
    return metric(name).better == "min"


def title(name: str, short: bool = False) -> str:
    """"MLM loss", or "held-out MLM loss" for ``eval_mlm_loss``; ``short``: the column title."""
    entry = metric(name)
    text = entry.short if short and entry.short else entry.title
    if not name.startswith(EVAL_PREFIX):
        return text
    acronym = len(text) > 1 and text[1].isupper()
    return f"held-out {text if acronym else text[0].lower() + text[1:]}"


def recorded_fields(event: dict) -> dict[str, float]:
    """The metrics of an event (a step's or an evaluation's), by name: every numeric field but the bookkeeping
    ones, so a field added to an event is recorded without a list to update."""
    return {key: float(value) for key, value in event.items()
            if key not in NOT_METRICS and key != "type" and isinstance(value, (int, float))
            and not isinstance(value, bool)}


def format_value(name: str, value: float | None) -> str:
    """``value`` as the table shows ``name`` ("-" when there is none)."""
    return "-" if value is None else f"{value:{metric(name).fmt}}"


def train_metrics() -> tuple[str, ...]:
    return tuple(m.name for m in TABLE if m.train)


def heldout_metrics() -> tuple[str, ...]:
    return tuple(m.name for m in TABLE if m.heldout)
