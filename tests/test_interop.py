"""Hugging Face interop: export loads in transformers unchanged; import continues training."""

from __future__ import annotations

import pytest
import torch

from workbench.interop.huggingface import export_checkpoint, load_for_inference
from workbench.model.probe import fill_mask, nsp_probability
from workbench.train.trainer import Trainer

from conftest import tiny_train_config

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def trained_run(learnable_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("hf") / "run"
    config = tiny_train_config(learnable_dataset.path, max_steps=60, learning_rate=5e-3)
    Trainer(config, run_dir).run()
    return run_dir


def test_export_loads_in_transformers_with_equal_outputs(trained_run, tmp_path):
    out = export_checkpoint(trained_run, tmp_path / "export")
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [".workbench-export.json", "config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
         "special_tokens_map.json"])
    model, info = transformers.BertForPreTraining.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    masked_lm, info = transformers.BertForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"]  # (the pooler and NSP head are unexpected there by design)
    tokenizer = transformers.AutoTokenizer.from_pretrained(out)
    text = "The old river holds [MASK] secret."
    encoded = tokenizer(text, return_tensors="pt")
    ours, our_tokenizer, _ = load_for_inference(trained_run)
    assert encoded["input_ids"][0].tolist() == our_tokenizer.encode(text).ids
    with torch.no_grad():
        theirs = model.eval()(**encoded)
        mine = ours(encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"])
    assert torch.allclose(theirs.prediction_logits, mine.mlm_logits, atol=1e-4)
    assert torch.allclose(theirs.seq_relationship_logits, mine.nsp_logits, atol=1e-4)
    pipe = transformers.pipeline("fill-mask", model=str(out), tokenizer=str(out))
    top = pipe(text)
    assert len(top) == 5
    ours_top = fill_mask(ours, our_tokenizer, text, 5)[0].candidates
    assert top[0]["token_str"] == ours_top[0][0]
    assert top[0]["score"] == pytest.approx(ours_top[0][1], abs=1e-4)


def test_probe_functions(trained_run):
    model, tokenizer, config = load_for_inference(trained_run)
    assert config is not None and config.train.max_steps == 60
    predictions = fill_mask(model, tokenizer, "The [MASK] river holds a [MASK].", top_k=3)
    assert len(predictions) == 2 and all(len(p.candidates) == 3 for p in predictions)
    assert all(0 < prob <= 1 for p in predictions for _, prob in p.candidates)
    assert fill_mask(model, tokenizer, "no mask here") == []
    assert 0.0 <= nsp_probability(model, tokenizer, "The old river holds a secret.", "The small river keeps two keys.") <= 1.0


def test_continued_pretraining_from_an_exported_model(trained_run, learnable_dataset, tmp_path):
    export = export_checkpoint(trained_run, tmp_path / "export")
    losses = {}
    for name, init in (("scratch", ""), ("continued", str(export))):
        config = tiny_train_config(learnable_dataset.path, max_steps=3, init_from=init, seed=5)
        events = []
        trainer = Trainer(config, tmp_path / name)
        trainer.subscribe(events.append)
        trainer.run()
        losses[name] = [e for e in events if e.type == "step"][0].mlm_loss
        if init:
            assert any(e.type == "notice" and "initialised from" in e.message for e in events)
    assert losses["continued"] < losses["scratch"] - 0.3  # it starts from what was learned
