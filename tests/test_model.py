"""The model: parity with transformers, names, the selected-positions head, presets, bad sizes."""

from __future__ import annotations

import pytest
import torch

from workbench.config import ConfigError, WorkbenchConfig
from workbench.model import BertPretrainingModel, ModelConfig

transformers = pytest.importorskip("transformers")


def twin_models(**sizes):
    torch.manual_seed(0)
    config = ModelConfig.from_preset("tiny", vocab_size=300, **sizes)
    ours = BertPretrainingModel(config).eval()
    theirs = transformers.BertForPreTraining(transformers.BertConfig(
        vocab_size=300, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        hidden_act="gelu", layer_norm_eps=ours.config.layer_norm_eps)).eval()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected
    assert set(missing) == {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}  # tied in both
    theirs.tie_weights()
    return ours, theirs


def example_batch(B=4, T=40, vocab=300, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (B, T), generator=g)
    types = torch.zeros(B, T, dtype=torch.long)
    types[:, T // 2:] = 1
    attention = torch.ones(B, T, dtype=torch.long)
    attention[1, 25:] = 0
    attention[3, 9:] = 0
    labels = torch.full((B, T), -100)
    chosen = torch.rand(B, T, generator=g) < 0.2
    chosen &= attention.bool()
    labels[chosen] = ids[chosen]
    return ids, types, attention, labels, torch.tensor([0, 1, 1, 0])


def test_loss_and_logits_equal_transformers():
    ours, theirs = twin_models()
    ids, types, attention, labels, nsp = example_batch()
    out = ours(ids, types, attention, labels, nsp)
    ref = theirs(input_ids=ids, token_type_ids=types, attention_mask=attention, labels=labels, next_sentence_label=nsp)
    assert abs(float(out.loss.detach()) - float(ref.loss.detach())) < 1e-5
    selected = (labels != -100).reshape(-1)
    assert torch.allclose(out.mlm_logits, ref.prediction_logits.reshape(-1, 300)[selected], atol=1e-5)
    assert torch.allclose(out.nsp_logits, ref.seq_relationship_logits, atol=1e-5)
    assert out.mlm_logits.shape == (int(selected.sum()), 300)


def test_gradients_equal_transformers():
    ours, theirs = twin_models()
    ids, types, attention, labels, nsp = example_batch()
    ours(ids, types, attention, labels, nsp).loss.backward()
    theirs(input_ids=ids, token_type_ids=types, attention_mask=attention, labels=labels,
           next_sentence_label=nsp).loss.backward()
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert torch.allclose(p.grad, theirs_params[name].grad, atol=1e-5, rtol=1e-4), name


def test_without_labels_logits_cover_every_position():
    ours, _ = twin_models()
    ids, types, attention, _, _ = example_batch()
    out = ours(ids, types, attention)
    assert out.loss is None and out.mlm_logits.shape == (4, 40, 300)


def test_a_batch_without_any_selected_position_has_zero_mlm_loss():
    ours, _ = twin_models()
    ids, types, attention, _, nsp = example_batch()
    out = ours.train()(ids, types, attention, torch.full_like(ids, -100), nsp)
    assert float(out.mlm_loss.detach()) == 0.0 and torch.isfinite(out.loss.detach())
    out.loss.backward()  # still differentiable


def test_presets():
    assert ModelConfig.from_preset("mini", vocab_size=10).hidden_size == 256
    sizes = {name: ModelConfig.from_preset(name, vocab_size=100) for name in ("tiny", "mini", "small", "medium", "base")}
    assert [(c.num_hidden_layers, c.hidden_size) for c in sizes.values()] == [
        (2, 128), (4, 256), (4, 512), (8, 512), (12, 768)]
    assert sizes["mini"].num_attention_heads == 4 and sizes["mini"].intermediate_size == 1024
    with pytest.raises(ConfigError, match="model.preset must be one of"):
        ModelConfig.from_preset("huge")
    config = WorkbenchConfig().model
    assert config.preset == "tiny" and config.resolved(vocab_size=50).hidden_size == 128


@pytest.mark.parametrize("values, message", [
    ({"model": {"preset": "custom", "hidden_size": 100, "num_attention_heads": 3, "num_hidden_layers": 1,
                "intermediate_size": 10}}, "model.hidden_size (100) must be divisible by model.num_attention_heads (3)"),
    ({"data": {"max_seq_length": 1024}}, "data.max_seq_length (1024) must be <= model.max_position_embeddings (512)"),
    ({"model": {"preset": "custom"}}, "model.hidden_size must be set (> 0) when model.preset is custom"),
    ({"model": {"hidden_dropout_prob": 1.0}}, "model.hidden_dropout_prob must be in [0, 1)"),
])
def test_bad_model_combinations_name_the_keys(values, message):
    with pytest.raises(ConfigError) as info:
        WorkbenchConfig.from_dict(values)
    assert message in str(info.value)
