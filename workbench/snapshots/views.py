"""What the Inspect panel and ``pretrain-workbench inspect`` show, computed from a run's stored snapshots.

``RunInspection(run_dir)`` loads the pack and every snapshot of a run (a few MB at most); each view is
a method that returns numbers, and ``table(view, ...)`` turns any of them into rows for CSV and JSON. No
model is needed: everything here reads the reductions written while the run trained (or by
``from_checkpoints`` afterwards).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workbench.snapshots import VIEWS
from workbench.snapshots.probe_pack import FREQUENCY_BANDS, ProbePack
from workbench.snapshots.reductions import HEAD_FEATURES, SHARE_FEATURES, Snapshot
from workbench.snapshots.store import SnapshotError, SnapshotStore

PATTERN_SHARE = 0.5          # a head whose largest share is at least this is named after it ...
LOCAL_SHARE = 0.3            # ... else "local" when itself + previous + next hold this much ...
BROAD_ENTROPY = 0.75         # ... else "broad" when its entropy is this share of the uniform's, else "content"
LEARNED_DROP = 1.0           # nats a word's surprisal must fall (first snapshot -> its lowest) to count as learned
TOKEN_CLASSES = ("frequent (top 100)", "common (100-1k)", "rare (beyond 1k)", "punctuation", "numbers",
                 "word starts", "continuations (##)")


@dataclass
class WordCurve:
    token_id: int
    token: str
    occurrences: int             # in the probe pack
    frequency_rank: int          # in the training documents (0: most frequent)
    surprisal: np.ndarray        # (N,) mean over its occurrences, per snapshot
    learned_step: int | None     # first step from which it stays below half-way to its lowest; None: not learned


class RunInspection:
    """A run's probe pack and snapshots, in step order."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        store = SnapshotStore(run_dir)
        steps = store.steps()
        if not store.has_pack() or not steps:
            raise SnapshotError(f"{self.run_dir}: no inspection snapshots; take them from the run's checkpoints "
                                f"with `pretrain-workbench inspect {self.run_dir} --from-checkpoints`")
        self.pack = ProbePack.load(store.pack_path)
        self.snapshots = [Snapshot.from_arrays(store.read(step)) for step in steps]
        self.steps = np.array([s.step for s in self.snapshots])
        self.tokens_seen = np.array([s.tokens_seen for s in self.snapshots])
        self._surprisal = np.stack([s.surprisal.astype(np.float32) for s in self.snapshots])   # (N, S, T)
        self._heads = np.stack([s.heads for s in self.snapshots])                               # (N, L, nh, 8)
        self._mean_surprisal = np.nanmean(self._surprisal.reshape(len(self.snapshots), -1), axis=1)

    def __len__(self) -> int:
        return len(self.snapshots)

    def index_at(self, step: int) -> int:
        """The snapshot nearest to ``step`` (the earlier one on a tie)."""
        return int(np.argmin(np.abs(self.steps - step)))

    def index_at_tokens(self, tokens: int) -> int:
        return int(np.argmin(np.abs(self.tokens_seen - tokens)))

    # --- heads ---------------------------------------------------------------------------------------------

    def heads(self, index: int) -> np.ndarray:
        """(L, nh, 8) ``HEAD_FEATURES`` at snapshot ``index``."""
        return self.snapshots[index].heads

    def head_kinds(self, index: int) -> np.ndarray:
        return classify_heads(self.heads(index), self.mean_length)

    def head_series(self, feature: str) -> np.ndarray:
        """(N, L, nh) one feature of every head over the snapshots (the atlas' sparklines)."""
        return self._heads[..., HEAD_FEATURES.index(feature)]

    def first_step_of_kind(self, kind: str) -> int | None:
        """The first snapshot step at which some head is of ``kind`` (e.g. "previous")."""
        for index in range(len(self)):
            if (self.head_kinds(index) == kind).any():
                return int(self.steps[index])
        return None

    def uniform_shares(self) -> np.ndarray:
        """(6,) what attention spread evenly over a sequence would give each share feature on this pack: the
        yardstick for "this head attends to X n times more than chance"."""
        ids, real = self.pack.input_ids, self.pack.attention_mask.astype(bool)
        lengths = real.sum(1, keepdims=True)
        cls = (ids == np.flatnonzero(self.pack.tokens == "[CLS]")[0]) & real
        sep = (ids == np.flatnonzero(self.pack.tokens == "[SEP]")[0]) & real
        punctuation = self.pack.is_punctuation[ids] & real
        share = [float((m.sum(1, keepdims=True) / lengths).mean()) for m in (cls, sep, punctuation)]
        one = float((1.0 / lengths).mean())
        return np.array(share + [one, one, one])

    @property
    def mean_length(self) -> float:
        return float(self.pack.attention_mask.sum(1).mean())

    # --- what was learned when --------------------------------------------------------------------------------

    def surprisal(self, index: int) -> np.ndarray:
        """(S, T) nats at snapshot ``index``; NaN at specials and padding."""
        return self._surprisal[index]

    def mean_surprisal(self) -> np.ndarray:
        """(N,) the pack's mean surprisal: the MLM loss on every token of the pack."""
        return self._mean_surprisal

    def class_masks(self) -> dict[str, np.ndarray]:
        """Each token class as an (S, T) mask of the pack's scored positions."""
        ids, scored = self.pack.input_ids, self.pack.pattern >= 0
        rank = self.pack.frequency_rank[ids]
        continuation = self.pack.is_continuation[ids]
        masks = [rank < 100, (rank >= 100) & (rank < 1000), rank >= 1000, self.pack.is_punctuation[ids],
                 self.pack.is_number[ids], ~continuation & ~self.pack.is_punctuation[ids], continuation]
        return {name: mask & scored for name, mask in zip(TOKEN_CLASSES, masks)}

    def class_curves(self) -> dict[str, np.ndarray]:
        """Mean surprisal of each token class over the snapshots, (N,) each (NaN for a class absent from the pack)."""
        curves = {}
        for name, mask in self.class_masks().items():
            values = self._surprisal[:, mask]
            curves[name] = values.mean(1) if values.shape[1] else np.full(len(self), np.nan)
        return curves

    def class_sizes(self) -> dict[str, int]:
        return {name: int(mask.sum()) for name, mask in self.class_masks().items()}

    def word_curves(self) -> list[WordCurve]:
        """Every token type of the pack with its surprisal curve and the step it was learned, by frequency."""
        ids = self.pack.input_ids[self.pack.pattern >= 0]
        values = self._surprisal[:, self.pack.pattern >= 0]                               # (N, positions)
        words = []
        for token_id in np.unique(ids):
            where = ids == token_id
            curve = values[:, where].mean(1)
            words.append(WordCurve(int(token_id), str(self.pack.tokens[token_id]), int(where.sum()),
                                   int(self.pack.frequency_rank[token_id]), curve, learned_step(curve, self.steps)))
        return sorted(words, key=lambda w: w.frequency_rank)

    def stages(self) -> dict[str, np.ndarray]:
        """The stage meter: mean Jensen-Shannon divergence (bits) of the predictions from the corpus' unigram
        and bigram statistics, (N,) each. Low = the model predicts like that statistic."""
        return {"unigram": np.array([np.nanmean(s.js_unigram.astype(np.float32)) for s in self.snapshots]),
                "bigram": np.array([np.nanmean(s.js_bigram.astype(np.float32)) for s in self.snapshots])}

    # --- embeddings ---------------------------------------------------------------------------------------------

    def embedding_map(self, words: int = 300) -> np.ndarray:
        """(N, words, 2) the most frequent words' input embeddings in 2-D (PCA), each step aligned to the one
        before by an orthogonal Procrustes rotation, so a point moves only when its embedding does."""
        return aligned_pca([s.embeddings[:words].astype(np.float32) for s in self.snapshots])

    def map_words(self, words: int = 300) -> list[str]:
        return [str(self.pack.tokens[i]) for i in self.pack.top_words[:words]]

    def neighbours(self, word: str, index: int, k: int = 10, in_context: bool = False) -> list[tuple[str, float]]:
        """The ``k`` kept words closest (cosine) to ``word`` at snapshot ``index``: by input embedding, or by
        mean final state over the pack (``in_context``; words of the pack only)."""
        snapshot = self.snapshots[index]
        ids, vectors = ((snapshot.context_ids, snapshot.context) if in_context
                        else (self.pack.top_words, snapshot.embeddings))
        found = np.flatnonzero(self.pack.tokens[ids] == word)
        if not len(found):
            where = "in the probe pack" if in_context else f"among the {len(ids)} most frequent words kept"
            raise SnapshotError(f"{word!r} is not {where}")
        matrix = vectors.astype(np.float32)
        unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
        similarity = unit @ unit[found[0]]
        order = [i for i in np.argsort(-similarity, kind="stable") if i != found[0]][:k]
        return [(str(self.pack.tokens[ids[i]]), float(similarity[i])) for i in order]

    def embedding_curves(self) -> dict[str, np.ndarray]:
        curves = {"anisotropy": np.array([s.anisotropy for s in self.snapshots]),
                  "effective rank": np.array([s.effective_rank for s in self.snapshots])}
        for band, name in enumerate(band_names()):
            curves[f"norm {name}"] = np.array([s.band_norm[band] for s in self.snapshots])
            curves[f"cosine {name}"] = np.array([s.band_cosine[band] for s in self.snapshots])
        return curves

    # --- probes and syntax ------------------------------------------------------------------------------------

    def probe_names(self) -> list[str]:
        """The probes of the last snapshot (a resumed run may have changed its probe file)."""
        return [str(n) for n in self.snapshots[-1].probe_names]

    def probe_matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """(probes, N) scores and right answers of ``probe_names``; NaN and 0 at snapshots that lacked a
        probe; empty when the run had no probes."""
        names = self.probe_names()
        scores = np.full((len(names), len(self)), np.nan)
        right = np.zeros((len(names), len(self)), np.int8)
        for column, snapshot in enumerate(self.snapshots):
            row_of = {str(n): i for i, n in enumerate(snapshot.probe_names)}
            for row, name in enumerate(names):
                if name in row_of:
                    scores[row, column] = snapshot.probe_scores[row_of[name]]
                    right[row, column] = snapshot.probe_correct[row_of[name]]
        return scores, right

    def syntax(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, L, nh) dependency accuracy per head and (N,) the best fixed-offset baseline (NaN: no treebank)."""
        return (np.stack([s.syntax for s in self.snapshots]), np.array([s.syntax_baseline for s in self.snapshots]))


def band_names() -> list[str]:
    edges = [0, *FREQUENCY_BANDS]
    names = [f"rank {lo}-{hi}" for lo, hi in zip(edges[:-1], edges[1:])]
    return names + [f"rank {FREQUENCY_BANDS[-1]}+"]


def classify_heads(heads: np.ndarray, mean_length: float) -> np.ndarray:
    """(L, nh) names: the share feature (``SHARE_FEATURES``) holding at least ``PATTERN_SHARE`` of a head's
    attention; else "local" (itself and its two neighbours hold ``LOCAL_SHARE``), "broad" (entropy near the
    uniform's over the sequence) or "content" (focused on some tokens, but not by position, [CLS], [SEP] or
    punctuation)."""
    shares = heads[..., : len(SHARE_FEATURES)]
    best = shares.argmax(-1)
    entropy = heads[..., HEAD_FEATURES.index("entropy")]
    names = np.where(entropy >= BROAD_ENTROPY * math.log(max(mean_length, 2.0)), "broad", "content").astype(object)
    local = (shares[..., 3] + shares[..., 4] + shares[..., 5]) >= LOCAL_SHARE
    names[local] = "local"
    strong = shares.max(-1) >= PATTERN_SHARE
    names[strong] = np.array(SHARE_FEATURES, dtype=object)[best[strong]]
    return names.astype(str)


def learned_step(curve: np.ndarray, steps: np.ndarray) -> int | None:
    """The step from which ``curve`` (surprisal over snapshots) stays at or below the midpoint between its
    first value and its lowest; None when it never fell by ``LEARNED_DROP`` nats."""
    if len(curve) < 2 or not np.isfinite(curve).all():
        return None
    lowest = float(curve.min())
    if curve[0] - lowest < LEARNED_DROP:
        return None
    midpoint = 0.5 * (float(curve[0]) + lowest)
    above = np.flatnonzero(curve > midpoint)
    if not len(above):
        return int(steps[0])
    return int(steps[above[-1] + 1]) if above[-1] + 1 < len(curve) else None


def aligned_pca(matrices: list[np.ndarray]) -> np.ndarray:
    """Each (n, H) matrix's first two principal coordinates, rotated (orthogonal Procrustes, reflections
    allowed) onto the previous step's; (N, n, 2)."""
    out = []
    previous = None
    for matrix in matrices:
        centred = matrix - matrix.mean(0, keepdims=True)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        coords = centred @ vt[:2].T                                                    # (n, 2)
        if previous is not None:
            u, _, wt = np.linalg.svd(coords.T @ previous)
            coords = coords @ (u @ wt)
        out.append(coords)
        previous = coords
    return np.stack(out)


def table(inspection: RunInspection, view: str, index: int | None = None, word: str = "",
          in_context: bool = False) -> tuple[list[str], list[list]]:
    """(columns, rows) of a view, for CSV and JSON. ``index``: the snapshot (default: the last)."""
    if view not in VIEWS:
        raise SnapshotError(f"unknown view {view!r}; one of {', '.join(VIEWS)}")
    index = len(inspection) - 1 if index is None else index
    steps = inspection.steps.tolist()
    if view == "heads":
        kinds = inspection.head_kinds(index)
        heads = inspection.heads(index)
        rows = [[int(steps[index]), layer, head, kinds[layer, head], *map(float, heads[layer, head])]
                for layer in range(heads.shape[0]) for head in range(heads.shape[1])]
        return ["step", "layer", "head", "kind", *HEAD_FEATURES], rows
    if view == "classes":
        curves = inspection.class_curves()
        return (["step", "tokens seen", "all", *curves],
                [[steps[i], int(inspection.tokens_seen[i]), float(inspection.mean_surprisal()[i]),
                  *(float(c[i]) for c in curves.values())] for i in range(len(inspection))])
    if view == "words":
        return (["token", "occurrences", "frequency rank", "learned at step", *[f"step {s}" for s in steps]],
                [[w.token, w.occurrences, w.frequency_rank, w.learned_step, *map(float, w.surprisal)]
                 for w in inspection.word_curves()])
    if view == "stages":
        stages = inspection.stages()
        return (["step", "JS to unigram (bits)", "JS to bigram (bits)", "surprisal (nats)"],
                [[steps[i], float(stages["unigram"][i]), float(stages["bigram"][i]),
                  float(inspection.mean_surprisal()[i])] for i in range(len(inspection))])
    if view == "embeddings":
        curves = inspection.embedding_curves()
        return ["step", *curves], [[steps[i], *(float(c[i]) for c in curves.values())] for i in range(len(inspection))]
    if view == "neighbours":
        if not word:
            raise SnapshotError("the neighbours view needs a word (--word)")
        return (["step", "word", "neighbour", "cosine"],
                [[steps[index], word, n, s] for n, s in inspection.neighbours(word, index, in_context=in_context)])
    if view == "probes":
        scores, right = inspection.probe_matrix()
        names = inspection.probe_names()
        return (["probe", *[f"step {s}" for s in steps], "right at the end"],
                [[names[p], *map(float, scores[p]), int(right[p, -1])] for p in range(len(scores))])
    if view == "syntax":
        accuracy, baseline = inspection.syntax()
        L, nh = accuracy.shape[1:]
        return (["step", "best offset baseline", *[f"L{l}H{h}" for l in range(L) for h in range(nh)]],
                [[steps[i], float(baseline[i]), *map(float, accuracy[i].ravel())] for i in range(len(inspection))])
    surprisal = inspection.surprisal(index)
    ids = inspection.pack.input_ids
    return (["step", "row", "position", "token", "surprisal (nats)", "guess"],
            [[steps[index], s, t, str(inspection.pack.tokens[ids[s, t]]), float(surprisal[s, t]),
              str(inspection.pack.tokens[inspection.snapshots[index].top1[s, t]])]
             for s in range(ids.shape[0]) for t in range(ids.shape[1]) if inspection.pack.pattern[s, t] >= 0])


def write_table_csv(path, columns: list[str], rows: list[list]) -> None:
    """A view's table as CSV (NaN as an empty cell); ``-`` writes to standard output."""
    import csv
    import sys

    out = sys.stdout if str(path) == "-" else open(path, "w", newline="", encoding="utf-8")
    try:
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(plain_row(row) for row in rows)
    finally:
        if out is not sys.stdout:
            out.close()


def plain_row(row: list) -> list:
    """A table row for CSV and JSON: NaN (no value) as None."""
    return [None if isinstance(v, float) and v != v else v for v in row]
