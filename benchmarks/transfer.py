"""Does pre-training help? Pre-train on the sample, then fine-tune both arms on the built-in task.

1. Pre-train the default recipe (tiny ModernBERT) on the built-in sample for ``--minutes`` (default 5).
2. Fine-tune on the built-in task (stdlib docstrings labelled by package; those packages are not in the
   sample), with identical data order, head and budget: the pre-trained encoder and the same model from
   fresh weights (and the frozen pre-trained encoder), over ``--seeds``.
3. Print held-out accuracy and macro-F1 per arm and the gain in points with its spread over seeds.

    python benchmarks/transfer.py --minutes 5 --steps 300 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0, help="pre-training budget")
    parser.add_argument("--steps", type=int, default=300, help="fine-tuning steps per arm")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train-examples", type=int, default=0,
                        help="fine-tune on this many labelled examples only (0: all); the low-data regime")
    parser.add_argument("--task", default="builtin", help="builtin (word order), builtin:package, or a labelled file")
    parser.add_argument("--checkpoint", help="skip pre-training: fine-tune from this run or checkpoint")
    parser.add_argument("--keep", metavar="DIR", help="keep the pre-training run in this (new) folder")
    args = parser.parse_args()

    from corpora import prepared

    from workbench.config import WorkbenchConfig
    from workbench.data.labelled import read_labelled, split
    from workbench.train.finetune import FinetuneConfig, compare_arms
    from workbench.train.trainer import Trainer

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        source = args.checkpoint
        keep = Path(args.keep) if args.keep else Path(folder) / "pretrain"
        pretraining = {}
        if source is None:
            dataset = prepared("sample")
            config = WorkbenchConfig()
            config.data.dataset = str(dataset.path)
            config.train.max_minutes = args.minutes
            config.train.checkpoint_every = 0
            events = []
            trainer = Trainer(config, keep)
            trainer.subscribe(lambda e: events.append(e) if e.type == "eval" else None)
            result = trainer.run()
            source = result.last_checkpoint
            last = events[-1] if events else None
            pretraining = {"minutes": args.minutes, "steps": result.step,
                           "heldout_mlm_loss": getattr(last, "mlm_loss", None),
                           "floor_mlm_loss": getattr(last, "floor_mlm_loss", None),
                           "heldout_pair_accuracy": getattr(last, "nsp_accuracy", None)}
        task = read_labelled(args.task)
        train, heldout = split(task, 0.2)
        if args.train_examples:
            import numpy as np

            chosen = np.random.default_rng(0).permutation(len(train))[: args.train_examples]
            train = train.subset(sorted(chosen.tolist()))
        seeds = tuple(int(s) for s in args.seeds.split(","))
        comparison = compare_arms(source, train, heldout, FinetuneConfig(
            steps=args.steps, learning_rate=args.learning_rate, seeds=seeds, frozen_arm=True))
    print(json.dumps({"pretraining": pretraining, "task": {"name": task.source, "labels": task.label_names, "train": len(train),
                                                           "heldout": len(heldout)},
                      "finetune_steps": args.steps, "seeds": list(seeds), "summary": comparison.summary(),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "wall_seconds": round(time.perf_counter() - started)}, indent=1))


if __name__ == "__main__":
    main()
