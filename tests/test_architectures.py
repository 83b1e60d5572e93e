"""The architecture registry: a third architecture is one module and one ``register`` line, and the
workbench trains, fine-tunes, counts and exports it; an unknown name is an error, never another model.

The toy architecture below is the "one new file": a bag-of-words encoder (embeddings and one gated
feed-forward layer, no attention) built from the shared pieces in ``workbench.model.common``."""

import json
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from workbench import architectures
from workbench.config import ModelConfig, WorkbenchConfig
from workbench.errors import ConfigError
from workbench.model.common import SequenceClassifier, TokenLayout, heads_and_losses


class ToyEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.gate = nn.Linear(config.hidden_size, 2 * config.intermediate_size)
        self.out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, input_ids, attention_mask):
        B, T = input_ids.shape
        layout = TokenLayout.from_mask(attention_mask, B, T, torch.float32)
        x = layout.gather(self.embeddings(input_ids).view(B * T, -1))              # (N, H): real tokens only
        context = layout.gather(self.embeddings(input_ids).mean(1, keepdim=True).expand(B, T, -1).reshape(B * T, -1))
        value, gate = self.gate(x + context).chunk(2, dim=-1)
        return self.norm(x + self.out(value * F.gelu(gate))), layout


class ToyPretrainingModel(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = ToyEncoder(config)
        self.pair = nn.Linear(config.hidden_size, 2)

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters())

    def forward(self, input_ids, token_type_ids, attention_mask, mlm_labels=None, nsp_labels=None, pair_head=True):
        packed, layout = self.encoder(input_ids, attention_mask)
        B, T = input_ids.shape
        nsp_logits = None
        if pair_head:
            nsp_logits = self.pair(packed.index_select(0, layout.packed_positions(torch.arange(B) * T)))
        mlm_head = lambda h: F.linear(h, self.encoder.embeddings.weight)          # noqa: E731 - tied decoder
        return heads_and_losses(packed, layout, mlm_head, nsp_logits, mlm_labels, nsp_labels)


class ToyClassifier(SequenceClassifier):
    encoder_prefix = "encoder."

    def __init__(self, config, num_labels, head_seed=0):
        super().__init__(config, num_labels)
        self.encoder = ToyEncoder(config)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        with torch.no_grad():
            self.classifier.weight.normal_(0, 0.02, generator=torch.Generator().manual_seed(head_seed))

    def head_parameters(self):
        return list(self.classifier.parameters())

    def forward(self, input_ids, token_type_ids, attention_mask):
        B, T = input_ids.shape
        packed, layout = self.encoder(input_ids, attention_mask)
        states = layout.scatter(packed).view(B, T, -1)
        mask = attention_mask.float().unsqueeze(-1)
        return self.classifier((states * mask).sum(1) / mask.sum(1).clamp(min=1))


def build_pretraining(config):
    return ToyPretrainingModel(config)


def build_classifier(config, num_labels, head_seed=0):
    return ToyClassifier(config, num_labels, head_seed)


def hf_config(config, tokenizer):
    return {"model_type": "toy", "architectures": ["ToyForMaskedLM"], "vocab_size": config.vocab_size,
            "hidden_size": config.hidden_size, "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads, "intermediate_size": config.intermediate_size}


def hf_classifier_config(config):
    return {"architectures": ["ToyForSequenceClassification"]}


def export_tensors(state):
    return {k: v for k, v in state.items() if not k.startswith("pair.")}


def hf_weight_name(key):
    return key


def config_from_hf(folder, raw):
    return {k: raw[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                "intermediate_size")}


@pytest.fixture
def toy():
    """The one registry line (undone afterwards)."""
    record = architectures.register(architectures.Architecture(
        "toy", module=__name__, hf_model_type="toy", layer_norm_eps=1e-6, learning_rate=3e-3, ffn_matrices=2,
        learned_positions=False))
    sys.modules.setdefault(__name__, sys.modules[__name__])
    yield record
    del architectures.ARCHITECTURES["toy"]


def test_an_unknown_architecture_is_refused_everywhere_never_another_model():
    from workbench.model import build_model
    from workbench.model.classifier import build_classifier as classifier

    config = ModelConfig.from_preset("tiny", vocab_size=100, architecture="nope")
    for attempt in (config.validate, lambda: config.resolved(), lambda: build_model(config),
                    lambda: classifier(config, 2), lambda: WorkbenchConfig.from_dict({"model": {"architecture": "x"}})):
        with pytest.raises(ConfigError, match="model.architecture must be one of modernbert, bert"):
            attempt()


def test_initial_weights_take_the_architectures_scale_unless_one_is_set():
    """``model.initializer_range`` 0 is the architecture's (ModernBERT 0.04, chosen by measurement; BERT
    transformers' 0.02); a value set is used as is, by every architecture."""
    from workbench.model import build_model
    from workbench.model.classifier import build_classifier

    truncation = 0.8796            # the std of a normal truncated at 2 sigma (ModernBERT), over sigma
    for architecture, default, shrink in (("modernbert", 0.04, truncation), ("bert", 0.02, 1.0)):
        for chosen in (0.0, 0.01):
            config = ModelConfig.from_preset("tiny", vocab_size=2000, architecture=architecture,
                                             initializer_range=chosen)
            torch.manual_seed(0)
            model = build_model(config)
            expected = chosen or default
            assert model.config.initializer_range == expected
            assert float(model.word_embeddings.detach().std()) == pytest.approx(expected * shrink, rel=0.03)
            assert build_classifier(config, 2).config.initializer_range == expected    # the fine-tuning check's


@pytest.mark.slow
def test_a_registered_toy_architecture_trains_fine_tunes_and_exports(toy, learnable_dataset, tmp_path):
    from workbench.config import choices_of
    from workbench.data.labelled import split
    from workbench.interop.huggingface import export_checkpoint, load_for_inference, model_config_from_hf
    from workbench.model import flops_per_token
    from workbench.train.finetune import FinetuneConfig, compare_arms
    from workbench.train.trainer import Trainer, auto_learning_rate
    from conftest import tiny_train_config
    from test_finetune import topic_task

    assert "toy" in choices_of("model.architecture")             # the form's list, the CLI's choices
    config = tiny_train_config(learnable_dataset.path, max_steps=60, checkpoint_every=60, eval_every=0,
                               learning_rate=0.0)
    config.model.architecture = "toy"
    config.model.layer_norm_eps = config.model.initializer_range = 0.0
    resolved = config.model.resolved(vocab_size=120)
    assert resolved.layer_norm_eps == 1e-6                        # the record's default
    assert resolved.initializer_range == 0.02                     # the registry's, where a record names none
    assert auto_learning_rate(resolved) == pytest.approx(3e-3 * (128 / 32) ** 0.5, rel=1e-3)
    assert flops_per_token(resolved, 32) > 0

    events = []
    trainer = Trainer(config, tmp_path / "run")
    trainer.subscribe(events.append)
    result = trainer.run()
    steps = [e for e in events if e.type == "step"]
    assert result.status == "completed" and type(trainer.model).__name__ == "ToyPretrainingModel"
    first, last = sum(s.mlm_loss for s in steps[:5]) / 5, sum(s.mlm_loss for s in steps[-5:]) / 5
    assert last < first - 0.5                                     # it learned

    out = export_checkpoint(tmp_path / "run", tmp_path / "export")
    exported = json.loads((out / "config.json").read_text())
    assert exported["model_type"] == "toy"
    assert model_config_from_hf(out).architecture == "toy"
    model, _, _ = load_for_inference(out)
    assert type(model).__name__ == "ToyPretrainingModel"

    train, heldout = split(topic_task(80), 0.25)
    comparison = compare_arms(str(tmp_path / "run"), train, heldout, FinetuneConfig(steps=4, eval_every=4, seeds=(0,)))
    assert type(comparison.model).__name__ == "ToyClassifier" and len(comparison.arms) == 2
