"""One inspection snapshot: what a model computes on the probe pack, reduced to a few hundred KB.

``take_snapshot(model, pack)`` runs the model twice on the pack, without gradients and in eval mode:

1. every mask pattern once (``P x S`` sequences): each token's surprisal ``-ln p(token)`` where it was
   masked - the same cross-entropy the trainer's MLM loss averages - the top guess, and how far the
   predicted distribution is from the corpus' unigram and bigram statistics (Jensen-Shannon, in bits);
2. the unmasked pack with attention computed explicitly: per head a fingerprint (``HEAD_FEATURES``), the
   full attention maps of the first examples (cut to ``ATTENTION_TOKENS``), and each token type's mean
   final state (for neighbours in context).

Plus the input embeddings of the pack's ``top_words`` and statistics of the whole embedding table, and
when given, the user's probes and the dependency accuracy of every head on a treebank. What is stored is
listed in ``Snapshot``; nothing is kept per position beyond one float16 or int32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from workbench.model.common import capturing_attention
from workbench.model.vocab_loss import top_tokens
from workbench.snapshots.probe_pack import FREQUENCY_BANDS, ProbePack, bigram_rows

SNAPSHOT_FORMAT = 1
HEAD_FEATURES = ("cls", "sep", "punctuation", "self", "previous", "next", "entropy", "distance")
SHARE_FEATURES = HEAD_FEATURES[:6]     # attention shares (sum to at most 1); the last two are not shares
ATTENTION_EXAMPLES = 2                 # full maps kept for the first examples of the pack...
ATTENTION_TOKENS = 48                  # ... cut to their first tokens
CONTEXT_WORDS = 250                    # mean final states kept for the pack's most frequent token types
EMBEDDING_SAMPLE = 2000                # tokens sampled (evenly over frequency ranks) for anisotropy and rank
CHUNK = 256                            # predicted positions per block of the stage computation
STAGE_POSITIONS = 512                  # positions (the first of the pack's order) the stage meter measures


@dataclass
class Snapshot:
    """What one snapshot holds. S, T: the pack's shape; L layers, nh heads; K kept words, H width."""

    step: int
    tokens_seen: int
    elapsed: float
    surprisal: np.ndarray        # (S, T) float16, nats; NaN at specials and padding
    top1: np.ndarray             # (S, T) int32, the model's first guess where masked; -1 elsewhere
    js_unigram: np.ndarray       # (S, T) float16, bits: Jensen-Shannon(prediction, corpus unigram)
    js_bigram: np.ndarray        # (S, T) float16, bits: Jensen-Shannon(prediction, bigram given the previous token)
    heads: np.ndarray            # (L, nh, 8) float32, HEAD_FEATURES averaged over the pack's real tokens
    attention: np.ndarray        # (E, L, nh, A, A) float16, maps of the first examples
    embeddings: np.ndarray       # (K, H) float16, input embeddings of pack.top_words
    band_norm: np.ndarray        # (bands,) float32 mean embedding norm per frequency band
    band_cosine: np.ndarray      # (bands,) float32 mean pairwise cosine within the band (a narrow cone: high)
    anisotropy: float            # mean pairwise cosine over tokens of every frequency
    effective_rank: float        # exp(entropy of the normalised singular values), Roy & Vetterli 2007
    context_ids: np.ndarray      # (W,) int64 token types of the pack ...
    context: np.ndarray          # (W, H) float16 ... and their mean final state over the pack
    probe_scores: np.ndarray     # (n,) float32 per probe (see ``probes``); empty without probes
    probe_correct: np.ndarray    # (n,) int8
    probe_names: np.ndarray      # (n,) str
    syntax: np.ndarray           # (L, nh) float32 share of words whose strongest attention is their dependency head
    syntax_baseline: float       # the best fixed-offset baseline on the same words (NaN without a treebank)

    def to_arrays(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_arrays(cls, arrays: dict) -> "Snapshot":
        values = {name: arrays[name] for name in cls.__dataclass_fields__}
        for name in ("step", "tokens_seen"):
            values[name] = int(values[name])
        for name in ("elapsed", "anisotropy", "effective_rank", "syntax_baseline"):
            values[name] = float(values[name])
        return cls(**values)


def special_id(pack: ProbePack, token: str) -> int:
    found = np.flatnonzero(pack.tokens == token)
    if not len(found):
        raise ValueError(f"the vocabulary has no {token}")
    return int(found[0])


@torch.no_grad()
def take_snapshot(model: torch.nn.Module, pack: ProbePack, step: int, tokens_seen: int = 0, elapsed: float = 0.0,
                  probe_set=None, treebank=None, tokenizer=None, batch_rows: int = 64) -> Snapshot:
    """The snapshot of ``model`` (left in the mode it was in) on ``pack``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        surprisal, top1, js_u, js_b = _masked_pass(model, pack, device, batch_rows)
        heads, attention, context_ids, context = _unmasked_pass(model, pack, device, batch_rows)
        emb = model.word_embeddings.detach().float().cpu()
        norms, cosines, anisotropy, rank = embedding_statistics(emb, pack)
        scores, correct, names = np.zeros(0, np.float32), np.zeros(0, np.int8), np.zeros(0, str)
        if probe_set is not None and len(probe_set):
            from workbench.snapshots.probes import score_probes

            scores, correct = score_probes(model, tokenizer, probe_set, device)
            names = np.array([p.name for p in probe_set], dtype=str)
        L, nh = heads.shape[:2]
        syntax, baseline = np.full((L, nh), np.nan, np.float32), math.nan
        if treebank is not None and len(treebank):
            from workbench.snapshots.conllu import dependency_accuracy

            syntax, baseline = dependency_accuracy(model, tokenizer, treebank, device)
    finally:
        model.train(was_training)
    return Snapshot(step, tokens_seen, elapsed, surprisal, top1, js_u, js_b, heads, attention,
                    emb[pack.top_words].numpy().astype(np.float16), norms, cosines, anisotropy, rank,
                    context_ids, context, scores, correct, names, syntax, baseline)


def _masked_pass(model, pack: ProbePack, device, batch_rows: int):
    S, T = pack.input_ids.shape
    inputs, labels = pack.masked_inputs(special_id(pack, "[MASK]"))                 # (P*S, T) each
    types = np.tile(pack.token_type_ids, (pack.patterns, 1))
    attention = np.tile(pack.attention_mask, (pack.patterns, 1))
    surprisal = np.full((S, T), np.nan, np.float32)
    top1 = np.full((S, T), -1, np.int32)
    js_u = np.full((S, T), np.nan, np.float32)
    js_b = np.full((S, T), np.nan, np.float32)
    unigram = torch.from_numpy(pack.unigram).float().to(device)
    stage_done = 0
    for first in range(0, len(inputs), batch_rows):
        rows = slice(first, first + batch_rows)
        tensors = [torch.from_numpy(np.ascontiguousarray(a[rows])).to(device) for a in (inputs, types, attention, labels)]
        out = model(tensors[0], tensors[1], tensors[2], mlm_labels=tensors[3], pair_head=False)
        flat = out.mlm_positions.cpu().numpy()                                       # (M,) b * T + t in this block
        row, col = flat // T + first, flat % T
        s = row % S                                                                  # the pack row
        logp = out.mlm_logits.float().log_softmax(-1)                                # (M, V)
        target = torch.from_numpy(pack.input_ids[s, col]).to(device)
        surprisal[s, col] = (-logp.gather(1, target[:, None]).squeeze(1)).cpu().numpy()
        top1[s, col] = top_tokens(logp).cpu().numpy()
        previous = pack.input_ids[s, col - 1]
        stage_rows = max(0, min(len(flat), STAGE_POSITIONS - stage_done))         # the first positions only
        stage_done += stage_rows
        for a in range(0, stage_rows, CHUNK):
            part = logp[a:a + CHUNK].exp()
            js_u[s[a:a + CHUNK], col[a:a + CHUNK]] = jensen_shannon(part, unigram[None, :]).cpu().numpy()
            bigram = torch.from_numpy(bigram_rows(pack, previous[a:a + CHUNK])).float().to(device)
            js_b[s[a:a + CHUNK], col[a:a + CHUNK]] = jensen_shannon(part, bigram).cpu().numpy()
    return (surprisal.astype(np.float16), top1, js_u.astype(np.float16), js_b.astype(np.float16))


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence in bits between the rows of ``p`` and ``q`` (broadcast), in [0, 1]:
    H(m) - (H(p) + H(q)) / 2 with m the mixture; one log per element of each."""
    def plogp(x: torch.Tensor) -> torch.Tensor:
        return (x * x.clamp(min=1e-30).log()).sum(-1)

    js = 0.5 * (plogp(p) + plogp(q)) - plogp(0.5 * (p + q))
    return (js / math.log(2.0)).clamp(0.0, 1.0)


def _unmasked_pass(model, pack: ProbePack, device, batch_rows: int):
    S, T = pack.input_ids.shape
    ids = pack.input_ids
    key_classes = np.stack([ids == special_id(pack, "[CLS]"), ids == special_id(pack, "[SEP]"),
                            pack.is_punctuation[ids]]).astype(np.float32)           # (3, S, T)
    sums = None
    kept: list[np.ndarray] = []
    states_sum = counts = None
    for first in range(0, S, batch_rows):
        rows = slice(first, first + batch_rows)
        tensors = [torch.from_numpy(np.ascontiguousarray(a[rows])).to(device)
                   for a in (ids, pack.token_type_ids, pack.attention_mask)]
        with capturing_attention(model) as captured:
            states = model.final_states(*tensors)                                   # (b, T, H)
        if not captured:                                      # an architecture without capturing attention layers
            captured = [torch.zeros(len(tensors[0]), 0, T, T, device=device)]
        probabilities = torch.stack(captured, 1).float()                            # (b, L, nh, T, T)
        part = head_feature_sums(probabilities, tensors[2].bool(),
                                 torch.from_numpy(key_classes[:, rows]).to(device))
        sums = part if sums is None else sums + part
        if first == 0:
            A = min(ATTENTION_TOKENS, T)
            kept.append(probabilities[:ATTENTION_EXAMPLES, :, :, :A, :A].cpu().numpy().astype(np.float16))
        flat_ids = tensors[0].reshape(-1)
        flat_states = states.reshape(-1, states.shape[-1]).float()
        if states_sum is None:
            states_sum = torch.zeros(pack.vocab_size, states.shape[-1], device=device)
            counts = torch.zeros(pack.vocab_size, device=device)
        states_sum.index_add_(0, flat_ids, flat_states)
        counts.index_add_(0, flat_ids, torch.ones_like(flat_ids, dtype=torch.float32))
    real_tokens = float(pack.attention_mask.sum())
    heads = (sums / max(real_tokens, 1.0)).cpu().numpy().astype(np.float32)          # (L, nh, 8)
    present = np.flatnonzero((counts.cpu().numpy() > 0) & ~pack.is_special)
    present = present[np.argsort(pack.frequency_rank[present], kind="stable")][:CONTEXT_WORDS]
    context = (states_sum[present] / counts[present, None]).cpu().numpy().astype(np.float16)
    return heads, np.concatenate(kept), present.astype(np.int64), context


def head_feature_sums(probabilities: torch.Tensor, real: torch.Tensor, key_classes: torch.Tensor) -> torch.Tensor:
    """``HEAD_FEATURES`` of every head summed over the real query positions: (L, nh, 8).

    ``probabilities`` (B, L, nh, T, T) rows sum to 1 over keys; ``real`` (B, T) marks the real tokens;
    ``key_classes`` (3, B, T) marks the keys that are [CLS], [SEP] and punctuation."""
    B, L, nh, T, _ = probabilities.shape
    p = probabilities
    shares = torch.einsum("blhqk,cbk->cblhq", p, key_classes.to(p.dtype))            # (3, B, L, nh, T)
    diagonal = p.diagonal(dim1=-2, dim2=-1)                                          # (B, L, nh, T)
    previous = torch.nn.functional.pad(p.diagonal(offset=-1, dim1=-2, dim2=-1), (1, 0))
    following = torch.nn.functional.pad(p.diagonal(offset=1, dim1=-2, dim2=-1), (0, 1))
    entropy = -torch.special.xlogy(p, p).sum(-1)
    positions = torch.arange(T, device=p.device, dtype=p.dtype)
    distance = (p * (positions[None, :] - positions[:, None]).abs()).sum(-1)
    features = torch.stack([shares[0], shares[1], shares[2], diagonal, previous, following, entropy, distance],
                           -1)                                                       # (B, L, nh, T, 8)
    weight = real.to(p.dtype)[:, None, None, :, None]
    return (features * weight).sum((0, 3))                                           # (L, nh, 8)


def embedding_statistics(embeddings: torch.Tensor, pack: ProbePack) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Per frequency band the mean norm and mean pairwise cosine; overall anisotropy and effective rank."""
    ordinary = np.flatnonzero(~pack.is_special)
    ordinary = ordinary[np.argsort(pack.frequency_rank[ordinary], kind="stable")]    # most frequent first
    edges = [0, *[e for e in FREQUENCY_BANDS if e < len(ordinary)], len(ordinary)]
    norms, cosines = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        band = ordinary[lo:hi][_even(hi - lo, 1000)]
        vectors = embeddings[torch.from_numpy(band)]
        norms.append(float(vectors.norm(dim=1).mean()))
        cosines.append(mean_pairwise_cosine(vectors))
    while len(norms) < len(FREQUENCY_BANDS) + 1:
        norms.append(math.nan)
        cosines.append(math.nan)
    sample = embeddings[torch.from_numpy(ordinary[_even(len(ordinary), EMBEDDING_SAMPLE)])]
    return (np.array(norms, np.float32), np.array(cosines, np.float32), mean_pairwise_cosine(sample),
            effective_rank(sample))


def _even(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` indices spread evenly over range(n)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(np.int64)) if n else np.zeros(0, np.int64)


def mean_pairwise_cosine(vectors: torch.Tensor) -> float:
    n = len(vectors)
    if n < 2:
        return math.nan
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp(min=1e-12)
    total = unit.sum(0)
    return float((total @ total - n) / (n * (n - 1)))


def effective_rank(vectors: torch.Tensor) -> float:
    singular = torch.linalg.svdvals(vectors - vectors.mean(0, keepdim=True))
    if float(singular.sum()) == 0.0:
        return 0.0
    p = singular / singular.sum()
    return float(torch.exp(-torch.special.xlogy(p, p).sum()))
