"""The model architectures the workbench trains: one record each, in one registry.

A record holds what the rest of the workbench needs to know without torch (the config's choices and
defaults, the learning rate, the cost estimates, the ``transformers`` model type); the torch code lives in
the module it names, imported only when a model is built or exported. That module provides:

* ``build_pretraining(config) -> nn.Module`` - ``forward(input_ids, token_type_ids, attention_mask,
  mlm_labels=None, nsp_labels=None) -> PretrainingOutput``;
* ``build_classifier(config, num_labels, head_seed) -> SequenceClassifier``;
* ``hf_config(config, tokenizer) -> dict`` and ``hf_classifier_config(config) -> dict`` - ``config.json``
  of the pre-training and the fine-tuned export;
* ``export_tensors(state) -> dict`` - the pre-training state dict under ``transformers``' names;
* ``config_from_hf(folder, raw) -> dict`` - ``[model]`` values from a ``config.json`` of its model type.

For inspection snapshots (``workbench.snapshots``; without them a run trains and says inspection is off) the
pre-training model also has ``word_embeddings`` (the (V, H) input embedding matrix) and
``final_states(input_ids, token_type_ids, attention_mask) -> (B, T, H)``; attention layers that carry a
``capture`` attribute hand their probabilities to ``model.common.capturing_attention``.

Adding an architecture is one new module and one ``register`` line below; an unknown name is an error
everywhere (``get``), never a fall-through to another architecture.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from workbench.errors import ConfigError


@dataclass(frozen=True)
class Architecture:
    name: str
    module: str                  # the implementation (see above)
    hf_model_type: str           # transformers' ``model_type``
    layer_norm_eps: float        # the default epsilon of every LayerNorm
    learning_rate: float         # peak learning rate at width 128 (scaled by 1/sqrt(width/128))
    initializer_range: float = 0.02  # the default standard deviation of the initial weights
    ffn_matrices: int = 2        # H x I matrices in a feed-forward layer (a gated one has three)
    learned_positions: bool = True   # a position table (max_position_embeddings x H parameters)
    biases: bool = True

    def implementation(self) -> ModuleType:
        return importlib.import_module(self.module)

    def parameters(self, hidden: int, layers: int, intermediate: int, vocab: int, positions: int) -> int:
        """About how many parameters a model of these sizes has (matrices and embeddings)."""
        per_layer = 4 * hidden * hidden + self.ffn_matrices * hidden * intermediate
        table = positions * hidden if self.learned_positions else 0
        return layers * per_layer + vocab * hidden + table


ARCHITECTURES: dict[str, Architecture] = {}


def register(architecture: Architecture) -> Architecture:
    ARCHITECTURES[architecture.name] = architecture
    return architecture


def names() -> tuple[str, ...]:
    """The registered architectures, the default first."""
    return tuple(ARCHITECTURES)


def get(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ConfigError(f"model.architecture must be one of {', '.join(ARCHITECTURES)}; got {name!r}") from None


def for_hf_model_type(model_type: str) -> Architecture | None:
    return next((a for a in ARCHITECTURES.values() if a.hf_model_type == model_type), None)


register(Architecture("modernbert", "workbench.model.modernbert", hf_model_type="modernbert", layer_norm_eps=1e-5,
                      learning_rate=2e-3, initializer_range=0.04, ffn_matrices=3, learned_positions=False, biases=False))
register(Architecture("bert", "workbench.model.bert", hf_model_type="bert", layer_norm_eps=1e-12,
                      learning_rate=1e-3))
