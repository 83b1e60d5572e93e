"""``runs``, ``show`` and ``compare``: the run history from the command line."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from workbench.commands.common import UsageError, refuse_to_replace
from workbench.formatting import duration, number
from workbench.metrics import RUN_LIST, format_value, title as metric_title
from workbench.store.summary import all_series, run_summary
from workbench.store.comparison import COMPARE_METRICS, aligned_series, config_differences



def add_db_option(p: argparse.ArgumentParser, in_action: bool = False) -> None:
    # An action's own --db must not reset one given before the action (`runs --db X tag ...`).
    p.add_argument("--db", metavar="URL", default=argparse.SUPPRESS if in_action else None,
                   help="run database: a SQLAlchemy URL or a SQLite file "
                   "(default: $WORKBENCH_DB, else runs.db in the user data directory)")


def open_repository(args: argparse.Namespace):
    """The repository of ``--db``, with runs whose process died marked interrupted (unless it is read-only)."""
    from workbench.store.database import is_read_only
    from workbench.store.repository import RunRepository

    repository = RunRepository(getattr(args, "db", None))
    if not is_read_only(repository.engine):
        repository.mark_interrupted_runs()
    return repository


def parse_run_id(text: str) -> int:
    if not (str(text).isascii() and str(text).isdigit()):
        raise UsageError(f"expected a run id (a number, see `pretrain-workbench runs`), got {text!r}")
    return int(text)


# --- runs -------------------------------------------------------------------------------

def cmd_runs(args: argparse.Namespace) -> int:
    repository = open_repository(args)
    action = getattr(args, "action", None)
    if action == "rename":
        repository.rename(parse_run_id(args.run), args.name)
        print(f"run {args.run} renamed to {args.name!r}")
        return 0
    if action == "tag":
        tags = repository.tag(parse_run_id(args.run), add=[] if args.remove else args.tags,
                              remove=args.tags if args.remove else [])
        print(f"run {args.run} tags: {', '.join(tags) or '(none)'}")
        return 0
    if action == "note":
        repository.set_notes(parse_run_id(args.run), args.text)
        print(f"run {args.run} notes saved")
        return 0
    if action == "delete":
        return _delete(repository, [parse_run_id(r) for r in args.runs], args.yes)

    runs = repository.list_runs(status=args.status, tag=args.tag)
    summaries = [run_summary(repository, run) for run in runs]
    if args.json:
        print(json.dumps(summaries, indent=1))
        return 0
    if not summaries:
        print(f"no runs in {repository.url}" + (" matching the filter" if args.status or args.tag else ""))
        return 0
    shown = ("mlm_loss", "mlm_accuracy", "nsp_accuracy", "tokens_per_second")       # the terminal is narrow
    widths = [max(8, len(metric_title(name, short=True))) for name in shown]
    header = f"{'id':>4}  {'name':<24} {'status':<11} {'steps':>11} {'time':>7} " + \
        " ".join(f"{metric_title(name, short=True).lower():>{w}}" for name, w in zip(shown, widths)) + \
        f"  {'device':<18} created"
    print(header)
    for s in summaries:
        steps = f"{s['steps']}/{s['max_steps']}"
        values = " ".join(f"{format_value(name, s[name]):>{w}}" for name, w in zip(shown, widths))
        print(f"{s['id']:>4}  {s['name'][:24]:<24} {s['status']:<11} {steps:>11} {duration(s['duration_seconds']):>7} "
              f"{values}  {s['device'][:18]:<18} {s['created'].replace('T', ' ')}")
    return 0


def _delete(repository, run_ids: list[int], yes: bool) -> int:
    runs = [repository.get(run_id) for run_id in run_ids]  # every id must exist before anything goes
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("runs delete: refusing to delete without confirmation; pass --yes")
        listing = ", ".join(f"{r.id} ({r.name})" for r in runs)
        answer = input(f"delete run(s) {listing} and their checkpoints on disk? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted")
            return 0
    from workbench.services.run_removal import delete_run

    for run in runs:
        if run.status in ("running", "paused"):
            raise UsageError(f"runs delete: run {run.id} is {run.status}; stop it first")
    for run in runs:
        print(delete_run(repository, run.id))
    return 0


# --- show -----------------------------------------------------------------------------------

def write_metrics_csv(path: str, series: dict) -> int:
    """Wide CSV: one row per step, one column per metric (eval_ columns for held-out points)."""
    steps = sorted({int(s) for data in series.values() for s in data.steps})
    names = sorted(series)
    lookup = {name: dict(zip(data.steps.tolist(), data.values.tolist())) for name, data in series.items()}
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["step"] + names)
            for step in steps:
                writer.writerow([step] + [lookup[name].get(step, "") for name in names])
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None
    return len(steps)


def cmd_show(args: argparse.Namespace) -> int:
    from workbench.config import WorkbenchConfig, dumps_toml

    refuse_to_replace(args.csv, args.force, "--csv")
    repository = open_repository(args)
    run = repository.get(parse_run_id(args.run))
    info = {
        **run_summary(repository, run), "reason": run.reason, "notes": run.notes,
        "started": run.started_at.isoformat(timespec="seconds") if run.started_at else None,
        "finished": run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
        "dataset_fingerprint": run.dataset_fingerprint, "package_version": run.package_version,
        "config": run.config, "final_metrics": run.final_metrics, "best_metrics": run.best_metrics,
        "checkpoints": [{"step": c.step, "path": c.path, "size_bytes": c.size_bytes} for c in run.checkpoints],
        "kind": run.kind, "parent_run_id": run.parent_run_id,
        "finetuning": [{"run_id": child.id, **(child.final_metrics or {})}
                       for child in repository.children(run.id, kind="finetune")],
    }
    series = all_series(repository, run.id) if (args.metrics or args.csv) else {}
    if args.csv:
        rows = write_metrics_csv(args.csv, series)
        print(f"wrote {rows} steps of {len(series)} metrics to {args.csv}", file=sys.stderr)
    if args.json:
        if args.metrics:
            info["metrics"] = {name: data.to_dict() for name, data in series.items()}
        print(json.dumps(info, indent=1))
        return 0
    print(f"run {run.id}: {run.name}   [{run.status}]  {', '.join(run.tag_names)}")
    if run.reason:
        print(f"  {run.reason}")
    print(f"  steps {run.steps}/{run.max_steps} in {duration(run.elapsed_seconds)} on {run.device or '-'}")
    print(f"  created {info['created']}, started {info['started'] or '-'}, finished {info['finished'] or '-'}")
    print(f"  directory {run.run_dir}")
    if run.notes:
        print(f"  notes: {run.notes}")
    for title, values in (("final", run.final_metrics), ("best", run.best_metrics)):
        shown = {k: v for k, v in (values or {}).items() if isinstance(v, (int, float)) and not k.startswith(
            ("tokens_seen", "elapsed", "progress", "eta", "epoch", "step"))}
        if shown:
            print(f"  {title}: " + "  ".join(f"{k} {v:.4g}" for k, v in sorted(shown.items())))
    print("  checkpoints: " + (", ".join(f"step {c.step} ({c.size_bytes / 1e6:.1f} MB)" for c in run.checkpoints)
                               or "none"))
    if run.parent_run_id is not None:
        print(f"  fine-tuned from run {run.parent_run_id}")
    for child in repository.children(run.id, kind="finetune"):
        final = child.final_metrics or {}
        if "gain_accuracy_points" in final:
            print(f"  fine-tuning (run {child.id}, {child.config.get('data', {}).get('labelled', '?')}): "
                  f"pre-trained {final.get('pretrained_accuracy', 0):.3f} vs scratch {final.get('scratch_accuracy', 0):.3f}"
                  f" accuracy, gain {final['gain_accuracy_points']:+.1f} ± {final.get('gain_accuracy_std_points', 0):.1f} points")
    if args.metrics:
        print("  metrics (points, first -> last, min, max):")
        for name, data in sorted(series.items()):
            values = data.values.tolist()
            print(f"    {name:<22} {len(values):>6}  {values[0]:.4g} -> {values[-1]:.4g}  "
                  f"min {min(values):.4g}  max {max(values):.4g}")
    print("config:")
    try:
        text = dumps_toml(WorkbenchConfig.from_record(run.config))
    except Exception:  # a config from another version: show it as it was stored
        text = json.dumps(run.config, indent=1)
    print("  " + text.replace("\n", "\n  ").rstrip())
    return 0


# --- compare -----------------------------------------------------------------------------------

def cmd_compare(args: argparse.Namespace) -> int:
    refuse_to_replace(args.csv, args.force, "--csv")
    refuse_to_replace(args.tidy_csv, args.force, "--tidy-csv")
    if args.csv and args.tidy_csv and args.csv == args.tidy_csv:
        raise UsageError("compare: --csv and --tidy-csv name the same file")
    repository = open_repository(args)
    run_ids = [parse_run_id(r) for r in args.runs]
    if len(run_ids) < 2:
        raise UsageError("compare: name at least two runs")
    runs = [repository.get(run_id) for run_id in run_ids]
    differences = config_differences([run.config for run in runs])
    steps, aligned = aligned_series(repository, run_ids)
    common = sorted(set.intersection(*[{s for s, v in zip(steps, aligned[(r, 'loss')]) if v is not None}
                                       for r in run_ids])) if steps else []
    if args.csv:
        try:
            with open(args.csv, "w", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                writer.writerow(["step"] + [f"run{r}_{m}" for r in run_ids for m in COMPARE_METRICS])
                for i, step in enumerate(steps):
                    writer.writerow([step] + ["" if aligned[(r, m)][i] is None else aligned[(r, m)][i]
                                              for r in run_ids for m in COMPARE_METRICS])
        except OSError as exc:
            raise UsageError(f"{args.csv}: cannot write ({exc.strerror})") from None
        print(f"wrote {len(steps)} aligned steps to {args.csv}", file=sys.stderr)
    if args.tidy_csv:
        _write_tidy_csv(repository, runs, list(differences), args.tidy_csv)
    if args.group:
        return _print_groups(repository, runs, args.json)
    # A readable handful of matched steps: evenly spread over the steps all runs share, and the last.
    picks = sorted({common[int(i)] for i in _spread(len(common), 8)}) if common else []
    index = {step: i for i, step in enumerate(steps)}
    matched = [{"step": step, **{f"run{r}_{m}": aligned[(r, m)][index[step]] for r in run_ids for m in COMPARE_METRICS}}
               for step in picks]
    if args.json:
        print(json.dumps({"runs": [run_summary(repository, run) for run in runs],
                          "config_differences": differences, "matched_steps": matched}, indent=1))
        return 0
    print("runs: " + "   ".join(f"{run.id} {run.name} [{run.status}]" for run in runs))
    print("config differences:" if differences else "config differences: none")
    width = max([len(k) for k in differences] + [10])
    for key, values in differences.items():
        print(f"  {key:<{width}}  " + "  ".join(f"{json.dumps(v):>14}" for v in values))
    if not matched:
        print("no steps in common to compare")
        return 0
    for metric in COMPARE_METRICS:
        print(f"{metric} at matched steps:")
        print(f"  {'step':>8}  " + "  ".join(f"{'run ' + str(r):>12}" for r in run_ids))
        for row in matched:
            print(f"  {row['step']:>8}  " + "  ".join(f"{number(row[f'run{r}_{metric}'], '.4f'):>12}" for r in run_ids))
    return 0


def _spread(n: int, k: int) -> list[float]:
    if n <= k:
        return list(range(n))
    return [round(i * (n - 1) / (k - 1)) for i in range(k)]


def _write_tidy_csv(repository, runs, setting_keys: list[str], path: str) -> None:
    from workbench.store.comparison import write_tidy_csv

    try:
        count = write_tidy_csv(repository, runs, setting_keys, path)
    except OSError as exc:
        raise UsageError(f"{path}: cannot write ({exc.strerror})") from None
    print(f"wrote {count} points of {len(runs)} runs to {path}", file=sys.stderr)


def _print_groups(repository, runs, as_json: bool) -> int:
    """Runs that differ only in seed (or name) as one row each: final values, mean ± std over the group."""
    import numpy as np

    from workbench.store.comparison import config_differences, group_runs

    groups = group_runs([run.config for run in runs])
    summaries = [run_summary(repository, run) for run in runs]
    metrics = RUN_LIST
    differences = config_differences([runs[g[0]].config for g in groups]) if len(groups) > 1 else {}
    out = []
    for number_, members in enumerate(groups, start=1):
        row = {"group": number_, "runs": [runs[i].id for i in members], "count": len(members),
               "settings": {key: values[number_ - 1] for key, values in differences.items()}}
        for metric in metrics:
            values = [summaries[i][metric] for i in members if summaries[i][metric] is not None]
            row[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values)),
                           "min": float(np.min(values)), "max": float(np.max(values))} if values else None
        out.append(row)
    if as_json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"{len(runs)} runs in {len(groups)} group(s) (runs that differ only in seed or name form one group)")
    for row in out:
        label = ", ".join(f"{k}={json.dumps(v)}" for k, v in row["settings"].items()) or "same settings"
        print(f"group {row['group']}: {label}  ({row['count']} runs: {', '.join(map(str, row['runs']))})")
        for metric in metrics:
            stats = row[metric]
            if stats is not None:
                show = lambda value: format_value(metric, value)     # noqa: E731 - the table's format
                print(f"  {metric_title(metric):<22} {show(stats['mean'])} ± {show(stats['std'])}  "
                      f"(min {show(stats['min'])}, max {show(stats['max'])})")
    return 0

