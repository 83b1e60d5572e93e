"""BERT for pre-training: encoder + MLM head + NSP head, with ``transformers`` parameter names.

Read top-down: embeddings -> self-attention -> layer -> encoder -> pooler ->
heads -> ``BertPretrainingModel``. Every parameter name and shape equals the
one in ``transformers.BertForPreTraining`` (the decoder weight is tied to the
word embeddings and the decoder bias is ``cls.predictions.bias``, as there),
so export is a copy and the loss can be checked against theirs.

What makes it lean:
  * the MLM head runs only at the selected positions (~15% of tokens): the
    vocabulary projection, the biggest matmul of a small BERT, shrinks by ~7x;
  * the encoder works on real tokens only (padding is dropped before the first
    layer and only attention sees the padded layout);
  * on CPU, dropout masks come from 16-bit slices of 64-bit random words, a
    quarter of the random draws of ``torch.nn.functional.dropout``;
  * query, key and value are one matmul (their weights concatenated on the fly);
  * attention is ``scaled_dot_product_attention`` with a boolean padding mask;
  * the layers call ``torch.nn.functional`` directly, with no per-module
    dispatch on the hot path.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config import ModelConfig

IGNORE_INDEX = -100


@dataclass
class PretrainingOutput:
    """What ``BertPretrainingModel.forward`` returns. B = batch, T = positions, V = vocabulary, M = selected."""

    loss: torch.Tensor | None         # () mlm_loss + nsp_loss, when labels were given
    mlm_loss: torch.Tensor | None     # () mean cross-entropy over the selected positions
    nsp_loss: torch.Tensor | None     # () mean cross-entropy of the NSP head
    mlm_logits: torch.Tensor          # (M, V) at selected positions (row-major order); (B, T, V) without labels
    nsp_logits: torch.Tensor | None   # (B, 2): index 0 IsNext, 1 NotNext; None without the pair head
    mlm_positions: torch.Tensor | None  # (M,) flat indices b * T + t of the selected positions


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x)  # exact erf GELU, as BERT's "gelu"


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


class BertEmbeddings(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        T = input_ids.shape[1]
        x = (self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
             + self.position_embeddings.weight[:T])                             # (B, T, H)
        return dropout(self.LayerNorm(x), self.dropout.p, self.training)


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
        """(N, C) -> (B*T, C), zeros at padding"""
        if self.index is None:
            return packed
        return packed.new_zeros(self.batch * self.length, packed.shape[1]).index_copy(0, self.index, packed)

    def packed_positions(self, flat_positions: torch.Tensor) -> torch.Tensor:
        """Row in the (N, H) matrix of each real position given as b * T + t."""
        if self.index is None:
            return flat_positions
        row = torch.full((self.batch * self.length,), -1, dtype=torch.long, device=self.index.device)
        row[self.index] = torch.arange(len(self.index), device=self.index.device)
        return row[flat_positions]


class BertSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """(N, H) real tokens -> (N, H) attention output."""
        B, T, H = layout.batch, layout.length, x.shape[-1]
        # One (H -> 3H) matmul instead of three; the concatenation is cheap next to it.
        weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
        bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
        qkv = layout.scatter(F.linear(x, weight, bias)).view(B, T, 3, self.num_heads, H // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                          # each (B, nh, T, hd)
        p = self.dropout_p if self.training else 0.0
        if p and q.device.type == "cpu":
            # Explicit attention so that the probabilities get the cheap CPU dropout mask.
            scores = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)          # (B, nh, T, T)
            if layout.bias is not None:
                scores = scores + layout.bias
            y = dropout(scores.softmax(-1), p, True) @ v                        # (B, nh, T, hd)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=layout.attend, dropout_p=p)
        return layout.gather(y.transpose(1, 2).reshape(B * T, H))


class BertSelfOutput(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)


class BertAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config)


class BertIntermediate(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)


class BertOutput(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.intermediate_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)


class BertLayer(nn.Module):
    """Post-LayerNorm transformer layer: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertOutput(config)

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """(N, H) -> (N, H)"""
        att_out, out, p = self.attention.output, self.output, self.output.dropout.p
        a = self.attention.self(x, layout)
        x = att_out.LayerNorm(x + dropout(F.linear(a, att_out.dense.weight, att_out.dense.bias), p, self.training))
        h = _gelu(F.linear(x, self.intermediate.dense.weight, self.intermediate.dense.bias))   # (N, I)
        return out.LayerNorm(x + dropout(F.linear(h, out.dense.weight, out.dense.bias), p, self.training))


class BertEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, layout)
        return x


class BertPooler(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, first_tokens: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(first_tokens))                             # (B, H) from [CLS]


class BertModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)

    def forward(self, input_ids, token_type_ids, attention_mask) -> tuple[torch.Tensor, TokenLayout]:
        """The encoder output of the real tokens, (N, H), and where they are."""
        B, T = input_ids.shape
        embedded = self.embeddings(input_ids, token_type_ids)                   # (B, T, H)
        layout = TokenLayout.from_mask(attention_mask, B, T, embedded.dtype)
        x = layout.gather(embedded.reshape(B * T, -1))                          # (N, H)
        return self.encoder(x, layout), layout


class BertPredictionHeadTransform(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(_gelu(self.dense(x)))


class BertLMPredictionHead(nn.Module):
    """Transform, then the decoder tied to the word embeddings, plus its own bias."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        return F.linear(self.transform(hidden), word_embeddings, self.bias)


class BertPreTrainingHeads(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.predictions = BertLMPredictionHead(config)
        self.seq_relationship = nn.Linear(config.hidden_size, 2)


class BertPretrainingModel(nn.Module):
    """BERT with the MLM and NSP heads; ``state_dict`` keys equal ``BertForPreTraining``'s (ties aside)."""

    architecture = "bert"

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.architecture != "bert":
            config = dataclasses.replace(config, architecture="bert")
        if not config.hidden_size or not config.vocab_size or not config.layer_norm_eps:
            config = config.resolved()
        self.config = config
        self.bert = BertModel(config)
        self.cls = BertPreTrainingHeads(config)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor,
                mlm_labels: torch.Tensor | None = None, nsp_labels: torch.Tensor | None = None,
                pair_head: bool = True) -> PretrainingOutput:
        """``pair_head`` False skips the pooler and NSP head (no pair task): ``nsp_logits`` is None."""
        packed, layout = self.bert(input_ids, token_type_ids, attention_mask)   # (N, H)
        B, T = input_ids.shape
        word_embeddings = self.bert.embeddings.word_embeddings.weight
        nsp_logits = None
        if pair_head:
            first = layout.packed_positions(torch.arange(B, device=packed.device) * T)
            nsp_logits = self.cls.seq_relationship(self.bert.pooler(packed.index_select(0, first)))  # (B, 2)

        return heads_and_losses(packed, layout, lambda h: self.cls.predictions(h, word_embeddings), nsp_logits,
                                mlm_labels, nsp_labels)


def heads_and_losses(packed: torch.Tensor, layout: "TokenLayout", mlm_head, nsp_logits: torch.Tensor | None,
                     mlm_labels: torch.Tensor | None, nsp_labels: torch.Tensor | None) -> PretrainingOutput:
    """The MLM head (at the selected positions only, when labels are given) and both losses.

    Shared by both architectures. ``mlm_head`` maps (rows, H) states to (rows, V) logits.
    """
    B, T = layout.batch, layout.length
    mlm_loss = nsp_loss = None
    positions = None
    if mlm_labels is None:
        mlm_logits = mlm_head(layout.scatter(packed).view(B, T, -1))                 # (B, T, V)
    else:
        flat_labels = mlm_labels.reshape(-1)
        # Gather the selected positions first: the transform and the vocabulary
        # projection then cost ~15% of doing them everywhere. (nonzero() syncs on CUDA.)
        positions = (flat_labels != IGNORE_INDEX).nonzero().squeeze(1)               # (M,)
        rows = bucketed_rows(layout.packed_positions(positions))                     # (M') >= M: shapes repeat
        mlm_logits = mlm_head(packed.index_select(0, rows))[: len(positions)]        # (M, V)
        if positions.numel():
            mlm_loss = F.cross_entropy(mlm_logits.float(), flat_labels.index_select(0, positions))
        else:  # no position selected in the whole batch: a zero that keeps the graph
            mlm_loss = mlm_logits.sum() * 0.0
    if nsp_labels is not None and nsp_logits is not None:
        nsp_loss = F.cross_entropy(nsp_logits.float(), nsp_labels)
    loss = None
    if mlm_loss is not None or nsp_loss is not None:
        loss = (mlm_loss if mlm_loss is not None else 0.0) + (nsp_loss if nsp_loss is not None else 0.0)
    return PretrainingOutput(loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits, positions)


def flops_per_token(config: ModelConfig, seq_len: int, mlm_share: float = 0.15) -> float:
    """Training FLOPs per token (forward + backward = 3x forward), counting matmuls only."""
    H, L, I, V = config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size
    ffn = 3 if config.architecture == "modernbert" else 2                      # a gated MLP has three I x H matrices
    per_layer = 2 * (4 * H * H + ffn * H * I) + 2 * 2 * seq_len * H            # dense + attention scores/values
    head = mlm_share * 2 * (H * H + H * V)
    return 3 * (L * per_layer + head)

