"""The command line: one end-to-end prepare in a subprocess, as a user runs it; the rest in-process (``main([...])``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import write_text_corpus

INSPECT_KEYS = {"samples", "selected_fraction", "mask_fraction", "random_fraction", "keep_fraction",
                "special_selected", "is_next_fraction", "mean_length", "max_length", "mean_selected_per_sequence",
                "zero_selected_sequences", "random_hit_special", "truncated_fraction", "padding_fraction"}


def run(*args, cwd=None):
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "workbench", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def run_inside(capsys, monkeypatch, *args, cwd=None) -> subprocess.CompletedProcess:
    """``pretrain-workbench ARGS`` in this interpreter: exit code and captured output, as ``run`` gives them."""
    from workbench.cli import main

    if cwd is not None:
        monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, captured.out, captured.err)


@pytest.fixture
def cli(capsys, monkeypatch):
    """The command line in this interpreter (the end-to-end runs above use a subprocess)."""
    return lambda *args: run_inside(capsys, monkeypatch, *args)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    corpus = write_text_corpus(folder / "corpus.txt", documents=200)
    out = folder / "ds"
    result = run("prepare", corpus, "--out", out, "--vocab-size", 300, "--max-seq-length", 64)
    assert result.returncode == 0, result.stderr
    return folder, corpus, out, result


def test_prepare_reports_the_corpus(prepared):
    _, _, out, result = prepared
    assert "documents   200" in result.stdout
    assert "tokens / sentence" in result.stdout
    assert f"wrote {out}" in result.stdout
    assert (out / "manifest.json").exists() and (out / "tokenizer.json").exists() and (out / "vocab.txt").exists()


def test_prepare_again_is_up_to_date(prepared, cli):
    _, corpus, out, _ = prepared
    result = cli("prepare", corpus, "--out", out, "--vocab-size", 300, "--max-seq-length", 64, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reused"] is True


def test_inspect_json_reports_realised_statistics(prepared, cli):
    _, _, out, _ = prepared
    result = cli("inspect", out, "--samples", 1000, "--seed", 1, "--json", "--show", 2)
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert INSPECT_KEYS <= set(stats)
    assert stats["samples"] == 1000
    assert stats["special_selected"] == 0 and stats["random_hit_special"] == 0
    assert stats["zero_selected_sequences"] == 0
    assert 0.29 < stats["selected_fraction"] < 0.36  # 0.3, exact rounding over length incl. [CLS]/[SEP]
    assert stats["mask_fraction"] == pytest.approx(0.8, abs=0.04)
    assert stats["is_next_fraction"] == pytest.approx(0.5, abs=0.06)
    assert stats["max_length"] <= 64
    assert len(stats["examples"]) == 2 and "[MASK:" in stats["examples"][0]


def test_inspect_options_change_what_is_realised(prepared, cli):
    _, _, out, _ = prepared
    result = cli("inspect", out, "--samples", 1000, "--json", "--selection", "bernoulli", "--probability", 0.2,
                 "--max-predictions", 64, "--mask-fraction", 1.0, "--random-fraction", 0.0, "--sop")
    stats = json.loads(result.stdout)
    assert stats["selected_fraction"] == pytest.approx(0.2, abs=0.02)
    assert stats["mask_fraction"] == 1.0 and stats["random_fraction"] == 0.0
    assert stats["configured"]["objective"] == "sop"


def test_inspect_text_output_and_examples(prepared, cli):
    _, _, out, _ = prepared
    result = cli("inspect", out, "--samples", 200, "--show", 1, "--whole-word")
    assert result.returncode == 0, result.stderr
    assert "selected / non-special" in result.stdout and "configured" in result.stdout
    assert "#1 IsNext" in result.stdout or "#1 NotNext" in result.stdout
    assert "falls to" not in result.stdout                         # a constant rate by default
    falling = cli("inspect", out, "--samples", 200, "--set", "masking.final_probability=0.15")
    assert "the run's first examples: the rate falls to 0.15 by its end" in falling.stdout, falling.stderr


@pytest.mark.parametrize("args, message", [
    (["prepare", "missing.txt", "--out", "x"], "missing.txt: no such file or folder"),
    (["prepare", "--out", "x"], "name corpus files or folders, or use --sample"),
    (["inspect", "nowhere"], "nowhere: no such dataset"),
    (["inspect", "{ds}", "--probability", "1.5"], "masking.probability must be in (0, 1), got 1.5"),
    (["inspect", "{ds}", "--set", "masking.probabilty=0.2"], "did you mean masking.probability?"),
    (["inspect", "{ds}", "--samples", "zero"], "invalid int value"),
    (["frobnicate"], "invalid choice"),
    (["prepare", "{corpus}", "--out", "{folder}/t", "--tokenizer", "nope.json"], "nope.json: tokenizer file not found"),
])
def test_user_errors_exit_2_with_one_line(prepared, args, message, capsys, monkeypatch):
    folder, corpus, out, _ = prepared
    args = [a.format(ds=out, corpus=corpus, folder=folder) for a in args]
    result = run_inside(capsys, monkeypatch, *args, cwd=folder)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and "Traceback" not in result.stderr


def test_bad_corpus_file_exits_2_naming_file_and_line(tmp_path, cli):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"txt": "oops"}\n')
    result = cli("prepare", bad, "--out", tmp_path / "ds")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"error: {bad}:2: record has no 'text' field (fields: txt); "
                                     "choose the field with --text-field")
    assert not (tmp_path / "ds").exists()


def test_help_lists_the_commands(cli):
    result = cli("--help")
    assert result.returncode == 0 and "prepare" in result.stdout and "inspect" in result.stdout


def test_window_without_a_display_is_a_clear_error():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "workbench"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "no display" in result.stderr
