"""The pre-training models. Public API (kept stable, documented in the README):

* ``ModelConfig`` - the ``[model]`` config section; ``ModelConfig.from_preset(name, vocab_size=...)``
  returns a config with the preset's sizes;
* ``build_model(config)`` - the model of ``config.architecture`` (``workbench.architectures``):
  ``ModernBertPretrainingModel`` or ``BertPretrainingModel`` (the faithful BERT); every one has
  ``forward(input_ids, token_type_ids, attention_mask, mlm_labels=None, nsp_labels=None)`` ->
  ``PretrainingOutput``.
"""

from __future__ import annotations

from workbench import architectures
from workbench.config import ModelConfig
from workbench.model.bert import BertPretrainingModel
from workbench.model.common import PretrainingOutput, flops_per_token
from workbench.model.modernbert import ModernBertPretrainingModel


def build_model(config: ModelConfig):
    """A freshly initialised pre-training model of ``config.architecture`` (unknown: a ``ConfigError``)."""
    return architectures.get(config.architecture).implementation().build_pretraining(config)


__all__ = ["ModelConfig", "BertPretrainingModel", "ModernBertPretrainingModel", "PretrainingOutput", "build_model",
           "flops_per_token"]
