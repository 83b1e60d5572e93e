"""Config: TOML round-trip, validation messages, unknown keys, overrides."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.config import (
    ConfigError, MaskingConfig, WorkbenchConfig, describe_settings, dumps_toml, load_config, save_config,
)


def test_defaults_follow_the_bert_recipe_with_modernberts_masking_rate():
    config = WorkbenchConfig()
    assert config.masking.probability == 0.3 and config.masking.max_predictions_per_seq == 0   # no cap
    assert (config.masking.mask_fraction, config.masking.random_fraction) == (0.8, 0.1)
    assert config.masking.keep_fraction == pytest.approx(0.1)
    assert config.data.max_seq_length == 128
    assert config.nsp.short_seq_prob == 0.1
    assert config.nsp.random_next_probability == 0.5
    config.validate()


@pytest.mark.parametrize("key, today, before", [("pair_loss_weight", 0.5, 1.0), ("warmup_fraction", 0.06, 0.0)])
def test_a_run_recorded_before_a_setting_existed_keeps_the_value_it_trained_with(tmp_path, key, today, before):
    """The pair-loss weight came unweighted (1) and its default later became 0.5; warm-up was by steps alone
    before the budget capped it: a checkpoint or stored run without the key resumes and repeats with the old
    value, while a config file a person writes without it gets today's."""
    from workbench.checkpoint import checkpoint_config

    text = dumps_toml(WorkbenchConfig())
    assert f"{key} = {today}" in text
    older = "".join(line for line in text.splitlines(keepends=True) if not line.startswith(f"{key} ="))
    folder = tmp_path / "step-0000500"
    folder.mkdir()
    (folder / "config.toml").write_text(older, encoding="utf-8")
    assert getattr(load_config(folder / "config.toml").train, key) == today
    assert getattr(checkpoint_config(folder).train, key) == before
    stored = WorkbenchConfig().to_dict()
    del stored["train"][key]
    assert getattr(WorkbenchConfig.from_record(stored).train, key) == before
    assert key not in stored["train"]                                          # the record is not changed
    stored["train"][key] = 0.25                                                 # a recorded value is kept
    assert getattr(WorkbenchConfig.from_record(stored).train, key) == 0.25
    with pytest.raises(ConfigError, match="unknown key train.pair_loss_wieght"):
        WorkbenchConfig.from_record({"train": {"pair_loss_wieght": 1.0}})


def test_toml_round_trip_is_exact(tmp_path):
    config = WorkbenchConfig()
    config.masking.probability = 0.1 + 0.2  # a float whose repr is long
    config.data.text_field = 'body "quoted" \\ ünïcode'
    config.masking.strategy = "whole_word"
    config.tokenizer.lowercase = False
    path = tmp_path / "run.toml"
    save_config(config, path)
    assert load_config(path) == config
    assert dumps_toml(load_config(path)) == path.read_text()


@settings(max_examples=50, deadline=None)
@given(p=st.floats(min_value=1e-6, max_value=0.999999), mask=st.floats(0, 0.5), rnd=st.floats(0, 0.5),
       field=st.text(min_size=1, max_size=20).filter(lambda s: s.strip()))
def test_round_trip_any_valid_values(tmp_path_factory, p, mask, rnd, field):
    config = WorkbenchConfig()
    config.masking.probability, config.masking.mask_fraction, config.masking.random_fraction = p, mask, rnd
    config.data.text_field = field
    path = tmp_path_factory.mktemp("rt") / "c.toml"
    save_config(config, path)
    assert load_config(path) == config


@pytest.mark.parametrize("section, key, value, message", [
    ("masking", "probability", 1.5, "masking.probability must be in (0, 1), got 1.5"),
    ("masking", "probability", 0, "masking.probability must be in (0, 1), got 0.0"),
    ("data", "max_seq_length", 4, "data.max_seq_length must be in [8, 8192], got 4"),
    ("masking", "selection", "random", "masking.selection must be one of exact, bernoulli; got 'random'"),
    ("nsp", "random_next_probability", -0.1, "nsp.random_next_probability must be in [0, 1], got -0.1"),
    ("tokenizer", "vocab_size", "big", "tokenizer.vocab_size must be an integer, got 'big'"),
    ("tokenizer", "lowercase", 1, "tokenizer.lowercase must be true or false, got 1"),
])
def test_validation_names_the_key_and_the_problem(section, key, value, message):
    with pytest.raises(ConfigError) as info:
        WorkbenchConfig.from_dict({section: {key: value}})
    assert str(info.value) == message


def test_mask_and_random_fractions_must_leave_room():
    with pytest.raises(ConfigError, match=r"mask_fraction \+ masking.random_fraction must be <= 1"):
        WorkbenchConfig.from_dict({"masking": {"mask_fraction": 0.9, "random_fraction": 0.2}})


def test_unknown_key_suggests_the_closest(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[masking]\nprobabilty = 0.2\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "unknown key masking.probabilty" in str(info.value)
    assert "did you mean masking.probability?" in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_section_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown section \[maskng\] \(did you mean masking\?\)"):
        WorkbenchConfig.from_dict({"maskng": {}})


def test_bad_toml_and_missing_file_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[masking\nprobability = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_overrides_parse_toml_values_and_validate():
    config = WorkbenchConfig().with_overrides(["masking.probability=0.2", "masking.strategy=span",
                                               "tokenizer.lowercase=false"])
    assert config.masking.probability == 0.2
    assert config.masking.strategy == "span"
    assert config.tokenizer.lowercase is False
    with pytest.raises(ConfigError, match="masking.probability must be in"):
        WorkbenchConfig().with_overrides(["masking.probability=2"])
    with pytest.raises(ConfigError, match="expects section.key=value"):
        WorkbenchConfig().with_overrides(["probability"])


def test_integers_are_accepted_for_floats_but_not_the_reverse():
    assert WorkbenchConfig.from_dict({"nsp": {"short_seq_prob": 0}}).nsp.short_seq_prob == 0.0
    with pytest.raises(ConfigError, match="data.max_seq_length must be an integer"):
        WorkbenchConfig.from_dict({"data": {"max_seq_length": 12.5}})


def test_every_setting_is_documented():
    rows = describe_settings()
    assert len(rows) >= 20
    assert all(help_text and kind in ("structural", "resumable", "live") for _, _, kind, help_text in rows)
    assert ("masking.probability", "0.3", "structural") == rows[[r[0] for r in rows].index("masking.probability")][:3]


def test_keep_fraction_is_the_rest():
    assert MaskingConfig(mask_fraction=0.5, random_fraction=0.25).keep_fraction == pytest.approx(0.25)


def test_a_prediction_cap_of_zero_means_none():
    uncapped = MaskingConfig(max_predictions_per_seq=0, min_predictions_per_seq=5)
    uncapped.validate()                                   # a floor of 5 is below "no cap"
    assert uncapped.prediction_cap(128) == 128
    assert MaskingConfig(max_predictions_per_seq=20).prediction_cap(128) == 20
    assert MaskingConfig(max_predictions_per_seq=20).prediction_cap(16) == 16
    with pytest.raises(ConfigError, match="min_predictions_per_seq must be <= masking.max_predictions_per_seq"):
        MaskingConfig(max_predictions_per_seq=4, min_predictions_per_seq=5).validate()


def test_a_final_masking_rate_makes_the_rate_fall_linearly_over_the_run():
    constant = MaskingConfig(probability=0.3)
    assert [constant.probability_at(p) for p in (0.0, 0.5, 1.0)] == [0.3, 0.3, 0.3]
    falling = MaskingConfig(probability=0.3, final_probability=0.15)
    assert [falling.probability_at(p) for p in (0.0, 0.5, 1.0)] == pytest.approx([0.3, 0.225, 0.15])
    assert falling.probability_at(-1.0) == 0.3 and falling.probability_at(2.0) == pytest.approx(0.15)
    rising = MaskingConfig(probability=0.15, final_probability=0.3)
    assert rising.probability_at(0.5) == pytest.approx(0.225)
    with pytest.raises(ConfigError, match="masking.final_probability"):
        MaskingConfig(final_probability=1.0).validate()
