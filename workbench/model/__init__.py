"""The pre-training models. Public API (kept stable, documented in the README):

* ``ModelConfig`` - the ``[model]`` config section; ``ModelConfig.from_preset(name, vocab_size=...)``
  returns a config with the preset's sizes;
* ``build_model(config)`` - the model of ``config.architecture``: ``BertPretrainingModel`` (the
  faithful BERT) or ``ModernBertPretrainingModel``; both ``forward(input_ids, token_type_ids,
  attention_mask, mlm_labels=None, nsp_labels=None)`` -> ``PretrainingOutput``.
"""

from __future__ import annotations

from workbench.config import ModelConfig
from workbench.model.bert import BertPretrainingModel, PretrainingOutput, flops_per_token
from workbench.model.modernbert import ModernBertPretrainingModel


def build_model(config: ModelConfig):
    """A freshly initialised pre-training model of ``config.architecture``."""
    if config.architecture == "modernbert":
        return ModernBertPretrainingModel(config)
    return BertPretrainingModel(config)


__all__ = ["ModelConfig", "BertPretrainingModel", "ModernBertPretrainingModel", "PretrainingOutput", "build_model",
           "flops_per_token"]
