"""Sequence classification: a pre-training encoder with a classification head, for the fine-tuning check.

Each architecture has its classifier (``BertClassifier``: the pooler on [CLS], as
``BertForSequenceClassification``; ``ModernBertClassifier``: the mean of the final token states, as
``ModernBertForSequenceClassification`` with ``classifier_pooling="mean"``), with ``transformers``'
parameter names, so a fine-tuned model exports as a copy. The head is initialised from its own seeded
generator, so two fine-tuning arms with the same seed start from the same head and differ only in the
encoder.
"""

from __future__ import annotations

from workbench import architectures
from workbench.config import ModelConfig
from workbench.model.common import SequenceClassifier


def build_classifier(config: ModelConfig, num_labels: int, head_seed: int = 0) -> SequenceClassifier:
    """The classifier of ``config.architecture`` (an unknown architecture is a ``ConfigError``), with the
    preset's sizes and the architecture's defaults filled in (``ModelConfig.resolved``)."""
    implementation = architectures.get(config.architecture).implementation()
    return implementation.build_classifier(config.resolved(), num_labels, head_seed)


__all__ = ["SequenceClassifier", "build_classifier"]
