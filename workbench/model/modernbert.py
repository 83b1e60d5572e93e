"""ModernBERT for pre-training: encoder + sparse MLM head + a pair (NSP/SOP) head, with ``transformers`` names.

Read top-down: embeddings -> rotary positions -> attention -> gated MLP ->
layer -> encoder -> heads -> ``ModernBertPretrainingModel``. The encoder and
MLM head carry exactly the parameter names and shapes of ``transformers``'
``ModernBertForMaskedLM`` (the decoder weight is tied to the token
embeddings, the decoder has its own bias), so export is a copy and loss and
gradients can be checked against theirs.

Why this architecture: at small budgets the original post-LayerNorm BERT
learns slowly (Cramming, Geiping & Goldstein 2022); pre-LayerNorm, gated
GELU feed-forward, rotary positions, no biases and no dropout learn far
faster per minute. Every layer attends globally (ModernBERT's alternating
local windows only pay off for sequences much longer than ours).

Segments: ModernBERT has no token-type embeddings. The pair task sees the
two segments through the [SEP] between them, as RoBERTa does, so the
exported encoder is exactly ``transformers``' - nothing extra to document
or drop. The pair head (``pair_classifier``) is one linear layer on the
final [CLS] state - a deeper head with its own LayerNorm learned the pair
task far slower at small budgets; it is ours and not part of
``ModernBertForMaskedLM``.

Lean as our BERT: the encoder works on real tokens only (padding removed; the
count of rows is rounded up to a bucket so that shapes repeat, which keeps
oneDNN's per-shape caches and the allocator from growing without end), the
MLM head runs at the selected positions only, and Wqkv is one matmul. Faster
than ``transformers``' own on CPU (``benchmarks/modernbert_step_profile.py``):
the last layer runs at [CLS] and the masked positions only, rotary positions
are one complex multiplication, the dense layers go through the faster of MKL and oneDNN for the CPU
(``workbench.model.cpu_linear``), and under CPU autocast to bf16 attention is the explicit product
(``workbench.model.common.attention``), the vocabulary projection runs on a vocabulary padded to a
multiple of 32 (``cpu_linear.vocabulary_logits``), whose gradient for the tied weight the token
embeddings' backward adds its rows to (``_TiedEmbedding``), and the MLP's value and gate come from two
matmuls (``_GatedProjection``). The attention scale rides on the queries' rotation (``_RotaryQkv``).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from workbench.config import ModelConfig
from workbench.model.common import (PretrainingOutput, QuerySlots, SequenceClassifier, TokenLayout, attention,
                                     bucketed_rows, clipped_normal, dropout, explicit_attention, heads_and_losses,
                                     losses_at_positions, selected_positions)
from workbench.model.cpu_linear import TiedGradient, bf16_cpu_training, linear, vocabulary_logits


def _layer_norm(config: ModelConfig) -> nn.LayerNorm:
    return nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps, bias=False)


class _TiedEmbedding(torch.autograd.Function):
    """The token embeddings' lookup, ``F.embedding``, whose backward adds its rows (in place, in the order
    ``F.embedding``'s backward adds them) to the decoder's gradient for the same weight when the decoder
    left it in ``tied`` (``cpu_linear.TiedGradient``), else to zeros as ``F.embedding``'s backward does."""

    @staticmethod
    def forward(ctx, input_ids: torch.Tensor, weight: torch.Tensor, tied: TiedGradient) -> torch.Tensor:
        ctx.save_for_backward(input_ids)
        ctx.tied, ctx.shape, ctx.dtype = tied, weight.shape, weight.dtype
        return F.embedding(input_ids, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        input_ids, = ctx.saved_tensors
        total, ctx.tied.grad = ctx.tied.grad, None
        if total is None:
            total = torch.zeros(ctx.shape, dtype=ctx.dtype, device=grad.device)
        total.index_add_(0, input_ids.reshape(-1), grad.reshape(-1, ctx.shape[1]).to(ctx.dtype))
        return None, total, None


class ModernBertEmbeddings(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.norm = _layer_norm(config)
        self.p = config.hidden_dropout_prob

    def forward(self, input_ids: torch.Tensor, tied: TiedGradient | None = None) -> torch.Tensor:
        """(B, T) -> (B, T, H). ``tied``: the decoder may hand its gradient for the shared weight over there."""
        if tied is not None and self.tok_embeddings.weight.requires_grad and torch.is_grad_enabled():
            embedded = _TiedEmbedding.apply(input_ids, self.tok_embeddings.weight, tied)
        else:
            embedded = self.tok_embeddings(input_ids)
        return dropout(self.norm(embedded), self.p, self.training)


def rotations(length: int, head_dim: int, theta: float, device) -> torch.Tensor:
    """The rotary angles of positions 0..length-1 as unit complex numbers, (T, head_dim / 2), complex64."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim))
    angles = torch.arange(length, dtype=torch.float32, device=device)[:, None] * inv_freq[None, :]   # (T, hd/2)
    return torch.polar(torch.ones_like(angles), angles)


def pair_rows(hidden_size: int, num_heads: int) -> torch.Tensor:
    """The order of Wqkv's rows that interleaves each query and key head's two halves: (3H,).

    transformers' rotary rotates element i of a head with element i + hd/2 (its "rotate_half" layout). With
    the query and key rows reordered to i, i + hd/2, i + 1, ... each such pair sits side by side, so the
    rotation is one complex multiplication. Queries and keys are reordered alike, and a dot product does
    not depend on the order of its terms: the attention, and so the whole model, is unchanged. Values
    keep their order. The stored weights are never reordered (export stays a copy)."""
    head_dim = hidden_size // num_heads
    half = head_dim // 2
    within = torch.stack([torch.arange(half), torch.arange(half) + half], dim=1).reshape(-1)   # 0, h, 1, h+1, ...
    heads = (torch.arange(2 * num_heads)[:, None] * head_dim + within[None, :]).reshape(-1)     # queries, keys
    return torch.cat([heads, torch.arange(2 * hidden_size, 3 * hidden_size)])


def _rotate(qk: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """Rotary positions on queries and keys at once, (B, T, 2, nh, hd) with paired rows (``pair_rows``), in
    fp32 as transformers does, back in their dtype: (x1 + i x2) (cos + i sin) = (x1 cos - x2 sin) + i (x2 cos
    + x1 sin), transformers' x cos + rotate_half(x) sin."""
    B, T, two, nh, hd = qk.shape
    pairs = torch.view_as_complex(qk.float().reshape(B, T, two, nh, hd // 2, 2))
    return torch.view_as_real(pairs * rotation[:, None, None, :]).reshape(qk.shape).to(qk.dtype)


class _RotaryQkv(torch.autograd.Function):
    """(B, T, 3, nh, hd) fused projections (query and key rows paired, ``pair_rows``) -> the queries and
    keys with rotary positions (``_rotate``) and the values, each (B, nh, T, hd) and contiguous; the
    queries times ``query_scale``. What slicing, ``_rotate`` and scaling compute, bit for bit, with fewer
    passes: the rotation is in place on one fp32 copy, the cast back to the input's dtype writes the
    attention's layout directly (the matmuls copied the permuted views otherwise), and the backward writes
    the three gradients into one (B, T, 3, nh, hd) tensor (autograd's slice and select backwards each
    filled a zero tensor of that size, then added).

    The attention's 1 / sqrt(hd) rides on the queries' rotation (``query_scale``) instead of on the
    (B, nh, T, T) scores, forward and backward: 2.5 of a ``mini`` step's ms. With hd = 64 the scale is
    2**-3 and the scores are bit for bit the same (a power of two commutes with rounding)."""

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, rotation: torch.Tensor, query_scale: float = 1.0):
        B, T, _, nh, hd = qkv.shape
        pairs = qkv[:, :, :2].to(torch.float32, copy=True)                           # (B, T, 2, nh, hd)
        rotation = torch.stack([rotation * query_scale, rotation], 1) if query_scale != 1.0 else rotation[:, None]
        torch.view_as_complex(pairs.view(B, T, 2, nh, hd // 2, 2)).mul_(rotation[:, :, None, :])
        q, k = (torch.empty((B, nh, T, hd), dtype=qkv.dtype, device=qkv.device) for _ in range(2))
        q.transpose(1, 2).copy_(pairs[:, :, 0])
        k.transpose(1, 2).copy_(pairs[:, :, 1])
        ctx.save_for_backward(rotation)
        ctx.shape, ctx.dtype = qkv.shape, qkv.dtype
        return q, k, qkv[:, :, 2].transpose(1, 2).contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_q, grad_k, grad_v):
        rotation, = ctx.saved_tensors
        B, T, _, nh, hd = ctx.shape
        grad = torch.empty(ctx.shape, dtype=ctx.dtype, device=rotation.device)
        pairs = torch.empty((B, T, 2, nh, hd), dtype=torch.float32, device=rotation.device)
        for i, g in enumerate((grad_q, grad_k)):
            if g is None:
                pairs[:, :, i].zero_()
            else:
                pairs[:, :, i].copy_(g.transpose(1, 2))
        # the rotation's transpose is its inverse: turn back by the conjugate angles
        torch.view_as_complex(pairs.view(B, T, 2, nh, hd // 2, 2)).mul_(rotation.conj()[:, :, None, :])
        grad[:, :, :2] = pairs
        grad[:, :, 2] = grad_v.transpose(1, 2) if grad_v is not None else 0
        return grad, None, None


class ModernBertAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.Wo = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.p = config.attention_probs_dropout_prob
        self.capture: list[torch.Tensor] | None = None   # set by ``capturing_attention``: probabilities go here
        self.register_buffer("paired", pair_rows(config.hidden_size, self.num_heads), persistent=False)

    def forward(self, x: torch.Tensor, layout: TokenLayout, rotation: torch.Tensor,
                wanted: torch.Tensor | None = None) -> torch.Tensor:
        """(N, H) real tokens -> (N, H); with ``wanted`` (R flat positions b * T + t), (R, H) at those only."""
        B, T, H = layout.batch, layout.length, x.shape[-1]
        weight = self.Wqkv.weight.index_select(0, self.paired)                       # (3H, H), rows paired
        head_dim = H // self.num_heads
        qkv = layout.scatter(linear(x, weight)).view(B, T, 3, self.num_heads, head_dim)
        q, k, v = _RotaryQkv.apply(qkv, rotation, head_dim ** -0.5)     # each (B, nh, T, hd), queries scaled
        dropout_p = self.p if self.training else 0.0
        if self.capture is not None:
            y = explicit_attention(q, k, v, layout, self.capture, scale=1.0)
        elif wanted is not None:           # the wanted queries only, each batch row's side by side
            slots = QuerySlots.of(wanted, B, T)
            queries = q.transpose(1, 2).reshape(B * T, self.num_heads, -1).index_select(0, wanted)    # (R, nh, hd)
            y = attention(slots.place(queries).transpose(1, 2), k, v, layout, dropout_p, scale=1.0)  # (B, nh, Q, hd)
            return linear(slots.take(y.transpose(1, 2)).reshape(len(wanted), H), self.Wo.weight)
        else:
            y = attention(q, k, v, layout, dropout_p, scale=1.0)                         # (B, nh, T, hd)
        y = y.transpose(1, 2).reshape(B * T, H)
        y = layout.gather(y) if wanted is None else y.index_select(0, wanted)
        return linear(y, self.Wo.weight)


class _GatedGelu(torch.autograd.Function):
    """gelu(value) * gate of (N, 2I) ``[value | gate]`` (Wi's two halves), as autograd makes it, but the
    backward writes both halves' gradients into one (N, 2I) tensor: autograd's ``chunk`` backward
    concatenated them in one more pass (0.5 ms of a 4,096-row layer's ~5.4, bf16, 2 cores). The same
    output and gate gradient bit for bit; the value's is rounded in another order
    (``_gated_gelu_gradient``)."""

    @staticmethod
    def forward(ctx, both: torch.Tensor) -> torch.Tensor:
        value, gate = both.chunk(2, dim=-1)
        activated = F.gelu(value)
        ctx.save_for_backward(both, activated)
        return activated * gate

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        both, activated = ctx.saved_tensors
        value, gate = both.chunk(2, dim=-1)
        out = torch.empty_like(both, memory_format=torch.contiguous_format)
        return _gated_gelu_gradient(grad, value, gate, activated, out)


def _gated_gelu_gradient(grad: torch.Tensor, value: torch.Tensor, gate: torch.Tensor, activated: torch.Tensor,
                         out: torch.Tensor) -> torch.Tensor:
    """The gradient of gelu(value) * gate (``activated`` = gelu(value)) written into the (N, 2I) ``out``:
    the value's half first, then the gate's. The value's is (grad * gelu'(value)) * gate: GELU's backward
    runs on ``grad`` into a contiguous tensor (into a strided half it ran at 0.6x the speed) and the
    product with the gate writes the half. Autograd multiplies by the gate first, (grad * gate) *
    gelu'(value): the same product rounded in another order, one pass more (mini step: 322 -> 317 ms).
    GELU's backward reads a contiguous ``value`` (a strided half of one product takes another code path,
    with bf16 results 1 ulp apart): both MLP paths give the same numbers."""
    half = activated.shape[-1]
    torch.mul(grad, activated, out=out[..., half:])
    torch.mul(torch.ops.aten.gelu_backward(grad, value.contiguous()), gate, out=out[..., :half])
    return out


class _GatedProjection(torch.autograd.Function):
    """gelu(x Wi_a^T) * (x Wi_b^T) in bf16 for (N, H) ``x`` and Wi = [Wi_a; Wi_b] (2I, H), each half from
    its own matmul, so that the value and the gate are contiguous (N, I) tensors: the elementwise ops on
    the strided halves of one (N, 2I) product ran at half speed (``gelu`` 2.0 against 0.9 ms at
    (4,096, 1,024), 2 cores). The backward puts both halves' gradients into one (N, 2I) tensor for one
    matmul per gradient, so the numbers are bit for bit those of one (N, 2I) product and ``_GatedGelu``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        half = weight.shape[0] // 2
        xb, w = x.to(torch.bfloat16), weight.to(torch.bfloat16)            # the casts autocast would make
        value, gate = torch.mm(xb, w[:half].t()), torch.mm(xb, w[half:].t())   # each (N, I)
        activated = F.gelu(value)
        ctx.save_for_backward(xb, w, value, gate, activated)
        ctx.dtypes = x.dtype, weight.dtype
        return activated * gate

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        xb, w, value, gate, activated = ctx.saved_tensors
        half = w.shape[0] // 2
        both = _gated_gelu_gradient(grad.to(torch.bfloat16), value, gate, activated,
                                    torch.empty((len(xb), 2 * half), dtype=torch.bfloat16, device=xb.device))
        grad_x = torch.mm(both, w).to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        grad_w = torch.mm(both.t(), xb).to(ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        return grad_x, grad_w


class ModernBertMLP(nn.Module):
    """Gated GELU: Wo(gelu(x Wi_a) * (x Wi_b)); Wi holds both halves, as in transformers."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.Wi = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.Wo = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.p = config.hidden_dropout_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bf16_cpu_training(x):
            gated = _GatedProjection.apply(x, self.Wi.weight)                          # (N, I)
        else:
            gated = _GatedGelu.apply(linear(x, self.Wi.weight))                        # (N, 2I) -> (N, I)
        return linear(dropout(gated, self.p, self.training), self.Wo.weight)


class ModernBertEncoderLayer(nn.Module):
    """Pre-LayerNorm: x = x + Attn(LN(x)); x = x + MLP(LN(x)). Layer 0 has no attention norm (the embeddings are normed)."""

    def __init__(self, config: ModelConfig, index: int):
        super().__init__()
        self.attn_norm = nn.Identity() if index == 0 else _layer_norm(config)
        self.attn = ModernBertAttention(config)
        self.mlp_norm = _layer_norm(config)
        self.mlp = ModernBertMLP(config)

    def forward(self, x: torch.Tensor, layout: TokenLayout, rotation: torch.Tensor,
                wanted: torch.Tensor | None = None) -> torch.Tensor:
        """(N, H) -> (N, H); with ``wanted`` (R flat positions), (R, H): every token is attended to, but the
        attention output, the residual and the MLP are computed at the wanted positions only."""
        attended = self.attn(self.attn_norm(x), layout, rotation, wanted)
        if wanted is not None:
            x = x.index_select(0, layout.packed_positions(wanted))
        x = x + attended
        return x + self.mlp(self.mlp_norm(x))


class ModernBertModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embeddings = ModernBertEmbeddings(config)
        self.layers = nn.ModuleList(ModernBertEncoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.final_norm = _layer_norm(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                wanted: torch.Tensor | None = None, tied: TiedGradient | None = None
                ) -> tuple[torch.Tensor, TokenLayout]:
        """The final states of the real tokens, (N, H), and where they are.

        With ``wanted`` (R flat positions b * T + t, repeats allowed), the final states at those positions
        only, (R, H) in that order. Pre-training reads the last layer at the masked positions and [CLS]
        alone, so that layer's attention output, residual and MLP run there only: the same numbers for
        those positions (every token is still attended to), at about a sixth of the last layer's dense
        work. ``tied``: see ``ModernBertEmbeddings``."""
        B, T = input_ids.shape
        embedded = self.embeddings(input_ids, tied)                                    # (B, T, H)
        layout = TokenLayout.from_mask(attention_mask, B, T, embedded.dtype, bucket=True)
        head_dim = self.config.hidden_size // self.config.num_attention_heads
        rotation = rotations(T, head_dim, self.config.rope_theta, input_ids.device)
        x = layout.gather(embedded.reshape(B * T, -1))                                 # (N, H)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x, layout, rotation, wanted if i == last else None)
        if wanted is not None and last < 0:                                             # no layers at all
            x = x.index_select(0, layout.packed_positions(wanted))
        return self.final_norm(x), layout


class ModernBertPredictionHead(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size, bias=False)
        self.norm = _layer_norm(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.gelu(linear(x, self.dense.weight)))


class ModernBertDecoder(nn.Module):
    """The vocabulary projection: weight tied to the token embeddings (not stored), its own bias."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))


class ModernBertPretrainingModel(nn.Module):
    """ModernBERT with the MLM head and a pair head; MLM-side names equal ``ModernBertForMaskedLM``'s."""

    architecture = "modernbert"

    def __init__(self, config: ModelConfig):
        super().__init__()
        if config.architecture != "modernbert":
            config = dataclasses.replace(config, architecture="modernbert")
        if not (config.hidden_size and config.vocab_size and config.layer_norm_eps and config.initializer_range):
            config = config.resolved()
        self.config = config
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.decoder = ModernBertDecoder(config)
        self.pair_classifier = nn.Linear(config.hidden_size, 2)
        self._init_weights()

    def _init_weights(self) -> None:
        """transformers' ModernBERT initialisation: truncated normals, output projections scaled by depth."""
        std = self.config.initializer_range
        out_std = std / math.sqrt(2.0 * self.config.num_hidden_layers)

        def normal(weight: torch.Tensor, s: float) -> None:
            nn.init.trunc_normal_(weight, mean=0.0, std=s, a=-2 * s, b=2 * s)

        normal(self.model.embeddings.tok_embeddings.weight, std)
        for layer in self.model.layers:
            normal(layer.attn.Wqkv.weight, std)
            normal(layer.attn.Wo.weight, out_std)
            normal(layer.mlp.Wi.weight, std)
            normal(layer.mlp.Wo.weight, out_std)
        normal(self.head.dense.weight, out_std)
        nn.init.uniform_(self.pair_classifier.weight, -self.config.hidden_size ** -0.5, self.config.hidden_size ** -0.5)
        nn.init.zeros_(self.pair_classifier.bias)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.model.embeddings.tok_embeddings.weight

    def final_states(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        """The encoder's output at every position, (B, T, H) (zeros at padding)."""
        packed, layout = self.model(input_ids, attention_mask)
        return layout.scatter(packed).view(*input_ids.shape, -1)

    def unbiased_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """The decoder's logits without its bias (``self.decoder.bias``), which the loss adds in fp32."""
        return linear(self.head(hidden), self.word_embeddings)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, attention_mask: torch.Tensor,
                mlm_labels: torch.Tensor | None = None, nsp_labels: torch.Tensor | None = None,
                pair_head: bool = True) -> PretrainingOutput:
        """Same contract as ``BertPretrainingModel.forward``; ``token_type_ids`` is accepted and unused.

        With labels, the encoder's last layer runs at [CLS] (for the pair head) and the selected positions
        only (``ModernBertModel.forward``'s ``wanted``); the count is rounded up to a bucket so that shapes
        repeat, and the extra rows are ignored by the loss."""
        B, T = input_ids.shape
        cls = torch.arange(B, device=input_ids.device) * T
        if mlm_labels is None:
            packed, layout = self.model(input_ids, attention_mask)                     # (N, H)
            nsp_logits = None
            if pair_head:
                nsp_logits = self.pair_classifier(packed.index_select(0, layout.packed_positions(cls)))   # (B, 2)
            return heads_and_losses(packed, layout, self.unbiased_logits, nsp_logits, None, nsp_labels,
                                    self.decoder.bias)
        positions = selected_positions(mlm_labels)                                     # (M,)
        heads = B if pair_head else 0
        wanted = bucketed_rows(torch.cat([cls[:heads], positions]))                    # (B + M') >= B + M
        tied = None if torch.compiler.is_compiling() else TiedGradient()    # the decoder's gradient, to the embeddings
        states, _ = self.model(input_ids, attention_mask, wanted, tied)                # (B + M', H)
        nsp_logits = self.pair_classifier(states[:B]) if pair_head else None
        logits, bias_added = vocabulary_logits(self.head(states[heads:]), self.word_embeddings, self.decoder.bias,
                                               tied)
        return losses_at_positions(logits, positions, mlm_labels, nsp_logits, nsp_labels, self.decoder.bias,
                                   bias_added)


class ModernBertClassifier(SequenceClassifier):
    """``ModernBertForSequenceClassification`` with ``classifier_pooling="mean"``: the mean of the real
    tokens' final states, the head transform, a linear classifier. MLM pre-training trains every token's
    state while [CLS] alone is trained only by the pair head: fine-tuned from a 5-minute pre-training, mean
    pooling is what lets the pre-trained encoder help."""

    encoder_prefix = "model."

    def __init__(self, config: ModelConfig, num_labels: int, head_seed: int = 0):
        super().__init__(config, num_labels)
        self.model = ModernBertModel(config)
        self.head = ModernBertPredictionHead(config)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        generator = torch.Generator().manual_seed(head_seed)   # two arms with one seed start from one head
        with torch.no_grad():
            out_std = config.initializer_range / math.sqrt(2.0 * config.num_hidden_layers)
            self.head.dense.weight.copy_(clipped_normal(self.head.dense.weight.shape, out_std, generator))
            self.classifier.weight.copy_(clipped_normal(self.classifier.weight.shape, config.hidden_size ** -0.5,
                                                        generator))
            self.classifier.bias.zero_()

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.classifier.parameters()) + list(self.head.parameters())

    def forward(self, input_ids, token_type_ids, attention_mask):
        B, T = input_ids.shape
        packed, layout = self.model(input_ids, attention_mask)
        states = layout.scatter(packed).view(B, T, -1)                              # (B, T, H)
        mask = attention_mask.to(states.dtype).unsqueeze(-1)                         # (B, T, 1)
        return self.classifier(self.head((states * mask).sum(1) / mask.sum(1).clamp(min=1.0)))


# --- the architecture's record (workbench.architectures): building, transformers' format ----------------------

HF_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")


def build_pretraining(config: ModelConfig) -> ModernBertPretrainingModel:
    return ModernBertPretrainingModel(config)


def build_classifier(config: ModelConfig, num_labels: int, head_seed: int = 0) -> ModernBertClassifier:
    return ModernBertClassifier(config, num_labels, head_seed)


def hf_config(model: ModelConfig, tokenizer) -> dict:
    """``transformers.ModernBertConfig`` of our encoder: every layer global, no biases, tied decoder with bias."""
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    return {
        "architectures": ["ModernBertForMaskedLM"], "model_type": "modernbert",
        "vocab_size": model.vocab_size, "hidden_size": model.hidden_size, "intermediate_size": model.intermediate_size,
        "num_hidden_layers": model.num_hidden_layers, "num_attention_heads": model.num_attention_heads,
        "hidden_activation": "gelu", "max_position_embeddings": model.max_position_embeddings,
        "initializer_range": model.initializer_range, "norm_eps": model.layer_norm_eps, "norm_bias": False,
        "attention_bias": False, "mlp_bias": False, "decoder_bias": True, "classifier_bias": False,
        "classifier_activation": "gelu", "classifier_pooling": "cls",
        "attention_dropout": model.attention_probs_dropout_prob, "mlp_dropout": model.hidden_dropout_prob,
        "embedding_dropout": model.hidden_dropout_prob,
        # every layer attends globally (both spellings: older and newer transformers)
        "global_attn_every_n_layers": 1, "layer_types": ["full_attention"] * model.num_hidden_layers,
        "global_rope_theta": model.rope_theta, "local_rope_theta": 10000.0, "local_attention": 128,
        "rope_parameters": {"full_attention": {"rope_type": "default", "rope_theta": model.rope_theta},
                            "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}},
        "pad_token_id": tokenizer.token_to_id("[PAD]"), "cls_token_id": cls_id, "sep_token_id": sep_id,
        "bos_token_id": cls_id, "eos_token_id": sep_id, "tie_word_embeddings": True, "torch_dtype": "float32",
    }


def hf_classifier_config(config: ModelConfig) -> dict:
    return {"architectures": ["ModernBertForSequenceClassification"], "classifier_pooling": "mean"}


def export_tensors(state: dict) -> dict:
    """``ModernBertForMaskedLM``'s weights: ours without the pair head (it has none)."""
    return {k: v for k, v in state.items() if not k.startswith("pair_")}


def hf_weight_name(key: str) -> str | None:
    """A ``transformers`` weight's name in our model (a bare ``ModernBertModel``'s gain ``model.``)."""
    if key == "decoder.weight" or key.endswith("position_ids"):
        return None                                     # tied to the token embeddings
    return key if key.startswith(("model.", "head.", "decoder.", "classifier.")) else "model." + key


def config_from_hf(folder, raw: dict) -> dict:
    """``[model]`` values of a ``ModernBertConfig`` (global attention in every layer, gelu, no biases)."""
    from workbench.errors import ConfigError

    missing = [k for k in HF_KEYS if k not in raw]
    if missing:
        raise ConfigError(f"lacks {', '.join(missing)}")
    layer_types = raw.get("layer_types") or (["full_attention"] if raw.get("global_attn_every_n_layers", 3) == 1
                                             else ["sliding_attention"])
    if not isinstance(layer_types, list) or any(t != "full_attention" for t in layer_types):
        raise ConfigError("a ModernBERT with local (sliding-window) attention layers; the workbench trains "
                          "ModernBERT with global attention in every layer")
    if raw.get("hidden_activation", "gelu") not in ("gelu", "gelu_python") or raw.get("norm_bias") or \
            raw.get("attention_bias") or raw.get("mlp_bias") or not raw.get("decoder_bias", True):
        raise ConfigError("only ModernBERT with gelu, no biases and a decoder bias is supported")
    rope = raw.get("rope_parameters")
    full = rope.get("full_attention") if isinstance(rope, dict) else None
    theta = (full.get("rope_theta") if isinstance(full, dict) else None) or raw.get("global_rope_theta", 160000.0)
    return {**{k: raw[k] for k in HF_KEYS},
            "max_position_embeddings": raw.get("max_position_embeddings", 8192),
            "layer_norm_eps": raw.get("norm_eps", 1e-5), "rope_theta": theta,
            "initializer_range": raw.get("initializer_range", 0.02),
            "hidden_dropout_prob": raw.get("mlp_dropout", 0.0),
            "attention_probs_dropout_prob": raw.get("attention_dropout", 0.0)}
