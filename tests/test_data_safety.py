"""The workbench touches only what it provably created: exports, run folders, run deletion, claims."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.errors import ConfigError, WorkbenchError
from workbench.ownership import RUN_MARKER, claim_run_folder, new_run_folder, read_marker
from workbench.services.run_launch import find_resume_target, launch_run
from workbench.services.run_removal import delete_run
from workbench.store.repository import RunRepository

from conftest import tiny_train_config


def cli(capsys, *args) -> tuple[int, str, str]:
    """The CLI in-process: exit status, stdout, stderr."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def user_project(folder: Path) -> Path:
    """A folder as a person has it: a config.json, a config.toml, a checkpoints/ folder and their own files."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"mine": true}')
    (folder / "config.toml").write_text("[mine]\n")
    (folder / "notes.txt").write_text("precious")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "thesis.pdf").write_text("precious too")
    return folder


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def repository(tmp_path_factory):
    return RunRepository(f"sqlite:///{tmp_path_factory.mktemp('db') / 'runs.db'}")


@pytest.fixture(scope="module")
def finished_run(learnable_dataset, repository, tmp_path_factory):
    config = tiny_train_config(learnable_dataset.path, max_steps=4)
    config.train.output_dir = str(tmp_path_factory.mktemp("runs"))
    launched = launch_run(config, repository)
    assert launched.run().status == "completed"
    return launched.run_dir, launched.run_id


def test_export_never_writes_into_a_folder_it_did_not_create(finished_run, tmp_path, capsys):
    run_dir, _ = finished_run
    project = user_project(tmp_path / "webapp")
    before = snapshot(project)
    code, _, err = cli(capsys, "export", run_dir, "--out", project)
    assert code == 2 and "not empty and was not written by an export" in err
    assert snapshot(project) == before


def test_export_reexport_replaces_only_its_own_files(finished_run, tmp_path, capsys):
    run_dir, _ = finished_run
    out = tmp_path / "hf"
    assert cli(capsys, "export", run_dir, "--out", out)[0] == 0
    (out / "README.md").write_text("my model card")
    assert cli(capsys, "export", run_dir, "--out", out)[0] == 0
    assert (out / "README.md").read_text() == "my model card"
    assert (out / "config.json").exists() and not [p for p in out.iterdir() if ".partial" in p.name]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(capsys, "export", run_dir, "--out", empty)[0] == 0
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, _, err = cli(capsys, "export", run_dir, "--out", a_file / "below")
    assert code == 2 and "is a file" in err and a_file.read_text() == "x"


def test_train_refuses_a_folder_with_other_files(learnable_dataset, tmp_path, capsys):
    project = user_project(tmp_path / "myproject")
    before = snapshot(project)
    code, _, err = cli(capsys, "train", "--dataset", learnable_dataset.path, "--out", project, "--no-db",
                       "--set", "train.max_steps=1")
    assert code == 2 and "never writes into folders it did not create" in err
    assert snapshot(project) == before


@pytest.mark.parametrize("name", ["../escape", "/etc/x", "a/b", "..", "bad\x00name", ".hidden", " padded "])
def test_run_names_are_names_not_paths(learnable_dataset, tmp_path, capsys, name):
    code, _, err = cli(capsys, "train", "--dataset", learnable_dataset.path, "--no-db",
                       "--set", f"train.output_dir={json.dumps(str(tmp_path))}", "--set", f"train.name={json.dumps(name)}")
    assert code == 2 and "train.name must be a plain name" in err
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "escape").exists()


def test_delete_removes_only_what_the_run_wrote(learnable_dataset, repository, tmp_path):
    config = tiny_train_config(learnable_dataset.path, max_steps=2)
    config.train.output_dir = str(tmp_path)
    launched = launch_run(config, repository)
    launched.run()
    run_dir = launched.run_dir
    assert read_marker(run_dir)["run_id"] == launched.run_id
    (run_dir / "analysis.ipynb").write_text("mine")
    (run_dir / "checkpoints" / "my-notes.txt").write_text("mine too")
    message = delete_run(repository, launched.run_id)
    assert "kept what the workbench did not write" in message
    assert snapshot(run_dir) == {"analysis.ipynb": b"mine", "checkpoints/my-notes.txt": b"mine too"}
    with pytest.raises(WorkbenchError):
        repository.get(launched.run_id)


def test_delete_never_trusts_a_path_from_the_database(finished_run, repository, tmp_path):
    victim = user_project(tmp_path / "victim")
    before = snapshot(victim)
    run_dir, _ = finished_run
    for pointed in (str(victim), "relative/path", str(run_dir)):
        config = tiny_train_config("x").to_dict()
        row = repository.create_run(config, "tampered", pointed)
        message = delete_run(repository, row.id)
        assert "kept" in message
    assert snapshot(victim) == before
    assert run_dir.is_dir() and (run_dir / RUN_MARKER).exists()  # belongs to another run: untouched


def test_one_writer_per_run_folder(finished_run, repository, learnable_dataset, tmp_path):
    run_dir, run_id = finished_run
    claim = claim_run_folder(run_dir)  # as if a training process held it
    try:
        with pytest.raises(WorkbenchError, match="in use by process"):
            launch_run(find_resume_target(run_dir).config(), repository, resume=find_resume_target(run_dir))
        with pytest.raises(WorkbenchError, match="in use"):
            delete_run(repository, run_id)
    finally:
        claim.release()
    # Two runs started in the same second with the same default name get two folders.
    config = tiny_train_config(learnable_dataset.path, max_steps=1)
    config.train.output_dir = str(tmp_path)
    folders, errors = [], []

    def start():
        try:
            folders.append(new_run_folder(tmp_path / "tiny-20260101-000000", unique=True))  # claims, held
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(8)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len({claim.folder for claim in folders}) == 8


def test_a_named_run_into_an_existing_run_folder_is_refused(finished_run, learnable_dataset, repository):
    run_dir, run_id = finished_run
    config = tiny_train_config(learnable_dataset.path, max_steps=1)
    with pytest.raises(WorkbenchError, match=f"already holds run {run_id}"):
        launch_run(config, repository, out=run_dir)


def test_secrets_never_appear_in_messages(tmp_path, capsys):
    code, _, err = cli(capsys, "runs", "--db", "postgresql+psycopg2://alice:s3cret-pw@127.0.0.1:1/workbench")
    assert code == 2 and "s3cret-pw" not in err and "alice" in err
    from workbench.store.database import display_url

    assert "s3cret" not in display_url("postgresql://bob:s3cret@db.example/x")


def test_database_and_error_log_are_private(tmp_path):
    from workbench.error_log import MAX_BYTES, append_error

    RunRepository(f"sqlite:///{tmp_path / 'private.db'}")
    assert (tmp_path / "private.db").stat().st_mode & 0o077 == 0
    log = tmp_path / "logs" / "errors.log"
    append_error("Traceback: one\n", log)
    assert log.stat().st_mode & 0o077 == 0
    log.write_text("x" * (MAX_BYTES + 1))
    append_error("Traceback: two\n", log)
    assert log.with_name("errors.log.1").stat().st_size > MAX_BYTES and "two" in log.read_text()


def test_config_rejects_absurd_numbers_with_the_key():
    from workbench.config import WorkbenchConfig

    for assignment, key in (("model.hidden_size=99999999999999999999999", "model.hidden_size"),
                            ("model.hidden_size=1000000", "model.hidden_size"),
                            ("model.max_position_embeddings=100000000", "model.max_position_embeddings"),
                            ("train.threads=100000", "train.threads"), ("train.seed=-1", "train.seed"),
                            ("train.batch_size=0", "train.batch_size"),
                            ("train.max_steps=1e300", "train.max_steps")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            WorkbenchConfig().with_overrides([assignment])
