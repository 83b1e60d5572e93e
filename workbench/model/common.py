"""What every architecture shares: the output type, the token layout without padding, the sparse MLM head
and both losses, the cheap CPU dropout, the classifier's contract and the cost estimate.

An architecture module (``workbench.model.bert``, ``workbench.model.modernbert``; see
``workbench.architectures``) builds its encoder from these and returns ``PretrainingOutput``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from workbench import architectures
from workbench.config import ModelConfig
from workbench.model.vocab_loss import IGNORE_INDEX, top_tokens, vocab_loss_and_predictions, with_bias


@dataclass
class PretrainingOutput:
    """What ``BertPretrainingModel.forward`` returns. B = batch, T = positions, V = vocabulary, M = selected."""

    loss: torch.Tensor | None         # () mlm_loss + nsp_loss, when labels were given
    mlm_loss: torch.Tensor | None     # () mean cross-entropy over the selected positions
    nsp_loss: torch.Tensor | None     # () mean cross-entropy of the NSP head
    head_logits: torch.Tensor         # ``mlm_logits`` without ``mlm_bias`` (the same tensor where it is None)
    nsp_logits: torch.Tensor | None   # (B, 2): index 0 IsNext, 1 NotNext; None without the pair head
    mlm_positions: torch.Tensor | None  # (M,) flat indices b * T + t of the selected positions
    mlm_bias: torch.Tensor | None = None          # the decoder's bias, when the loss added it (V,)
    mlm_predictions: torch.Tensor | None = None   # (M,) each selected position's top token, where the loss found it
    _biased: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def mlm_logits(self) -> torch.Tensor:
        """(M, V) at the selected positions (row-major order); (B, T, V) without labels. Made on first use:
        training reads only the loss and the predictions, and adding the bias to every logit took 6 of a
        ``tiny`` step's 81 ms."""
        if self._biased is None:
            self._biased = with_bias(self.head_logits, self.mlm_bias)
        return self._biased

    def predicted_tokens(self) -> torch.Tensor:
        """(M,) the top token at each selected position: the loss's, or the logits' ``top_tokens``."""
        if self.mlm_predictions is not None:
            return self.mlm_predictions
        with torch.no_grad():
            return top_tokens(self.mlm_logits)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout; on CPU with a cheaper mask than ``torch.nn.functional.dropout``.

    On CPU the Bernoulli draw dominates dropout (about a quarter of BERT-base's
    forward pass). Here each 64-bit random word gives four 16-bit uniforms, so the
    mask costs a quarter of the draws; the keep probability is exact to 2**-16.
    Elsewhere (CUDA's fused Philox dropout is already cheap) the native op is used.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    uniform = words.view(torch.int16)[:n].view(x.shape)                       # uniform over int16
    drop = uniform < (-32768 + round(p * 65536))                               # P(drop) = p
    return (x * (1.0 / (1.0 - p))).masked_fill(drop, 0.0)


def bucket_size(n: int, limit: int) -> int:
    """``n`` rounded up to one of 8 steps per power of two (at most ``limit``)."""
    if n <= 64:
        return min(limit, 64)
    step = 1 << max(0, n.bit_length() - 4)
    return min(limit, -(-n // step) * step)


def bucketed_rows(rows: torch.Tensor) -> torch.Tensor:
    """``rows`` padded (with copies of its first entry) to a bucket size, for the MLM head.

    The number of predicted positions changes every batch; without buckets each count is a new
    (M, H) x (H, V) matmul shape and oneDNN caches a primitive per shape (a GB on CPU within minutes).
    The extra rows are computed and sliced off before the loss; they cost < 1/8 more of the head.
    """
    n = len(rows)
    size = bucket_size(n, 1 << 62) if n else 0
    if size == n:
        return rows
    return torch.cat([rows, rows[:1].expand(size - n)])


@dataclass
class TokenLayout:
    """Where the real (non-padding) tokens of a (B, T) batch are.

    The encoder works on the real tokens only, as a (N, H) matrix: dense layers
    never spend work on padding. Attention alone needs the (B, T) layout, so its
    inputs are scattered into it and its output gathered back.
    """

    batch: int
    length: int
    index: torch.Tensor | None       # (N,) flat b * T + t of the real tokens; None when there is no padding
    attend: torch.Tensor | None      # (B, 1, 1, T) bool, True where a key may be attended
    bias: torch.Tensor | None        # (B, 1, 1, T) additive mask (0 or a large negative), for the explicit path

    @classmethod
    def from_mask(cls, attention_mask: torch.Tensor | None, batch: int, length: int, dtype: torch.dtype,
                  bucket: bool = True) -> "TokenLayout":
        # Without padding nothing is gathered and no mask is passed, so SDPA may pick
        # its fastest kernel. (The check and nonzero() are sync points on CUDA.)
        if attention_mask is None or bool(attention_mask.all()):
            return cls(batch, length, None, None, None)
        real = attention_mask.bool()
        flat = real.reshape(-1)
        index = flat.nonzero().squeeze(1)
        if bucket:
            # Round the row count up to a bucket by carrying a few padding positions along (their
            # keys stay masked, their outputs are never read). Every batch otherwise has a new
            # (N, H) shape, and oneDNN's per-shape primitive cache and the allocator grow without
            # end on CPU (GBs over minutes); with buckets shapes repeat. Cost: < 1/8 more rows.
            n = len(index)
            size = bucket_size(n, batch * length)
            if size > n:
                padding = (~flat).nonzero().squeeze(1)[: size - n]
                index = torch.cat([index, padding]).sort().values
        attend = real[:, None, None, :]
        bias = torch.zeros(attend.shape, dtype=dtype, device=real.device).masked_fill(~attend, torch.finfo(dtype).min)
        return cls(batch, length, index, attend, bias)

    def gather(self, padded: torch.Tensor) -> torch.Tensor:
        """(B*T, C) -> (N, C)"""
        return padded if self.index is None else padded.index_select(0, self.index)

    def scatter(self, packed: torch.Tensor) -> torch.Tensor:
        """(N, C) -> (B*T, C), zeros at padding (copied in place: ``index_copy`` cloned the zeros first)"""
        if self.index is None:
            return packed
        return packed.new_zeros(self.batch * self.length, packed.shape[1]).index_copy_(0, self.index, packed)

    def packed_positions(self, flat_positions: torch.Tensor) -> torch.Tensor:
        """Row in the (N, H) matrix of each real position given as b * T + t."""
        if self.index is None:
            return flat_positions
        row = torch.full((self.batch * self.length,), -1, dtype=torch.long, device=self.index.device)
        row[self.index] = torch.arange(len(self.index), device=self.index.device)
        return row[flat_positions]


@dataclass
class QuerySlots:
    """Where R wanted positions (flat b * T + t) sit in a (B, Q) grid of query slots: each batch row's
    wanted positions side by side in the order given, Q the most any row has, rounded up to 8 so that
    shapes repeat. Attention for a few queries per sequence (the last layer in pre-training) runs on the
    grid: every key is still attended to, the empty slots' results are never read."""

    rows: torch.Tensor    # (R,) batch row of each wanted position
    slots: torch.Tensor   # (R,) its slot in that row
    width: int            # Q
    batch: int

    @classmethod
    def of(cls, wanted: torch.Tensor, batch: int, length: int) -> "QuerySlots":
        rows = torch.div(wanted, length, rounding_mode="floor")
        counts = torch.bincount(rows, minlength=batch)
        starts = counts.cumsum(0) - counts
        order = torch.argsort(rows, stable=True)
        slots = torch.empty_like(rows)
        slots[order] = torch.arange(len(rows), device=rows.device) - starts[rows[order]]
        width = max(8, -(-int(counts.max()) // 8) * 8) if len(rows) else 8       # (a sync on CUDA)
        return cls(rows, slots, width, batch)

    def place(self, values: torch.Tensor) -> torch.Tensor:
        """(R, ...) -> (B, Q, ...), zeros in the empty slots."""
        grid = values.new_zeros(self.batch, self.width, *values.shape[1:])
        return grid.index_put((self.rows, self.slots), values)

    def take(self, grid: torch.Tensor) -> torch.Tensor:
        """(B, Q, ...) -> (R, ...)"""
        return grid[self.rows, self.slots]


def _scaled(scores: torch.Tensor, q: torch.Tensor, scale: float | None) -> torch.Tensor:
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    return scores if scale == 1.0 else scores * scale


def attention_probabilities(q: torch.Tensor, k: torch.Tensor, layout: "TokenLayout",
                            scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale + padding mask) in fp32, (B, nh, T, T): attention computed explicitly. ``scale``
    defaults to 1 / sqrt(hd); 1 where the queries come scaled (``ModernBertAttention``)."""
    scores = _scaled(q @ k.transpose(-1, -2), q, scale)                          # (B, nh, T, T)
    if layout.bias is not None:
        scores = scores + layout.bias
    return scores.float().softmax(-1)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: "TokenLayout",
              dropout_p: float, scale: float | None = None) -> torch.Tensor:
    """softmax(q k^T * scale + padding mask) v, (B, nh, Q, hd): SDPA, except under CPU autocast to bf16.
    ``scale`` defaults to 1 / sqrt(hd); 1 where the queries come scaled (``ModernBertAttention``).

    There the fused kernel's backward runs at a quarter of its fp32 speed (8 ms a layer of ``tiny`` at
    4,096 tokens against 2 in fp32, on a Xeon with AMX), while the explicit product's matmuls run on the
    bf16 units. The softmax computes in fp32, as in ``attention_probabilities``: a CPU softmax of bf16
    scores works in fp32 and rounds once, so its probabilities are fp32's rounded to bf16 (bit for bit on
    a Xeon with AVX-512; on an AVX2 CPU 1 in 30,000 lands on the other bf16 neighbour; tested), and it
    saves the cast in, the cast out and their backwards (a ``mini`` layer's softmax forward and backward:
    1.8 ms against 5.8). Its backward reads the bf16 probabilities instead of fp32 ones."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        scores = _scaled(q @ k.transpose(-1, -2), q, scale)                          # (B, nh, Q, T)
        if layout.bias is not None:        # finite in bf16 too: a row with no key to attend to stays a number
            scores = scores + layout.bias.to(scores.dtype).clamp_(min=torch.finfo(scores.dtype).min)
        probabilities = scores.softmax(-1) if scores.dtype == torch.bfloat16 else scores.float().softmax(-1)
        return dropout(probabilities.to(v.dtype), dropout_p, True) @ v
    return F.scaled_dot_product_attention(q, k, v, attn_mask=layout.attend, dropout_p=dropout_p, scale=scale)


def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, layout: "TokenLayout",
                       capture: list[torch.Tensor], scale: float | None = None) -> torch.Tensor:
    """Attention with its probabilities (B, nh, T, T) appended to ``capture``.

    The fused kernels return no weights; inspection (``workbench.snapshots``) needs them, on a small probe
    set and without dropout, so this path is only taken while ``capturing_attention`` is on."""
    probabilities = attention_probabilities(q, k, layout, scale)
    capture.append(probabilities)
    return probabilities.to(v.dtype) @ v                                         # (B, nh, T, hd)


@contextlib.contextmanager
def capturing_attention(model: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, every attention layer of ``model`` computes attention explicitly and appends its
    probabilities, (B, nh, T, T) per layer in order, to the list yielded."""
    captured: list[torch.Tensor] = []
    layers = [m for m in model.modules() if hasattr(m, "capture")]
    for layer in layers:
        layer.capture = captured
    try:
        yield captured
    finally:
        for layer in layers:
            layer.capture = None


def selected_positions(mlm_labels: torch.Tensor) -> torch.Tensor:
    """(M,) flat indices b * T + t of the positions the MLM loss scores (row-major order). Syncs on CUDA."""
    return (mlm_labels.reshape(-1) != IGNORE_INDEX).nonzero().squeeze(1)


def heads_and_losses(packed: torch.Tensor, layout: "TokenLayout", mlm_head, nsp_logits: torch.Tensor | None,
                     mlm_labels: torch.Tensor | None, nsp_labels: torch.Tensor | None,
                     mlm_bias: torch.Tensor | None = None) -> PretrainingOutput:
    """The MLM head (at the selected positions only, when labels are given) and both losses.

    Shared by every architecture. ``mlm_head`` maps (rows, H) states to (rows, V) logits, leaving out the
    decoder's ``mlm_bias`` when one is given (the loss adds it; see ``losses_at_positions``).
    """
    B, T = layout.batch, layout.length
    if mlm_labels is None:
        mlm_logits = with_bias(mlm_head(layout.scatter(packed).view(B, T, -1)), mlm_bias)     # (B, T, V)
        return losses_at_positions(mlm_logits, None, None, nsp_logits, nsp_labels)
    # Gather the selected positions first: the transform and the vocabulary
    # projection then cost ~15% of doing them everywhere.
    positions = selected_positions(mlm_labels)                                       # (M,)
    rows = bucketed_rows(layout.packed_positions(positions))                         # (M') >= M: shapes repeat
    return losses_at_positions(mlm_head(packed.index_select(0, rows)), positions, mlm_labels, nsp_logits,
                               nsp_labels, mlm_bias)


def losses_at_positions(mlm_logits: torch.Tensor, positions: torch.Tensor | None, mlm_labels: torch.Tensor | None,
                        nsp_logits: torch.Tensor | None, nsp_labels: torch.Tensor | None,
                        mlm_bias: torch.Tensor | None = None, bias_added: bool = False) -> PretrainingOutput:
    """Both losses. ``mlm_logits`` (M', V) holds the M = len(positions) selected positions first, then rows
    of bucket padding, which the loss ignores (a target of ``IGNORE_INDEX``): slicing them off instead put
    a slice into the graph whose backward wrote a zero (M', V) gradient and copied into it, every step.

    Given ``mlm_bias``, ``mlm_logits`` leave the decoder's bias out: the loss adds it in fp32 and makes its
    gradient (``workbench.model.vocab_loss``), and the logits returned have it added. With ``bias_added``
    the logits already include it and the loss makes only its gradient."""
    mlm_loss = nsp_loss = predictions = None
    if positions is not None:
        selected = len(positions)
        targets = mlm_labels.reshape(-1).index_select(0, positions)
        if len(mlm_logits) > selected:
            targets = torch.cat([targets, targets.new_full((len(mlm_logits) - selected,), IGNORE_INDEX)])
        if selected:
            mlm_loss, predictions = vocab_loss_and_predictions(mlm_logits, targets, mlm_bias, bias_added)
            predictions = predictions[:selected] if predictions is not None else None
        else:  # no position selected in the whole batch: a zero that keeps the graph
            mlm_loss = with_bias(mlm_logits, mlm_bias).sum() * 0.0
        if bias_added:
            mlm_bias = None                                               # the logits have it
        mlm_logits = mlm_logits[:selected]                                # (M, V); the bias is added on demand
    else:
        mlm_bias = None                                                   # the logits have it (heads_and_losses)
    if nsp_labels is not None and nsp_logits is not None:
        nsp_loss = F.cross_entropy(nsp_logits.float(), nsp_labels)
    loss = None
    if mlm_loss is not None or nsp_loss is not None:
        loss = (mlm_loss if mlm_loss is not None else 0.0) + (nsp_loss if nsp_loss is not None else 0.0)
    return PretrainingOutput(loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits, positions, mlm_bias, predictions)


def flops_per_token(config: ModelConfig, seq_len: int, mlm_share: float = 0.15) -> float:
    """Training FLOPs per token (forward + backward = 3x forward), counting matmuls only."""
    H, L, I, V = config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size
    ffn = architectures.get(config.architecture).ffn_matrices                 # a gated MLP has three I x H matrices
    per_layer = 2 * (4 * H * H + ffn * H * I) + 2 * 2 * seq_len * H            # dense + attention scores/values
    head = mlm_share * 2 * (H * H + H * V)
    return 3 * (L * per_layer + head)


class SequenceClassifier(nn.Module):
    """A pre-training encoder with a classification head; each architecture subclasses it with
    ``transformers``' ``*ForSequenceClassification`` parameter names, so a fine-tuned model exports as a copy.

    ``encoder_prefix``: the names the encoder's weights share with the pre-training model's state dict."""

    encoder_prefix = ""

    def __init__(self, config: ModelConfig, num_labels: int):
        super().__init__()
        self.config = config
        self.architecture = config.architecture
        self.num_labels = num_labels

    def load_encoder(self, pretraining_state: dict[str, torch.Tensor]) -> None:
        """Copy the encoder from a pre-training model's state dict."""
        prefix = self.encoder_prefix
        encoder = {k: v for k, v in pretraining_state.items() if k.startswith(prefix)}
        missing, _ = self.load_state_dict(encoder, strict=False)
        left = [k for k in missing if k.startswith(prefix)]
        if left:
            raise ValueError(f"encoder weights missing: {left[:3]}")

    def head_parameters(self) -> list[nn.Parameter]:
        """What the frozen-encoder arm trains."""
        raise NotImplementedError

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, num_labels) logits."""
        raise NotImplementedError

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels)


def clipped_normal(shape, std: float, generator: torch.Generator) -> torch.Tensor:
    """A normal clipped at two standard deviations (drawn from the given generator)."""
    values = torch.randn(shape, generator=generator) * std
    return values.clamp_(-2 * std, 2 * std)
