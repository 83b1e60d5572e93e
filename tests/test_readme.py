"""The README stays true: its commands and every setting are there."""

from __future__ import annotations

from pathlib import Path

from workbench.config import describe_settings, settings_table

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_the_config_reference_is_the_generated_table():
    assert settings_table() in README, "regenerate the README's table with `python -m workbench.config`"
    for key, default, _, _ in describe_settings():
        assert f"| `{key}` | `{default}` |" in README, f"{key} (default {default}) missing from the README"


def test_readme_starts_with_the_two_commands_ci_runs():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    test_command = 'python -m pip install -e ".[test]" && python -m pytest'
    assert test_command in README and test_command in ci
    first_block = README.split("```bash")[1].split("```")[0]
    assert first_block.strip().endswith("pretrain-workbench")  # opens the window on the sample corpus
