"""What inspection snapshots cost and what they show, on a real run. JSON.

    python benchmarks/inspection_overhead.py [--corpus sample|debian] [--preset tiny|mini] [--minutes 5]
                                             [--keep DIR]

Trains the default run (ModernBERT, ``--preset``) for ``--minutes`` of training time with the default
``[inspect]`` settings, and reports:

* overhead: seconds spent taking snapshots / seconds of training steps (snapshots are taken outside the
  step times and the time budget, so this is the wall-clock time they add), and per snapshot;
* storage: bytes per snapshot, of the probe pack, of the run's inspection folder;
* after the fact: seconds to take the snapshot of each checkpoint of the run (``inspect --from-checkpoints``);
* what a user sees (the README's numbers): the first step with a previous-token / next-token / [CLS] /
  [SEP] / punctuation head, surprisal by token class at the first and last snapshot, the stage meter,
  how many words were learned and the rank correlation between the step a word was learned and its
  frequency rank (Chang & Bergen: frequent words are learned first), peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def spearman(a, b) -> float:
    import numpy as np

    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="sample", choices=("sample", "debian"))
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--keep", default="", help="train into this folder and keep it (for screenshots)")
    args = parser.parse_args()

    import numpy as np

    from corpora import prepared
    from workbench.config import WorkbenchConfig
    from workbench.snapshots.from_checkpoints import inspect_checkpoints
    from workbench.snapshots.store import SnapshotStore
    from workbench.snapshots.views import RunInspection
    from workbench.train.trainer import Trainer

    dataset = prepared(args.corpus)
    config = WorkbenchConfig()
    config.data.dataset = str(dataset.path)
    config.model.preset = args.preset
    config.train.max_minutes = args.minutes
    config.train.name = f"inspect-{args.corpus}-{args.preset}"
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="inspect-bench-"))
    config.train.output_dir = str(root)
    run_dir = root / config.train.name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    events = []
    trainer = Trainer(config, run_dir)
    trainer.subscribe(events.append)
    started = time.perf_counter()
    result = trainer.run()
    wall = time.perf_counter() - started
    snapshots = [e for e in events if e.type == "snapshot"]
    finished = next(e for e in events if e.type == "finished")
    snapshot_seconds = sum(e.seconds for e in snapshots)
    store = SnapshotStore(run_dir)

    copy = root / "after-the-fact"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(run_dir, copy)
    shutil.rmtree(copy / "inspect")
    later = inspect_checkpoints(copy)

    inspection = RunInspection(run_dir)
    last = len(inspection) - 1
    classes = inspection.class_curves()
    stages = inspection.stages()
    words = [w for w in inspection.word_curves() if w.learned_step is not None]
    kinds = {kind: inspection.first_step_of_kind(kind)
             for kind in ("previous", "next", "self", "cls", "sep", "punctuation")}
    report = {
        "corpus": args.corpus, "preset": args.preset, "steps": result.step, "training_seconds": finished.elapsed,
        "wall_seconds": wall,
        "snapshots": len(snapshots), "snapshot_seconds": snapshot_seconds,
        "overhead": snapshot_seconds / finished.elapsed,
        "seconds_per_snapshot": snapshot_seconds / max(1, len(snapshots)),
        "bytes_per_snapshot": int(np.mean([e.size_bytes for e in snapshots])),
        "pack_bytes": store.pack_path.stat().st_size, "run_inspection_bytes": store.size_bytes(),
        "checkpoints_inspected_after": len(later.steps),
        "seconds_per_checkpoint_after": later.seconds / max(1, len(later.steps)),
        "surprisal_first_last": [float(inspection.mean_surprisal()[0]), float(inspection.mean_surprisal()[last])],
        "eval_mlm_loss_last": finished.final.get("eval_mlm_loss"),
        "first_step_with_head_kind": kinds,
        "heads_at_end": {f"L{l}H{h}": str(k) for (l, h), k in np.ndenumerate(inspection.head_kinds(last))},
        "class_surprisal_first_last": {k: [round(float(v[0]), 3), round(float(v[last]), 3)] for k, v in classes.items()},
        "class_sizes": inspection.class_sizes(),
        "stage_unigram_by_step": dict(zip(map(int, inspection.steps), map(lambda v: round(float(v), 3), stages["unigram"]))),
        "stage_bigram_by_step": dict(zip(map(int, inspection.steps), map(lambda v: round(float(v), 3), stages["bigram"]))),
        "words_in_pack": len(inspection.word_curves()), "words_learned": len(words),
        "learned_step_vs_frequency_rank_spearman": spearman([w.learned_step for w in words],
                                                            [w.frequency_rank for w in words]) if len(words) > 2 else None,
        "first_learned": [[w.token, w.learned_step] for w in sorted(words, key=lambda w: w.learned_step)[:12]],
        "anisotropy_first_last": [float(inspection.snapshots[0].anisotropy), float(inspection.snapshots[-1].anisotropy)],
        "band_cosine_last": [round(float(v), 3) for v in inspection.snapshots[-1].band_cosine],
        "band_norm_last": [round(float(v), 3) for v in inspection.snapshots[-1].band_norm],
        "probes_right_last": int(inspection.probe_matrix()[1][:, -1].sum()) if inspection.probe_names() else None,
        "probes": len(inspection.probe_names()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "run_dir": str(run_dir),
    }
    print(json.dumps(report, indent=1))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
