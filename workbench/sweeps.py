"""Sweeps: a base config plus settings to vary, expanded into the configs of the runs to queue.

A sweep file (TOML)::

    name = "masking rate"
    base = "tiny-sample.toml"        # optional: a run config, relative to this file (else the defaults)
    seeds = [0, 1, 2]                # optional: every combination runs once per seed (else the base's seed)
    random_count = 4                 # how many random draws, when [random] is given
    random_seed = 0                  # the draws are reproducible

    [set]                            # optional: fixed changes to the base
    "train.max_minutes" = 2

    [grid]                           # every combination of these lists
    "masking.probability" = [0.15, 0.3, 0.4]

    [random]                         # draws: a range (log = true for a log scale; integer bounds draw
    "train.learning_rate" = { low = 1e-4, high = 1e-3, log = true }     # integers) or a list to pick from

Every run's config is validated before anything is queued, so a typo in a key
or a value out of range stops the sweep with the file and key named. A
setting comes from one place: a key in two of [set], [grid] and [random], or
``train.seed`` varied there while ``seeds`` is given too, is an error naming
both. The runs are counted before anything is built: more than
``CONFIRM_RUNS`` need the user's confirmation, more than ``MAX_RUNS`` are
refused.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import WorkbenchConfig, apply_settings, load_config
from workbench.errors import ConfigError

SPEC_KEYS = ("name", "base", "seeds", "random_count", "random_seed", "set", "grid", "random", "config")
CONFIRM_RUNS = 200        # a larger sweep is queued only when the user confirms (--yes, a question in the window)
MAX_RUNS = 10_000         # never queued at once: validating and writing more takes minutes and floods the history


class LargeSweep(ConfigError):
    """A sweep of more than ``CONFIRM_RUNS`` runs, queued only once the user confirms."""

    def __init__(self, runs: int, message: str):
        super().__init__(message)
        self.runs = runs


@dataclass
class SweepSpec:
    name: str
    base: WorkbenchConfig
    grid: dict[str, list] = field(default_factory=dict)
    random: dict[str, Any] = field(default_factory=dict)
    random_count: int = 0
    random_seed: int = 0
    seeds: list[int] = field(default_factory=list)
    fixed: dict[str, Any] = field(default_factory=dict)
    runs: list["PlannedRun"] = field(default_factory=list, repr=False, compare=False)  # planned and validated

    @property
    def run_count(self) -> int:
        """How many runs it queues, counted without building them."""
        combos = math.prod(len(values) for values in self.grid.values())
        return combos * (self.random_count if self.random else 1) * max(1, len(self.seeds))

    def budget_text(self) -> str:
        """", about N minutes at M each" when the base runs on a time budget; else ""."""
        minutes = self.base.train.max_minutes
        if not minutes or self.base.train.max_steps:
            return ""
        return f", about {self.run_count * minutes:,.0f} minutes at {minutes:g} each"

    @property
    def swept(self) -> list[str]:
        """The settings that vary between its runs (the seed included when several are given)."""
        keys = list(self.grid) + list(self.random)
        return keys + (["train.seed"] if len(self.seeds) > 1 else [])

    def to_dict(self) -> dict:
        raw = {"name": self.name, "grid": self.grid, "random": self.random, "random_count": self.random_count,
               "random_seed": self.random_seed, "seeds": self.seeds, "set": self.fixed, "config": self.base.to_dict()}
        if not self.seeds:            # the seed comes from [set], [grid] or [random]
            del raw["seeds"]
        return raw


@dataclass
class PlannedRun:
    label: str                      # "masking.probability=0.3 seed=1"
    config: WorkbenchConfig


def load_sweep(path: str | Path, base: WorkbenchConfig | None = None, confirmed: bool = False) -> SweepSpec:
    """Read a sweep file; ``base`` replaces its ``base`` (the window passes its current config)."""
    import tomllib

    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: sweep file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the sweep file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    return sweep_from_dict(raw, source=str(path), base_dir=path.parent, base=base, confirmed=confirmed)


def sweep_from_dict(raw: dict, source: str = "sweep", base_dir: Path | None = None,
                    base: WorkbenchConfig | None = None, confirmed: bool = False) -> SweepSpec:
    """A validated sweep; ``confirmed`` allows more than ``CONFIRM_RUNS`` runs (never more than ``MAX_RUNS``)."""
    unknown = [key for key in raw if key not in SPEC_KEYS]
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; a sweep has {', '.join(SPEC_KEYS)}")
    if base is None:
        if "base" in raw and "config" in raw:
            raise ConfigError(f"{source}: give either base (a file) or [config] (sections), not both")
        if "base" in raw:
            if not isinstance(raw["base"], str):
                raise ConfigError(f"{source}: base must be the path of a run config, got {raw['base']!r}")
            base = load_config(Path(base_dir or ".") / raw["base"])
        elif "config" in raw:
            if not isinstance(raw["config"], dict):
                raise ConfigError(f"{source}: [config] must be a table of sections, got {raw['config']!r}")
            base = WorkbenchConfig.from_dict(raw["config"], source=f"{source} [config]")
        else:
            base = WorkbenchConfig()
    name = raw.get("name", "sweep")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{source}: name must be a non-empty string")
    parts = {part: _table(raw, part, source) for part in ("set", "grid", "random")}
    for key, values in parts["grid"].items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid {key!r} must be a non-empty list of values, got {values!r}")
        repeated = [value for index, value in enumerate(values) if value in values[:index]]
        if repeated:
            raise ConfigError(f"{source}: grid {key!r} lists {repeated[0]!r} twice (the runs would be the same)")
    for key, rule in parts["random"].items():
        _check_rule(key, rule, source)
    _refuse_keys_set_twice(parts, "seeds" in raw, source)
    count = raw.get("random_count", 1 if parts["random"] else 0)
    if not _whole(count) or count < 0 or (parts["random"] and count < 1):
        raise ConfigError(f"{source}: random_count must be a positive whole number, got {count!r}")
    random_seed = raw.get("random_seed", 0)
    if not _whole(random_seed) or not 0 <= random_seed < 2**63:
        raise ConfigError(f"{source}: random_seed must be a whole number in [0, 2^63), got {random_seed!r}")
    # Without a seeds list the seed is the base's, or the value [set], [grid] or [random] gives it.
    varied_elsewhere = any("train.seed" in table for table in parts.values())
    seeds = raw.get("seeds", [] if varied_elsewhere else [base.train.seed])
    if "seeds" in raw and (not isinstance(seeds, list) or not seeds
                           or not all(_whole(s) and 0 <= s < 2**63 for s in seeds)):
        raise ConfigError(f"{source}: seeds must be a non-empty list of whole numbers in [0, 2^63), got {seeds!r}")
    repeated = [seed for index, seed in enumerate(seeds) if seed in seeds[:index]]
    if repeated:
        raise ConfigError(f"{source}: seeds lists {repeated[0]} twice (the runs would be the same)")
    spec = SweepSpec(name=name.strip(), base=base, grid=parts["grid"], random=parts["random"], random_count=count,
                     random_seed=random_seed, seeds=list(seeds), fixed=parts["set"])
    runs = spec.run_count
    if runs > MAX_RUNS:
        raise ConfigError(f"{source}: {runs:,} runs; a sweep queues at most {MAX_RUNS:,} (fewer values, seeds or "
                          f"random_count, or several sweeps)")
    if runs > CONFIRM_RUNS and not confirmed:
        raise LargeSweep(runs, f"{source}: {runs:,} runs{spec.budget_text()}; confirm to queue more than "
                               f"{CONFIRM_RUNS}")
    spec.runs = plan(spec, source)      # every run's config validates now, not when its turn comes
    return spec


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _refuse_keys_set_twice(parts: dict[str, dict], has_seeds: bool, source: str) -> None:
    """A setting has one source in a sweep: a key in two of [set], [grid], [random] (or the seed in one of
    them and in ``seeds``) is an error naming both, never one silently overwriting the other."""
    owners: dict[str, str] = {"train.seed": "seeds"} if has_seeds else {}
    for part, table in parts.items():
        for key in table:
            if key in owners:
                raise ConfigError(f"{source}: {key} is set both by {_part_name(owners[key])} and by "
                                  f"{_part_name(part)}; give it in one place")
            owners[key] = part


def _part_name(part: str) -> str:
    return part if part == "seeds" else f"[{part}]"


def _table(raw: dict, key: str, source: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [{key}] must be a table of \"section.key\" = ..., got {value!r}")
    for name in value:
        if name.count(".") != 1:
            raise ConfigError(f"{source}: [{key}] {name!r} must name a setting as section.key "
                              f"(e.g. masking.probability)")
    return dict(value)


def _check_rule(key: str, rule, source: str) -> None:
    if isinstance(rule, list):
        if not rule:
            raise ConfigError(f"{source}: random {key!r}: an empty list")
        return
    if not isinstance(rule, dict) or "low" not in rule or "high" not in rule:
        raise ConfigError(f"{source}: random {key!r} must be {{ low = ..., high = ... }} (log = true for a log "
                          f"scale) or a list to pick from")
    extra = [name for name in rule if name not in ("low", "high", "log")]
    if extra:
        raise ConfigError(f"{source}: random {key!r}: unknown field {extra[0]!r} (low, high, log)")
    low, high = rule["low"], rule["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in (low, high)) \
            or low > high:
        raise ConfigError(f"{source}: random {key!r}: low and high must be finite numbers with low <= high")
    if not isinstance(rule.get("log", False), bool):
        raise ConfigError(f"{source}: random {key!r}: log must be true or false, got {rule['log']!r}")
    if rule.get("log") and low <= 0:
        raise ConfigError(f"{source}: random {key!r}: a log scale needs low > 0")


def _draw(rule, rng: random.Random):
    if isinstance(rule, list):
        return rng.choice(rule)
    low, high = rule["low"], rule["high"]
    if isinstance(low, int) and isinstance(high, int) and not rule.get("log"):
        return rng.randint(low, high)
    if rule.get("log"):
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return float(f"{value:.4g}")


def plan(spec: SweepSpec, source: str = "sweep") -> list[PlannedRun]:
    """The runs of a sweep, in queue order: grid combinations (times random draws), each once per seed."""
    combos = [dict(zip(spec.grid, values)) for values in itertools.product(*spec.grid.values())] or [{}]
    if spec.random:
        rng = random.Random(spec.random_seed)
        draws = [{key: _draw(rule, rng) for key, rule in spec.random.items()} for _ in range(spec.random_count)]
        combos = [{**combo, **draw} for combo in combos for draw in draws]
    runs = []
    for combo in combos:
        for seed in spec.seeds or [None]:
            seeded = {} if seed is None else {"train.seed": seed}
            raw = apply_settings(spec.base.to_dict(), {**spec.fixed, **combo, **seeded})
            raw["train"]["name"] = ""                # folders stay unique; the run is named after its label
            label = " ".join([f"{key}={_text(value)}" for key, value in combo.items()]
                             + ([f"seed={seed}"] if seed is not None and (len(spec.seeds) > 1 or not combo)
                                else []))
            try:
                config = WorkbenchConfig.from_dict(raw, source=f"{source} ({label})")
            except ConfigError as exc:
                raise ConfigError(str(exc)) from None
            runs.append(PlannedRun(label[:200], config))
    return runs


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# The first sweeps people run, one click each from the window's Help menu (and `sweep --example NAME`).
EXAMPLES: dict[str, dict] = {
    "masking-rate": {"name": "masking rate 15/30/40%", "grid": {"masking.probability": [0.15, 0.3, 0.4]},
                     "seeds": [0, 1]},
    "pair-task": {"name": "NSP vs SOP vs none", "grid": {"nsp.objective": ["nsp", "sop", "none"]}, "seeds": [0, 1]},
    "masking-units": {"name": "whole-word vs token masking", "grid": {"masking.strategy": ["whole_word", "token"]},
                      "seeds": [0, 1]},
    "model-size": {"name": "model size at equal time", "grid": {"model.preset": ["tiny", "mini", "small"]},
                   "set": {"train.max_steps": 0}, "seeds": [0]},      # every size gets train.max_minutes
}
