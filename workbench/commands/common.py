"""Pieces shared by the command implementations: errors, option groups, config assembly, progress."""

from __future__ import annotations

import argparse
import sys
import time

from workbench.formatting import duration  # noqa: F401 - the commands' shared import

from workbench.config import (
    WorkbenchConfig, allowed_text, apply_settings, choices_of, load_config, parse_assignment,
)
from workbench.errors import WorkbenchError


class UsageError(WorkbenchError):
    """A bad command-line option."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise UsageError(f"{self.prog}: {message} (see --help)")


def refuse_to_replace(path: str | None, force: bool, flag: str) -> None:
    """An output file named on the command line is replaced only with ``--force``: a typo must not cost a
    file the user kept."""
    from pathlib import Path

    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; name a file")
    if target.exists() and not force:
        raise UsageError(f"{flag} {path}: the file exists; add --force to replace it")


# --- progress ------------------------------------------------------------------

class ProgressPrinter:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    LABELS = {"train-tokenizer": "training tokenizer", "tokenize": "tokenizing", "sample": "building sample corpus"}

    def __init__(self, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.last = 0.0
        self.started = time.perf_counter()
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if stage != self.stage:
            if self.stage:
                self.stream.write("\n")
            self.stage, self.started = stage, now
        elif now - self.last < 0.1 and done < total:
            return
        self.last = now
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 30)
        elapsed = now - self.started
        eta = f"{elapsed / fraction - elapsed:4.0f}s left" if 0 < fraction < 1 else f"{elapsed:4.1f}s     "
        self.stream.write(f"\r{self.LABELS.get(stage, stage):>22} [{bar:<30}] {fraction:6.1%} {eta}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stage:
            self.stream.write("\n")
            self.stream.flush()
            self.stage = ""


# --- shared option handling ------------------------------------------------------

def add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML", help="read settings from this TOML file first")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting (repeatable), e.g. --set masking.probability=0.2")


def setting_option(parser, flag: str, key: str, **kwargs) -> None:
    """A flag that sets the config setting ``key`` ("masking.probability"): its type, choices and the help's
    allowed range come from the setting's declaration (``config.choices_of``, ``config.bounds_of``); the value
    is checked with the rest of the config (one message naming the key)."""
    field_type = type(getattr(getattr(WorkbenchConfig(), key.split(".")[0]), key.split(".")[1]))
    choices = choices_of(key)
    if choices:
        kwargs.setdefault("choices", choices)
    elif field_type in (int, float):
        kwargs.setdefault("type", field_type)
    allowed = allowed_text(key) if not choices else ""
    if allowed:
        kwargs["help"] = f"{kwargs['help']} (in {allowed})" if kwargs.get("help") else f"in {allowed}"
    parser.add_argument(flag, dest=key, **kwargs)


def add_masking_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("masking and pairing (override the config)")
    setting_option(g, "--probability", "masking.probability")
    setting_option(g, "--mask-fraction", "masking.mask_fraction")
    setting_option(g, "--random-fraction", "masking.random_fraction")
    setting_option(g, "--selection", "masking.selection")
    setting_option(g, "--strategy", "masking.strategy")
    g.add_argument("--whole-word", action="store_const", const="whole_word", dest="masking.strategy",
                   help="same as --strategy whole_word")
    g.add_argument("--span", action="store_const", const="span", dest="masking.strategy",
                   help="same as --strategy span")
    setting_option(g, "--max-predictions", "masking.max_predictions_per_seq")
    setting_option(g, "--min-predictions", "masking.min_predictions_per_seq")
    setting_option(g, "--objective", "nsp.objective")
    g.add_argument("--sop", action="store_const", const="sop", dest="nsp.objective", help="same as --objective sop")
    setting_option(g, "--random-next-probability", "nsp.random_next_probability")
    setting_option(g, "--short-seq-prob", "nsp.short_seq_prob")
    setting_option(g, "--max-seq-length", "data.max_seq_length")


def config_from_args(args: argparse.Namespace, base: WorkbenchConfig | None = None) -> WorkbenchConfig:
    """Config file, then --set, then the dedicated flags (each may be absent)."""
    config = load_config(args.config) if getattr(args, "config", None) else (base or WorkbenchConfig())
    raw = apply_settings(config.to_dict(), dict(parse_assignment(a) for a in getattr(args, "overrides", [])))
    apply_settings(raw, {key: value for key, value in vars(args).items() if "." in key and value is not None})
    return WorkbenchConfig.from_dict(raw, source="options")
