"""The ModernBERT architecture: parity with transformers, export and import, learning, the fixed evaluation set."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from workbench.config import ModelConfig
from workbench.interop.huggingface import export_checkpoint, load_for_inference
from workbench.model import ModernBertPretrainingModel, build_model
from workbench.model.common import TokenLayout, bucket_size
from workbench.train.evaluation import build_eval_set, unigram_distribution
from workbench.train.trainer import Trainer

from conftest import tiny_train_config
from test_model import example_batch

transformers = pytest.importorskip("transformers")


def modern_config(**sizes) -> ModelConfig:
    values = dict(architecture="modernbert", preset="custom", vocab_size=300, hidden_size=64, num_hidden_layers=3,
                  num_attention_heads=4, intermediate_size=96, max_position_embeddings=128)
    values.update(sizes)
    return ModelConfig(**values).resolved()


def twins(config: ModelConfig):
    torch.manual_seed(0)
    ours = ModernBertPretrainingModel(config).eval()
    hf = transformers.ModernBertConfig(
        vocab_size=config.vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings, norm_eps=config.layer_norm_eps,
        global_attn_every_n_layers=1, global_rope_theta=config.rope_theta, pad_token_id=0, cls_token_id=2,
        sep_token_id=3, bos_token_id=2, eos_token_id=3)
    hf._attn_implementation = "eager"
    theirs = transformers.ModernBertForMaskedLM(hf).eval()
    encoder = {k: v for k, v in ours.state_dict().items() if not k.startswith("pair_")}
    missing, unexpected = theirs.load_state_dict(encoder, strict=False)
    assert not unexpected and set(missing) == {"decoder.weight"}  # tied to the token embeddings in both
    theirs.tie_weights()
    return ours, theirs


def test_mlm_loss_logits_and_gradients_equal_transformers():
    ours, theirs = twins(modern_config())
    ids, types, attention, labels, nsp = example_batch()
    ids[attention == 0] = 0
    out = ours(ids, types, attention, labels, nsp)
    ref = theirs(input_ids=ids, attention_mask=attention, labels=labels)
    assert abs(float(out.mlm_loss.detach()) - float(ref.loss.detach())) < 1e-5
    selected = (labels != -100).reshape(-1)
    assert torch.allclose(out.mlm_logits, ref.logits.reshape(-1, 300)[selected], atol=1e-4)
    assert out.mlm_predictions is not None                     # the loss's, what the training metrics count
    assert torch.equal(out.predicted_tokens(), ref.logits.reshape(-1, 300)[selected].argmax(-1))
    out.mlm_loss.backward()
    ref.loss.backward()
    for name, parameter in theirs.named_parameters():
        if name == "decoder.weight":  # tied: its gradient lands on the embeddings
            continue
        ours_grad = dict(ours.named_parameters())[name].grad
        assert torch.allclose(ours_grad, parameter.grad, atol=1e-6, rtol=1e-4), name


def test_bucketed_unpadding_changes_no_real_token():
    config = modern_config()
    torch.manual_seed(0)
    model = ModernBertPretrainingModel(config).eval()
    ids, types, attention, labels, nsp = example_batch()
    bucketed = model(ids, types, attention, labels, nsp)
    exact = TokenLayout.from_mask
    try:
        TokenLayout.from_mask = classmethod(lambda cls, m, b, t, d, bucket=True: exact.__func__(cls, m, b, t, d, False))
        plain = model(ids, types, attention, labels, nsp)
    finally:
        TokenLayout.from_mask = exact
    assert torch.allclose(bucketed.mlm_logits, plain.mlm_logits, atol=1e-5)
    assert torch.allclose(bucketed.nsp_logits, plain.nsp_logits, atol=1e-5)
    assert [bucket_size(n, 10**6) for n in (100, 1000, 4000)] == [104, 1024, 4096]
    assert len({bucket_size(n, 10**6) for n in range(2049, 4097)}) == 8    # shapes repeat


@pytest.fixture(scope="module")
def modern_run(learnable_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("modern") / "run"
    config = tiny_train_config(learnable_dataset.path, max_steps=600, batch_size=32, learning_rate=4e-3,
                               log_every=50, eval_every=300, warmup_steps=30)
    config.model.architecture = "modernbert"
    config.model.hidden_dropout_prob = config.model.attention_probs_dropout_prob = 0.0
    config.model.hidden_size, config.model.intermediate_size = 64, 128
    events = []
    trainer = Trainer(config, run_dir)
    trainer.subscribe(events.append)
    result = trainer.run()
    return run_dir, result, events


@pytest.mark.slow
def test_modernbert_learns_below_the_context_free_floor(modern_run):
    _, result, events = modern_run
    evals = [e for e in events if e.type == "eval"]
    steps = [e for e in events if e.type == "step"]
    assert result.status == "completed"
    assert steps[-1].mlm_loss < 0.6 * steps[0].mlm_loss
    last = evals[-1]
    assert last.floor_mlm_loss > 0 and last.mlm_loss < last.floor_mlm_loss - 0.5       # it uses context
    assert last.mlm_accuracy > 2 * last.floor_mlm_accuracy


def test_accuracy_by_kind_agrees_with_the_eval_metrics_and_rises_with_training(modern_run, learnable_dataset):
    from workbench.checkpoint import checkpoint_config, list_checkpoints
    from workbench.train.evaluation import accuracy_by_kind

    run_dir, _, events = modern_run
    last = list_checkpoints(run_dir)[-1]
    config = checkpoint_config(last)
    eval_set = build_eval_set(learnable_dataset, config, sequences=32 * config.train.eval_batches)
    model = load_for_inference(last)[0]
    trained = accuracy_by_kind(model, eval_set.batches)
    fresh = accuracy_by_kind(build_model(config.model.resolved(vocab_size=learnable_dataset.vocabulary.size)),
                             eval_set.batches)
    right = sum(r for r, _ in trained.values())
    total = sum(t for _, t in trained.values())
    # Standard 80/10/10 masking: about 10% random and 10% kept; the sum is the held-out MLM accuracy.
    assert 0.05 < trained["random"][1] / total < 0.15 and 0.05 < trained["kept"][1] / total < 0.15
    assert right / total == pytest.approx([e for e in events if e.type == "eval"][-1].mlm_accuracy, abs=1e-6)
    assert trained["kept"][0] / trained["kept"][1] >= trained["[MASK]"][0] / trained["[MASK]"][1]
    assert trained["[MASK]"][0] > 3 * fresh["[MASK]"][0]
    one = accuracy_by_kind(model, eval_set.batches[:1], rows=[0])
    assert sum(t for _, t in one.values()) == int((eval_set.batches[0].kinds[0] != 0).sum())


def test_export_loads_unchanged_as_modernbert_for_masked_lm(modern_run, tmp_path):
    run_dir, _, _ = modern_run
    out = export_checkpoint(run_dir, tmp_path / "hf")
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "modernbert" and config["architectures"] == ["ModernBertForMaskedLM"]
    theirs, info = transformers.ModernBertForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ours, tokenizer, _ = load_for_inference(run_dir)
    encoding = tokenizer.encode("The old [MASK] holds a secret.")
    ids = torch.tensor([encoding.ids])
    with torch.no_grad():
        ref = theirs.eval()(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        mine = ours(ids, None, torch.ones_like(ids)).mlm_logits
    assert torch.allclose(mine, ref, atol=1e-4)
    fill = transformers.pipeline("fill-mask", model=str(out), tokenizer=str(out))
    assert len(fill("The old [MASK] holds a secret.")) == 5
    # Continued pre-training from the exported directory.
    reloaded, _, _ = load_for_inference(out)
    assert reloaded.config.architecture == "modernbert"
    assert torch.equal(reloaded.model.layers[1].mlp.Wi.weight, ours.model.layers[1].mlp.Wi.weight)


def test_the_evaluation_set_is_fixed_and_independent_of_the_run_masking(learnable_dataset):
    config = tiny_train_config(learnable_dataset.path)
    first = build_eval_set(learnable_dataset, config)
    config.masking.probability, config.masking.strategy = 0.4, "whole_word"
    config.train.seed = 99
    second = build_eval_set(learnable_dataset, config)
    assert first.sequences == second.sequences >= 256
    for a, b in zip(first.batches, second.batches):
        assert np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.mlm_labels, b.mlm_labels)
    selected = np.mean([(b.mlm_labels != -100).sum() / b.attention_mask.sum() for b in first.batches])
    assert 0.12 < selected < 0.2                                                          # standard 15%
    probabilities = unigram_distribution(learnable_dataset, config)
    assert probabilities.sum() == pytest.approx(1.0) and probabilities[learnable_dataset.vocabulary.mask_id] == 0
    assert first.floor_accuracy > 0 and first.floor_loss > 0


@pytest.mark.slow
def test_a_time_budget_is_not_cut_short_by_a_step_limit(learnable_dataset, tmp_path):
    config = tiny_train_config(learnable_dataset.path, max_steps=0, max_minutes=0.05, eval_every_seconds=1.0,
                               log_every=10)
    events = []
    trainer = Trainer(config, tmp_path / "run")
    trainer.subscribe(events.append)
    result = trainer.run()
    assert result.status == "completed" and "time budget" in result.reason
    assert result.step > 0 and events[-1].elapsed >= 3.0
    evals = [e for e in events if e.type == "eval"]
    assert len(evals) >= 3                                                  # about one per second of training
    assert all(b.elapsed > a.elapsed for a, b in zip(evals, evals[1:]))
    assert isinstance(build_model(config.model.resolved(vocab_size=120)), torch.nn.Module)
