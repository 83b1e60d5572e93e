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

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config import ModelConfig
from workbench.model.common import (PretrainingOutput, SequenceClassifier, TokenLayout, attention,
                                     attention_probabilities, dropout, explicit_attention, heads_and_losses)


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
        return dropout(self.LayerNorm(x), self.dropout.p, self.training)


class BertSelfAttention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob
        self.capture: list[torch.Tensor] | None = None   # set by ``capturing_attention``: probabilities go here

    def forward(self, x: torch.Tensor, layout: TokenLayout) -> torch.Tensor:
        """(N, H) real tokens -> (N, H) attention output."""
        B, T, H = layout.batch, layout.length, x.shape[-1]
        # One (H -> 3H) matmul instead of three; the concatenation is cheap next to it.
        weight = torch.cat([self.query.weight, self.key.weight, self.value.weight])
        bias = torch.cat([self.query.bias, self.key.bias, self.value.bias])
        qkv = layout.scatter(F.linear(x, weight, bias)).view(B, T, 3, self.num_heads, H // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                          # each (B, nh, T, hd)
        p = self.dropout_p if self.training else 0.0
        if self.capture is not None:
            y = explicit_attention(q, k, v, layout, self.capture)
        elif p and q.device.type == "cpu":
            # Explicit attention so that the probabilities get the cheap CPU dropout mask.
            y = dropout(attention_probabilities(q, k, layout).to(v.dtype), p, True) @ v    # (B, nh, T, hd)
        else:
            y = attention(q, k, v, layout, p)
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
        if not (config.hidden_size and config.vocab_size and config.layer_norm_eps and config.initializer_range):
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

    @property
    def word_embeddings(self) -> torch.Tensor:
        return self.bert.embeddings.word_embeddings.weight

    def final_states(self, input_ids, token_type_ids, attention_mask) -> torch.Tensor:
        """The encoder's output at every position, (B, T, H) (zeros at padding)."""
        packed, layout = self.bert(input_ids, token_type_ids, attention_mask)
        return layout.scatter(packed).view(*input_ids.shape, -1)

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

        predictions = self.cls.predictions
        return heads_and_losses(packed, layout, lambda h: F.linear(predictions.transform(h), word_embeddings),
                                nsp_logits, mlm_labels, nsp_labels, predictions.bias)


class BertClassifier(SequenceClassifier):
    """``BertForSequenceClassification``: the pooler on [CLS], dropout, a linear classifier."""

    encoder_prefix = "bert."

    def __init__(self, config: ModelConfig, num_labels: int, head_seed: int = 0):
        super().__init__(config, num_labels)
        self.bert = BertModel(config)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        generator = torch.Generator().manual_seed(head_seed)   # two arms with one seed start from one head
        with torch.no_grad():
            self.classifier.weight.normal_(0.0, config.initializer_range, generator=generator)
            self.classifier.bias.zero_()

    def head_parameters(self) -> list[nn.Parameter]:
        return list(self.classifier.parameters())

    def forward(self, input_ids, token_type_ids, attention_mask):
        B, T = input_ids.shape
        packed, layout = self.bert(input_ids, token_type_ids, attention_mask)
        first = packed.index_select(0, layout.packed_positions(torch.arange(B, device=packed.device) * T))
        return self.classifier(dropout(self.bert.pooler(first), self.config.hidden_dropout_prob, self.training))


# --- the architecture's record (workbench.architectures): building, transformers' format ----------------------

HF_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
           "hidden_dropout_prob", "attention_probs_dropout_prob", "max_position_embeddings", "type_vocab_size",
           "initializer_range", "layer_norm_eps")
TIED = ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")


def build_pretraining(config: ModelConfig) -> BertPretrainingModel:
    return BertPretrainingModel(config)


def build_classifier(config: ModelConfig, num_labels: int, head_seed: int = 0) -> BertClassifier:
    return BertClassifier(config, num_labels, head_seed)


def hf_config(config: ModelConfig, tokenizer) -> dict:
    """``config.json`` of ``BertForPreTraining``."""
    return {**{key: getattr(config, key) for key in HF_KEYS},
            "architectures": ["BertForPreTraining"], "model_type": "bert", "hidden_act": "gelu",
            "pad_token_id": tokenizer.token_to_id("[PAD]"), "position_embedding_type": "absolute",
            "tie_word_embeddings": True, "torch_dtype": "float32"}


def hf_classifier_config(config: ModelConfig) -> dict:
    return {"architectures": ["BertForSequenceClassification"], "classifier_dropout": None}


def export_tensors(state: dict) -> dict:
    """Our names are ``BertForPreTraining``'s: a copy."""
    return dict(state)


def hf_weight_name(key: str) -> str | None:
    """A ``transformers`` weight's name in our model (a bare ``BertModel``'s gain ``bert.``); None to skip."""
    if key in TIED or key.endswith("position_ids"):
        return None
    return key if key.startswith(("bert.", "cls.", "classifier.")) else "bert." + key


def config_from_hf(folder, raw: dict) -> dict:
    """``[model]`` values of a ``BertConfig`` (gelu and absolute positions only)."""
    from workbench.errors import ConfigError

    missing = [k for k in HF_KEYS[:5] if k not in raw]
    if missing:
        raise ConfigError(f"lacks {', '.join(missing)}")
    if raw.get("hidden_act", "gelu") != "gelu" or raw.get("position_embedding_type", "absolute") != "absolute":
        raise ConfigError("only BERT with gelu and absolute positions is supported")
    return {k: raw[k] for k in HF_KEYS if k in raw}
