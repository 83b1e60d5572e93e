"""A run's snapshots as the Inspect panel holds them: read, and everything computed over all snapshots, once,
on a worker thread (``load_run``); moving the step slider then only indexes into these arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAP_WORDS = 300            # points of the 2-D map


@dataclass
class LoadedRun:
    label: str
    inspection: object                 # workbench.snapshots.views.RunInspection
    words: list                        # WordCurve of every token type of the pack, most frequent first
    word_index: dict                   # token -> WordCurve
    map: np.ndarray                    # (N, MAP_WORDS, 2) the aligned 2-D embedding map
    map_words: list[str]
    classes: dict                      # token class -> (N,) mean surprisal
    stages: dict                       # "unigram" / "bigram" -> (N,) Jensen-Shannon bits
    embedding_curves: dict
    kinds: list                        # per snapshot, (L, nh) head kinds
    probes: tuple                      # (probes, N) scores and right answers


def load_run(label: str, run_dir: str) -> LoadedRun:
    from workbench.snapshots.views import RunInspection

    inspection = RunInspection(run_dir)
    words = inspection.word_curves()
    return LoadedRun(label, inspection, words, {w.token: w for w in words}, inspection.embedding_map(MAP_WORDS),
                     inspection.map_words(MAP_WORDS), inspection.class_curves(), inspection.stages(),
                     inspection.embedding_curves(), [inspection.head_kinds(i) for i in range(len(inspection))],
                     inspection.probe_matrix())
