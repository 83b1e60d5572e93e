"""The trainer's seam for inspection: ``SnapshotRecorder.maybe_record(model, step, ...)`` after every step.

Built on rank 0 only (under DDP the other ranks never construct one). The probe pack is built when the run
starts, or read back from the run folder when it resumes (a pack of other settings or another dataset is
rebuilt, and the snapshots that no longer match are set aside). A snapshot already on disk is not taken
again, so a resumed run continues the series; snapshots newer than the checkpoint resumed are removed
first, since those steps are trained again.
"""

from __future__ import annotations

import time
from pathlib import Path

from workbench.config import WorkbenchConfig
from workbench.durable_io import remove_stale_partials
from workbench.snapshots.probe_pack import ProbePack, build_probe_pack, pack_fingerprint
from workbench.snapshots.reductions import SNAPSHOT_FORMAT, take_snapshot
from workbench.snapshots.schedule import is_snapshot_step
from workbench.snapshots.store import SnapshotError, SnapshotStore


class SnapshotRecorder:
    def __init__(self, run_dir: str | Path, dataset, config: WorkbenchConfig, resumed_step: int = 0):
        self.config = config
        self.every, self.first = config.inspect.every, config.inspect.first
        self.store = SnapshotStore(run_dir)
        if self.store.folder.is_dir():
            remove_stale_partials(self.store.folder)   # half-written files of a process that died
        self.tokenizer = dataset.tokenizer
        self.pack = self._pack(dataset, config)
        self.store.remove_after(resumed_step)
        self.taken = set(self.store.steps())
        self.seconds = 0.0                 # time spent taking snapshots (the benchmark reports the overhead)
        self.bytes = self.store.size_bytes()
        self.last_bytes = 0                # size of the last snapshot written
        self.probe_set = load_probe_set(config, dataset)
        self.treebank = load_treebank(config, self.tokenizer)

    def _pack(self, dataset, config: WorkbenchConfig) -> ProbePack:
        wanted = pack_fingerprint(dataset, config)
        if self.store.has_pack():
            try:
                pack = ProbePack.load(self.store.pack_path)
                if pack.fingerprint == wanted:
                    return pack
            except (SnapshotError, KeyError):
                pass
            for step in self.store.steps():          # measured on another pack: not comparable
                self.store.path(step).unlink(missing_ok=True)
        pack = build_probe_pack(dataset, config)
        self.store.folder.mkdir(parents=True, exist_ok=True)
        pack.save(self.store.pack_path)
        return pack

    def maybe_record(self, model, step: int, tokens_seen: int = 0, elapsed: float = 0.0, due: bool = False) -> bool:
        """Take the snapshot of ``step`` when it is due (by the schedule, or ``due``) and not yet stored."""
        if not (due or is_snapshot_step(step, self.every, self.first)) or step in self.taken:
            return False
        self.record(model, step, tokens_seen, elapsed)
        return True

    def record(self, model, step: int, tokens_seen: int = 0, elapsed: float = 0.0) -> None:
        started = time.perf_counter()
        snapshot = take_snapshot(model, self.pack, step, tokens_seen, elapsed, self.probe_set, self.treebank,
                                 self.tokenizer)
        self.last_bytes = self.store.write(step, snapshot.to_arrays(), SNAPSHOT_FORMAT)
        self.bytes += self.last_bytes
        self.taken.add(step)
        self.seconds += time.perf_counter() - started


def recorder_for_run(run_dir, dataset, config: WorkbenchConfig, model, resumed_step: int
                     ) -> tuple[SnapshotRecorder | None, str]:
    """The recorder of a run that starts (or resumes at ``resumed_step``), or None and why inspection is off:
    an architecture without the inspection interface (``final_states``, ``word_embeddings``; see
    ``workbench.architectures``) or a dataset too small for a probe pack. Neither stops the run."""
    if not (hasattr(model, "final_states") and hasattr(model, "word_embeddings")):
        return None, (f"inspection snapshots are off: the {config.model.architecture} model has no final_states / "
                      "word_embeddings (see workbench.architectures)")
    try:
        return SnapshotRecorder(run_dir, dataset, config, resumed_step=resumed_step), ""
    except (IndexError, ValueError) as exc:
        return None, f"inspection snapshots are off for this run: no probe pack ({exc})"


def check_inputs(config: WorkbenchConfig, dataset) -> None:
    """Read the probe file and treebank of ``config`` now: a bad one is a clear error before a run starts."""
    load_probe_set(config, dataset)
    load_treebank(config, dataset.tokenizer)


def load_probe_set(config: WorkbenchConfig, dataset):
    """The probes of ``inspect.probes``; the built-in ones when it is empty and the dataset is the sample."""
    from workbench.snapshots.probes import builtin_probe_path, read_probes

    path = config.inspect.probes
    if not path:
        builtin = builtin_probe_path()
        if not _is_sample(dataset):
            return None
        path = str(builtin)
    return read_probes(path, dataset.tokenizer)


def _is_sample(dataset) -> bool:
    """Whether the dataset was prepared from the built-in sample corpus (and nothing else)."""
    corpus = (getattr(dataset, "manifest", {}) or {}).get("corpus") or []
    return bool(corpus) and all(Path(c.get("path", "")).name.startswith("python-docs-") for c in corpus)


def load_treebank(config: WorkbenchConfig, tokenizer):
    if not config.inspect.treebank:
        return None
    from workbench.snapshots.conllu import read_treebank

    return read_treebank(config.inspect.treebank, tokenizer)
