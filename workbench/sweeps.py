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
or a value out of range stops the sweep with the file and key named.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.config import WorkbenchConfig, load_config
from workbench.errors import ConfigError

SPEC_KEYS = ("name", "base", "seeds", "random_count", "random_seed", "set", "grid", "random", "config")


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

    @property
    def swept(self) -> list[str]:
        """The settings that vary between its runs (the seed included when several are given)."""
        keys = list(self.grid) + list(self.random)
        return keys + (["train.seed"] if len(self.seeds) > 1 else [])

    def to_dict(self) -> dict:
        return {"name": self.name, "grid": self.grid, "random": self.random, "random_count": self.random_count,
                "random_seed": self.random_seed, "seeds": self.seeds, "set": self.fixed,
                "config": self.base.to_dict()}


@dataclass
class PlannedRun:
    label: str                      # "masking.probability=0.3 seed=1"
    config: WorkbenchConfig


def load_sweep(path: str | Path, base: WorkbenchConfig | None = None) -> SweepSpec:
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
    return sweep_from_dict(raw, source=str(path), base_dir=path.parent, base=base)


def sweep_from_dict(raw: dict, source: str = "sweep", base_dir: Path | None = None,
                    base: WorkbenchConfig | None = None) -> SweepSpec:
    unknown = [key for key in raw if key not in SPEC_KEYS]
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]!r}; a sweep has {', '.join(SPEC_KEYS)}")
    if base is None:
        if "base" in raw and "config" in raw:
            raise ConfigError(f"{source}: give either base (a file) or [config] (sections), not both")
        if "base" in raw:
            base = load_config(Path(base_dir or ".") / str(raw["base"]))
        elif "config" in raw:
            base = WorkbenchConfig.from_dict(raw["config"], source=f"{source} [config]")
        else:
            base = WorkbenchConfig()
    name = raw.get("name", "sweep")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{source}: name must be a non-empty string")
    grid = _table(raw, "grid", source)
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{source}: grid {key!r} must be a non-empty list of values, got {values!r}")
    random_table = _table(raw, "random", source)
    for key, rule in random_table.items():
        _check_rule(key, rule, source)
    count = raw.get("random_count", 1 if random_table else 0)
    if not isinstance(count, int) or count < 0 or (random_table and count < 1):
        raise ConfigError(f"{source}: random_count must be a positive whole number, got {count!r}")
    seeds = raw.get("seeds", [base.train.seed])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise ConfigError(f"{source}: seeds must be a non-empty list of whole numbers >= 0, got {seeds!r}")
    overlap = set(grid) & set(random_table)
    if overlap:
        raise ConfigError(f"{source}: {sorted(overlap)[0]} is both in [grid] and [random]")
    spec = SweepSpec(name=name.strip(), base=base, grid=grid, random=random_table, random_count=count,
                     random_seed=int(raw.get("random_seed", 0)), seeds=list(seeds), fixed=_table(raw, "set", source))
    plan(spec, source)            # every run's config validates now, not when its turn comes
    return spec


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
    low, high = rule["low"], rule["high"]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or low > high:
        raise ConfigError(f"{source}: random {key!r}: low and high must be numbers with low <= high")
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
        for seed in spec.seeds:
            raw = spec.base.to_dict()
            for key, value in {**spec.fixed, **combo, "train.seed": seed}.items():
                section, _, name = key.partition(".")
                raw.setdefault(section, {})[name] = value
            raw["train"]["name"] = ""                # folders stay unique; the run is named after its label
            label = " ".join([f"{key}={_text(value)}" for key, value in combo.items()]
                             + ([f"seed={seed}"] if len(spec.seeds) > 1 or not combo else []))
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
