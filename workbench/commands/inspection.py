"""``pretrain-workbench inspect RUN``: what a run's model learned, where and when, as text, JSON or CSV.

``inspect`` takes a dataset folder (realised masking and pairing, ``commands.data``) or a run: a run
folder, or a run id of the run database. For a run it prints a summary of its snapshots, or one view's
numbers (``--view``); ``--from-checkpoints`` first takes the snapshots its checkpoints allow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from workbench.commands.common import UsageError


def add_run_options(p: argparse.ArgumentParser) -> None:
    from workbench.snapshots import VIEWS

    g = p.add_argument_group("inspecting a run (RUN is a run folder or a run id)")
    g.add_argument("--view", choices=VIEWS, help="print one view's numbers (default: a summary)")
    g.add_argument("--step", type=int, metavar="N", help="the snapshot nearest to step N (default: the last)")
    g.add_argument("--word", default="", help="the word of --view neighbours")
    g.add_argument("--in-context", action="store_true", help="--view neighbours by mean final state over the "
                   "probe pack instead of input embeddings")
    g.add_argument("--csv", metavar="FILE", help="write the view's rows as CSV (- for standard output)")
    g.add_argument("--from-checkpoints", action="store_true",
                   help="first take a snapshot of every checkpoint that lacks one (runs recorded before "
                        "inspection, or with inspect.enabled = false)")
    g.add_argument("--probes", metavar="FILE", default="", help="with --from-checkpoints: score this probe file")
    g.add_argument("--treebank", metavar="FILE", default="", help="with --from-checkpoints: a CoNLL-U treebank")
    g.add_argument("--replace", action="store_true", help="with --from-checkpoints: retake existing snapshots")


def cmd_inspect(args: argparse.Namespace) -> int:
    """A dataset's realised masking (``commands.data``) or a run's snapshots, by what ``DIR|RUN`` names."""
    if is_run_target(args.dataset):
        return cmd_inspect_run(args)
    run_only = [flag for flag, value in (("--view", args.view), ("--step", args.step), ("--word", args.word),
                                         ("--csv", args.csv), ("--from-checkpoints", args.from_checkpoints))
                if value]
    if run_only:
        raise UsageError(f"inspect: {run_only[0]} is for a run (a run folder or run id); "
                         f"{args.dataset or 'data.dataset'} is a dataset")
    from workbench.commands import data

    return data.cmd_inspect(args)


def is_run_target(target: str | None) -> bool:
    """Whether ``inspect``'s argument names a run rather than a dataset."""
    if not target:
        return False
    path = Path(target)
    if (path / "manifest.json").is_file():
        return False
    return (path / "config.toml").is_file() or (path / "checkpoints").is_dir() or (path / "inspect").is_dir() or \
        (target.isascii() and target.isdigit() and not path.exists())


def run_folder(args: argparse.Namespace) -> Path:
    target = args.dataset
    path = Path(target)
    if path.is_dir():
        return path
    from workbench.commands.history import open_repository, parse_run_id

    run = open_repository(args).get(parse_run_id(target))
    if run is None:
        raise UsageError(f"inspect: no run {target} in the run database (see `pretrain-workbench runs`)")
    if not run.run_dir or not Path(run.run_dir).is_dir():
        raise UsageError(f"inspect: run {target}'s folder {run.run_dir or '(none)'} is gone")
    return Path(run.run_dir)


def cmd_inspect_run(args: argparse.Namespace) -> int:
    from workbench.snapshots.views import RunInspection, plain_row, table, write_table_csv

    folder = run_folder(args)
    if (args.probes or args.treebank or args.replace) and not args.from_checkpoints:
        raise UsageError("inspect: --probes, --treebank and --replace go with --from-checkpoints")
    if args.from_checkpoints:
        from workbench.snapshots.from_checkpoints import inspect_checkpoints

        done = inspect_checkpoints(folder, args.probes, args.treebank, args.replace,
                                   progress=lambda i, n: print(f"\rcheckpoint {i}/{n}", end="", file=sys.stderr))
        print(file=sys.stderr)
        print(f"took {len(done.steps)} snapshot(s) in {done.seconds:.1f} s"
              + (f"; {len(done.kept)} were there already" if done.kept else "")
              + f"; {done.bytes / 1e6:.2f} MB of inspection data", file=sys.stderr)
    inspection = RunInspection(folder)
    index = None if args.step is None else inspection.index_at(args.step)
    if args.view is None:
        summary = summarize(inspection)
        if args.json:
            print(json.dumps(summary, indent=1))
        else:
            print_summary(summary)
        return 0
    columns, rows = table(inspection, args.view, index, args.word, args.in_context)
    if args.csv:
        write_table_csv(args.csv, columns, rows)
    elif args.json:
        print(json.dumps([dict(zip(columns, plain_row(row))) for row in rows]))
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join(_cell(v) for v in row))
    return 0


def summarize(inspection) -> dict:
    """What a person asks first: when the head kinds appeared, what was learned first, where it stands."""
    import numpy as np

    last = len(inspection) - 1
    kinds = inspection.head_kinds(last)
    words = [w for w in inspection.word_curves() if w.learned_step is not None]
    classes = inspection.class_curves()
    stages = inspection.stages()
    first_of = {kind: inspection.first_step_of_kind(kind) for kind in sorted(set(np.unique(kinds)) |
                                                                            {"previous", "next", "cls", "sep"})}
    return {
        "run": str(inspection.run_dir), "snapshots": len(inspection), "steps": inspection.steps.tolist(),
        "pack": {"sequences": int(inspection.pack.input_ids.shape[0]), "scored tokens": int((inspection.pack.pattern >= 0).sum()),
                 "held-out": inspection.pack.from_heldout},
        "surprisal": {"first": float(inspection.mean_surprisal()[0]), "last": float(inspection.mean_surprisal()[last])},
        "heads at the last step": {f"L{l}H{h}": str(kinds[l, h]) for l in range(kinds.shape[0]) for h in range(kinds.shape[1])},
        "first step with a head of each kind": first_of,
        "class surprisal first -> last": {k: [_round(v[0]), _round(v[last])] for k, v in classes.items()},
        "stage (JS bits to unigram, bigram) first -> last": {
            "unigram": [_round(stages["unigram"][0]), _round(stages["unigram"][last])],
            "bigram": [_round(stages["bigram"][0]), _round(stages["bigram"][last])]},
        "words learned": len(words),
        "first learned": [[w.token, w.learned_step] for w in sorted(words, key=lambda w: w.learned_step)[:10]],
    }


def print_summary(summary: dict) -> None:
    for key, value in summary.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key}: {value}")


def _round(value: float) -> float | None:
    return None if value != value else round(float(value), 4)


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)
