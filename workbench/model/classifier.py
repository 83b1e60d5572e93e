"""Sequence classification: a pre-training encoder with a classification head.

BERT classifies from its pooler on [CLS], as ``BertForSequenceClassification``;
ModernBERT from the mean of its final token states (``classifier_pooling="mean"``).

Parameter names equal ``transformers``' ``BertForSequenceClassification``
(``bert.*`` with the pooler, ``classifier``) and
``ModernBertForSequenceClassification`` (``model.*``, ``head``, ``classifier``),
so a fine-tuned model exports as a copy. The head is initialised from its own
seeded generator, so two fine-tuning arms with the same seed start from the
same head and differ only in the encoder.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from workbench.config import ModelConfig
from workbench.model.bert import BertModel, dropout
from workbench.model.modernbert import ModernBertModel, ModernBertPredictionHead


class SequenceClassifier(nn.Module):
    def __init__(self, config: ModelConfig, num_labels: int, head_seed: int = 0):
        super().__init__()
        self.config = config
        self.architecture = config.architecture
        self.num_labels = num_labels
        if config.architecture == "bert":
            self.bert = BertModel(config)
        else:
            self.model = ModernBertModel(config)
            self.head = ModernBertPredictionHead(config)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        generator = torch.Generator().manual_seed(head_seed)
        with torch.no_grad():
            if config.architecture == "bert":
                self.classifier.weight.normal_(0.0, config.initializer_range, generator=generator)
            else:
                out_std = config.initializer_range / math.sqrt(2.0 * config.num_hidden_layers)
                self.head.dense.weight.copy_(_clipped_normal(self.head.dense.weight.shape, out_std, generator))
                self.classifier.weight.copy_(_clipped_normal(self.classifier.weight.shape,
                                                           config.hidden_size ** -0.5, generator))
            self.classifier.bias.zero_()

    @property
    def encoder_prefix(self) -> str:
        return "bert." if self.architecture == "bert" else "model."

    def load_encoder(self, pretraining_state: dict[str, torch.Tensor]) -> None:
        """Copy the encoder (and, for BERT, the pooler) from a pre-training model's state dict."""
        prefix = self.encoder_prefix
        encoder = {k: v for k, v in pretraining_state.items() if k.startswith(prefix)}
        missing, _ = self.load_state_dict(encoder, strict=False)
        left = [k for k in missing if k.startswith(prefix)]
        if left:
            raise ValueError(f"encoder weights missing: {left[:3]}")

    def head_parameters(self) -> list[nn.Parameter]:
        """What the frozen-encoder arm trains: the classifier (and ModernBERT's head transform)."""
        params = list(self.classifier.parameters())
        if self.architecture != "bert":
            params += list(self.head.parameters())
        return params

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, num_labels) logits from the first ([CLS]) position."""
        B, T = input_ids.shape
        if self.architecture == "bert":
            packed, layout = self.bert(input_ids, token_type_ids, attention_mask)
            first = packed.index_select(0, layout.packed_positions(torch.arange(B, device=packed.device) * T))
            pooled = dropout(self.bert.pooler(first), self.config.hidden_dropout_prob, self.training)
        else:
            # Mean over the real tokens (transformers' classifier_pooling="mean"): MLM pre-training trains
            # every token's state, while [CLS] alone is trained only by the pair head. Fine-tuned from a
            # 5-minute pre-training, mean pooling is what lets the pre-trained encoder help.
            packed, layout = self.model(input_ids, attention_mask)
            states = layout.scatter(packed).view(B, T, -1)                              # (B, T, H)
            mask = attention_mask.to(states.dtype).unsqueeze(-1)                         # (B, T, 1)
            pooled = self.head((states * mask).sum(1) / mask.sum(1).clamp(min=1.0))
        return self.classifier(pooled)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.float(), labels)


def _clipped_normal(shape, std: float, generator: torch.Generator) -> torch.Tensor:
    """A normal clipped at two standard deviations (drawn from the given generator)."""
    values = torch.randn(shape, generator=generator) * std
    return values.clamp_(-2 * std, 2 * std)
