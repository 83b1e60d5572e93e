"""BERT for pre-training: encoder + MLM head + NSP head, with ``transformers`` parameter names.

Read top-down: embeddings -> self-attention -> layer -> encoder -> pooler ->
heads -> ``BertPretrainingModel``. Every parameter name and shape equals the
one in ``transformers.BertForPreTraining`` (the decoder weight is tied to the
word embeddings and the decoder bias is ``cls.predictions.bias``, as there),
so export is a copy and the loss can be checked against theirs.

What makes it lean:
  * the MLM head runs only at the selected positions (~15% of tokens): the
    vocabulary projection, the biggest matmul of a small BERT, shrinks by ~7x;
  * query, key and value are one matmul (their weights concatenated on the fly);
  * attention is ``scaled_dot_product_attention`` with a boolean padding mask;
  * the layers call ``torch.nn.functional`` directly, with no per-module
    dispatch on the hot path.
"""

from __future__ import annotations

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
    nsp_logits: torch.Tensor          # (B, 2): index 0 IsNext, 1 NotNext
    mlm_positions: torch.Tensor | None  # (M,) flat indices b * T + t of the selected positions


def _gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x)  # exact erf GELU, as BERT's "gelu"


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
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        B, T, H = x.shape
        # One (H -> 3H) matmul instead of three; the concatenation is cheap next to it.
        weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
        bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
        qkv = F.linear(x, weight, bias).view(B, T, 3, self.num_heads, H // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                          # each (B, nh, T, hd)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attend,
                                           dropout_p=self.dropout_p if self.training else 0.0)
        return y.transpose(1, 2).reshape(B, T, H)


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

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        att_out = self.attention.output
        a = self.attention.self(x, attend)
        x = att_out.LayerNorm(x + att_out.dropout(F.linear(a, att_out.dense.weight, att_out.dense.bias)))
        h = _gelu(F.linear(x, self.intermediate.dense.weight, self.intermediate.dense.bias))   # (B, T, I)
        out = self.output
        return out.LayerNorm(x + out.dropout(F.linear(h, out.dense.weight, out.dense.bias)))


class BertEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, x: torch.Tensor, attend: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layer:
            x = layer(x, attend)
        return x


class BertPooler(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(sequence[:, 0]))                           # (B, H) from [CLS]


class BertModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config)

    def forward(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        attend = None
        # Without padding no mask is passed, so SDPA may pick its fastest kernel (a sync on CUDA).
        if attention_mask is not None and not bool(attention_mask.all()):
            attend = attention_mask.bool()[:, None, None, :]                    # (B, 1, 1, T) True = attend
        return self.encoder(self.embeddings(input_ids, token_type_ids), attend)  # (B, T, H)


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

    def __init__(self, config: ModelConfig):
        super().__init__()
        if not config.hidden_size or not config.vocab_size:
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
                mlm_labels: torch.Tensor | None = None, nsp_labels: torch.Tensor | None = None) -> PretrainingOutput:
        sequence = self.bert(input_ids, token_type_ids, attention_mask)           # (B, T, H)
        B, T, H = sequence.shape
        word_embeddings = self.bert.embeddings.word_embeddings.weight
        nsp_logits = self.cls.seq_relationship(self.bert.pooler(sequence))      # (B, 2)

        mlm_loss = nsp_loss = None
        positions = None
        if mlm_labels is None:
            mlm_logits = self.cls.predictions(sequence, word_embeddings)        # (B, T, V)
        else:
            flat_labels = mlm_labels.reshape(-1)
            # Gather the selected positions first: the transform and the vocabulary
            # projection then cost ~15% of doing them everywhere. (nonzero() syncs on CUDA.)
            positions = (flat_labels != IGNORE_INDEX).nonzero().squeeze(1)      # (M,)
            selected = sequence.reshape(B * T, H).index_select(0, positions)    # (M, H)
            mlm_logits = self.cls.predictions(selected, word_embeddings)        # (M, V)
            if positions.numel():
                mlm_loss = F.cross_entropy(mlm_logits.float(), flat_labels.index_select(0, positions))
            else:  # no position selected in the whole batch: a zero that keeps the graph
                mlm_loss = mlm_logits.sum() * 0.0
        if nsp_labels is not None:
            nsp_loss = F.cross_entropy(nsp_logits.float(), nsp_labels)
        loss = None
        if mlm_loss is not None or nsp_loss is not None:
            loss = (mlm_loss if mlm_loss is not None else 0.0) + (nsp_loss if nsp_loss is not None else 0.0)
        return PretrainingOutput(loss, mlm_loss, nsp_loss, mlm_logits, nsp_logits, positions)


def flops_per_token(config: ModelConfig, seq_len: int, mlm_share: float = 0.15) -> float:
    """Training FLOPs per token (forward + backward = 3x forward), counting matmuls only."""
    H, L, I, V = config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size
    per_layer = 2 * (4 * H * H + 2 * H * I) + 2 * 2 * seq_len * H              # dense + attention scores/values
    head = mlm_share * 2 * (H * H + H * V)
    return 3 * (L * per_layer + head)

