"""``finetune``: does pre-training help? Fine-tune a pre-trained run and the same model from scratch."""

from __future__ import annotations

import argparse
import json
import sys

from workbench.commands.common import UsageError
from workbench.commands.history import add_db_option, open_repository


def add_parser(sub) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a pre-trained model and the same model from scratch; compare them",
        description="Fine-tune, with identical data order, seeds and budget, the encoder of a pre-training run and "
                    "the same architecture from fresh weights (optionally also the frozen pre-trained encoder), "
                    "on a labelled file; report held-out accuracy and macro-F1 of each arm and the gain.")
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="pre-training run directory, checkpoint or export")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="labelled .csv/.tsv/.jsonl; or `builtin` (= `builtin:word-order`: sentences as written or with two "
                        "words swapped) or `builtin:package` (stdlib docstrings labelled by package)")
    p.add_argument("--dev", metavar="FILE", help="held-out file (default: a share of --data, see --heldout-fraction)")
    p.add_argument("--text-column", help="column with the text (default: detected)")
    p.add_argument("--pair-column", help="column with a second text, for pair tasks (default: detected)")
    p.add_argument("--label-column", help="column with the label (default: detected)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps per arm (default 300)")
    p.add_argument("--minutes", type=float, default=0.0, help="also stop an arm after this many minutes")
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=0, help="tokens per example (default: the run's length)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--heldout-fraction", type=float, default=0.2)
    p.add_argument("--frozen", action="store_true", help="also train a third arm: the pre-trained encoder frozen")
    p.add_argument("--export", metavar="DIR", help="write the pre-trained arm of the first seed as a transformers "
                                                    "sequence-classification model")
    p.add_argument("--json", action="store_true", help="print the whole comparison as JSON")
    p.add_argument("--no-db", action="store_true", help="do not record the comparison in the run database")
    add_db_option(p)
    p.set_defaults(handler=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    from workbench.services.finetune_run import FinetuneRequest, run_finetune
    from workbench.train.finetune import FinetuneConfig

    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        raise UsageError(f"finetune: --seeds must be comma-separated integers, got {args.seeds!r}") from None
    config = FinetuneConfig(steps=args.steps, minutes=args.minutes, learning_rate=args.learning_rate,
                            batch_size=args.batch_size, max_length=args.max_length, seeds=seeds,
                            frozen_arm=args.frozen, heldout_fraction=args.heldout_fraction)
    request = FinetuneRequest(args.source, args.data, config, dev=args.dev, text_column=args.text_column,
                              pair_column=args.pair_column, label_column=args.label_column, export=args.export)

    def on_data(train, heldout) -> None:
        if not args.json and train.columns:
            print(f"columns of {train.source}: {train.columns}")
        if not args.json:
            print(f"{len(train)} training and {len(heldout)} held-out examples, {len(train.label_names)} labels "
                  f"({', '.join(train.label_names[:8])}{'...' if len(train.label_names) > 8 else ''})")

    def on_point(result, point) -> None:
        if not args.json and (point["step"] == config.steps or point["step"] % (config.eval_every * 4) == 0):
            print(f"  {result.arm:<10} seed {result.seed}  step {point['step']:>5}  held-out accuracy "
                  f"{point['accuracy']:.3f}  macro-F1 {point['macro_f1']:.3f}", flush=True)

    repository = None if args.no_db else open_repository(args)  # opened first: a bad --db fails before training
    outcome = run_finetune(request, repository, on_point, on_data=on_data)
    comparison, summary, recorded = outcome.comparison, outcome.summary, outcome.recorded_run
    if args.json:
        print(json.dumps({**comparison.to_dict(), "run_id": recorded}))
        return 0
    print(f"{'arm':<12}{'accuracy':>18}{'macro-F1':>18}")
    for arm in ("pretrained", "scratch", "frozen"):
        if arm in summary:
            s = summary[arm]
            print(f"{arm:<12}{s['accuracy']:>11.3f} ± {s['accuracy_std']:.3f}{s['macro_f1']:>11.3f} ± "
                  f"{s['macro_f1_std']:.3f}")
    gain = summary.get("gain_points")
    if gain:
        print(f"pre-training gain: {gain['accuracy']:+.1f} ± {gain['accuracy_std']:.1f} accuracy points, "
              f"{gain['macro_f1']:+.1f} ± {gain['macro_f1_std']:.1f} macro-F1 points over {len(seeds)} seed(s)")
    if args.export:
        print(f"exported the fine-tuned pre-trained arm (seed {seeds[0]}) to {args.export}", file=sys.stdout)
    if recorded is not None:
        print(f"recorded as run {recorded} in {repository.url}")
    return 0
