"""Fine-tuning: labelled files, the two arms, the gain of pre-training, export to transformers."""

from __future__ import annotations

import json
import random

import pytest
import torch

from workbench.data.labelled import LabelledData, builtin_task, read_labelled, split, word_order_task
from workbench.errors import WorkbenchError
from workbench.train.finetune import FinetuneConfig, compare_arms
from workbench.train.trainer import Trainer

from conftest import ADJECTIVES, LEARN_NOUNS, LEARN_VERBS, TOPICS, tiny_train_config
from test_data_safety import cli

transformers = pytest.importorskip("transformers")


def topic_task(n: int = 360, seed: int = 0) -> LabelledData:
    """Sentences of the learnable corpus's grammar, labelled by their topic (4 labels)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(4)
        texts.append(f"The {rng.choice(ADJECTIVES)} {TOPICS[label]} {rng.choice(LEARN_VERBS)} {rng.choice(LEARN_NOUNS)}.")
        labels.append(label)
    return LabelledData(texts, None, labels, TOPICS[:4], "topics")


@pytest.fixture(scope="module")
def pretrained_run(learnable_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ft") / "run"
    config = tiny_train_config(learnable_dataset.path, max_steps=300, batch_size=32, learning_rate=2e-3,
                               warmup_steps=20)
    config.model.architecture = "modernbert"
    config.model.hidden_dropout_prob = config.model.attention_probs_dropout_prob = 0.0
    Trainer(config, run_dir).run()
    return run_dir


@pytest.mark.slow
def test_three_arms_learn_and_the_gain_is_their_difference(pretrained_run):
    train, heldout = split(topic_task(), 0.25)
    comparison = compare_arms(pretrained_run, train, heldout,
                              FinetuneConfig(steps=40, eval_every=20, batch_size=16, seeds=(0, 1, 2),
                                             learning_rate=3e-4, frozen_arm=True))
    summary = comparison.summary()
    assert {r.arm for r in comparison.arms} == {"pretrained", "scratch", "frozen"} and len(comparison.arms) == 9
    assert summary["pretrained"]["accuracy"] > 0.8 and summary["scratch"]["accuracy"] > 0.5    # chance: 0.25
    # Only a head on the frozen pre-trained encoder: its features alone carry the topic.
    assert summary["frozen"]["accuracy"] > 0.5, summary
    by = {(r.arm, r.seed): r.accuracy for r in comparison.arms}
    expected = [100 * (by["pretrained", s] - by["scratch", s]) for s in (0, 1, 2)]
    assert summary["gain_points"]["per_seed"] == pytest.approx(expected)
    assert all(len(r.curve) >= 2 and r.steps == 40 for r in comparison.arms)


@pytest.mark.slow
def test_the_arms_see_the_same_data_and_head(pretrained_run):
    """With a learning rate of ~0 the two arms differ only in the encoder: same head, same batches."""
    from workbench.model.classifier import build_classifier

    train, heldout = split(topic_task(120), 0.25)
    a = compare_arms(pretrained_run, train, heldout, FinetuneConfig(steps=3, eval_every=3, seeds=(5,),
                                                                    learning_rate=1e-12))
    b = compare_arms(pretrained_run, train, heldout, FinetuneConfig(steps=3, eval_every=3, seeds=(5,),
                                                                    learning_rate=1e-12))
    def scores(comparison):  # everything but the wall time
        return [[{k: v for k, v in p.items() if k != "seconds"} for p in r.curve] for r in comparison.arms]

    assert scores(a) == scores(b)                                                   # deterministic per seed
    m1 = build_classifier(a.model.config, 4, head_seed=5)
    m2 = build_classifier(a.model.config, 4, head_seed=5)
    assert torch.equal(m1.classifier.weight, m2.classifier.weight)


@pytest.mark.slow
def test_export_loads_as_sequence_classification_and_predicts_the_same(pretrained_run, tmp_path, capsys):
    data = topic_task(200)
    path = tmp_path / "topics.csv"
    path.write_text("sentence,category\n" + "\n".join(f"{t},{data.label_names[y]}" for t, y in
                                                        zip(data.texts, data.labels)) + "\n", encoding="utf-8")
    code, out, err = cli(capsys, "finetune", pretrained_run, "--data", path, "--steps", "30", "--seeds", "0",
                         "--batch-size", "16", "--export", tmp_path / "clf", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["label_names"] == sorted(TOPICS[:4]) and "gain_points" in result["summary"]
    config = json.loads((tmp_path / "clf" / "config.json").read_text())
    assert config["architectures"] == ["ModernBertForSequenceClassification"]
    model, info = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf",
                                                                                 output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    # Directly: the exported model gives our fine-tuned model's logits, so it predicts the same labels.
    from workbench.interop.huggingface import export_classifier
    from workbench.train.finetune import _batch, encode

    train, heldout = split(data, 0.25)
    comparison = compare_arms(pretrained_run, train, heldout, FinetuneConfig(steps=30, seeds=(0,), batch_size=16))
    out = export_classifier(comparison.model, comparison.tokenizer, train.label_names, tmp_path / "clf2",
                            str(pretrained_run), comparison.max_length)
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
    ids, types = encode(comparison.tokenizer, heldout, comparison.max_length)
    batch = _batch(ids, types, list(range(8)), comparison.tokenizer.token_to_id("[PAD]"))
    with torch.no_grad():
        ours = comparison.model(**batch)
        ref = theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(ours, ref, atol=1e-4)
    assert ours.argmax(-1).tolist() == ref.argmax(-1).tolist()


def test_labelled_files_are_detected_and_bad_rows_named(tmp_path):
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text('{"sentence1": "a b", "sentence2": "c d", "label": "yes"}\n'
                     '{"sentence1": "e f", "sentence2": "g h", "label": "no"}\n', encoding="utf-8")
    data = read_labelled(jsonl)
    assert data.pairs == ["c d", "g h"] and data.label_names == ["no", "yes"] and data.labels == [1, 0]
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nfine,a\n,b\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="bad.csv:3: empty text"):
        read_labelled(bad)
    one = tmp_path / "one.tsv"
    one.write_text("text\tlabel\nx\ta\ny\ta\n", encoding="utf-8")
    with pytest.raises(WorkbenchError, match="only one label"):
        read_labelled(one)
    with pytest.raises(WorkbenchError, match="no column 'nope'"):
        read_labelled(bad, text_column="nope")


@pytest.mark.slow
def test_the_builtin_task_is_left_out_of_the_sample():
    from workbench.data.sample import _stdlib_sources

    task = builtin_task()
    assert len(task) > 500 and len(task.label_names) >= 6
    sources = _stdlib_sources()
    assert not any(f"/{package}/" in path for path in sources for package in task.label_names)


@pytest.mark.slow
def test_the_word_order_task_cannot_be_solved_by_a_bag_of_words():
    task = word_order_task()
    assert read_labelled("builtin").texts == task.texts          # `builtin` is the word-order task
    assert len(task) > 1000 and 0.4 < sum(task.labels) / len(task) < 0.6
    assert len(set(task.texts)) == len(task.texts)
    swapped = [t for t, label in zip(task.texts, task.labels) if label == 1]
    as_written = {t for t, label in zip(task.texts, task.labels) if label == 0}
    from workbench.data.labelled import _docstrings

    bags = {}
    for _, sentences in _docstrings():
        for sentence in sentences:
            bags.setdefault(tuple(sorted(sentence.split())), []).append(sentence)
    for text in swapped[:200]:
        sources = bags[tuple(sorted(text.split()))]          # the same words as a real sentence...
        assert text not in sources                           # ...in an order that sentence does not have
        assert not any(s in as_written for s in sources)     # and that sentence is not also in the task
    assert word_order_task(seed=1).labels != task.labels


def test_a_fine_tuned_bert_exports_as_bert_for_sequence_classification(learnable_dataset, tmp_path):
    from workbench.interop.huggingface import export_classifier
    from workbench.train.finetune import _batch, encode

    run_dir = tmp_path / "bert-run"
    Trainer(tiny_train_config(learnable_dataset.path, max_steps=20), run_dir).run()
    train, heldout = split(topic_task(120), 0.25)
    comparison = compare_arms(run_dir, train, heldout, FinetuneConfig(steps=10, seeds=(0,), batch_size=16))
    out = export_classifier(comparison.model, comparison.tokenizer, train.label_names, tmp_path / "clf",
                            str(run_dir), comparison.max_length)
    theirs, info = transformers.BertForSequenceClassification.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    ids, types = encode(comparison.tokenizer, heldout, comparison.max_length)
    batch = _batch(ids, types, list(range(6)), comparison.tokenizer.token_to_id("[PAD]"))
    with torch.no_grad():
        assert torch.allclose(comparison.model(**batch), theirs.eval()(**batch).logits, atol=1e-4)


def test_a_comparison_is_recorded_and_linked_to_its_pretraining_run(learnable_dataset, tmp_path, capsys):
    from workbench.services.run_launch import launch_run
    from workbench.store.repository import RunRepository

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    repository = RunRepository(db)
    config = tiny_train_config(learnable_dataset.path, max_steps=20)
    config.train.output_dir = str(tmp_path / "runs")
    launched = launch_run(config, repository)
    launched.run()
    data = topic_task(120)
    path = tmp_path / "topics.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": data.label_names[y]})
                              for t, y in zip(data.texts, data.labels)), encoding="utf-8")
    code, out, err = cli(capsys, "finetune", launched.run_dir, "--data", path, "--steps", "10", "--seeds", "0,1",
                         "--batch-size", "16", "--db", db, "--json")
    assert code == 0, err
    child_id = json.loads(out)["run_id"]
    child = repository.get(child_id)
    assert (child.kind, child.parent_run_id, child.status) == ("finetune", launched.run_id, "completed")
    assert {"pretrained_accuracy", "scratch_accuracy", "gain_accuracy_points"} <= set(child.final_metrics)
    assert repository.series(child_id, "pretrained_accuracy", is_eval=True).steps.tolist() == [10]
    code, out, _ = cli(capsys, "show", launched.run_id, "--db", db)
    assert code == 0 and f"fine-tuning (run {child_id}" in out and "gain" in out
    repository.delete(launched.run_id)                    # the link is cleared, the comparison stays
    assert repository.get(child_id).parent_run_id is None
