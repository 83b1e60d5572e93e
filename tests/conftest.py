"""Shared fixtures: small corpora written by the tests and datasets prepared from them."""

from __future__ import annotations

import inspect
import os
import json
import random
import re
import tempfile
from pathlib import Path

import pytest

# Qt tests must never need a display; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

# Runs recorded by tests (and the subprocesses they start) go to a throw-away database,
# never the user's own run history.
_TEST_DATA = tempfile.mkdtemp(prefix="workbench-tests-")
os.environ["WORKBENCH_DB"] = os.path.join(_TEST_DATA, "runs.db")
os.environ["XDG_STATE_HOME"] = os.path.join(_TEST_DATA, "state")  # the error log, too

# Tiers (README: "Tests while you work"): `slow` is written on each test that takes over ~1.5 s; `gui` and
# `subprocess` are found here, from the test's fixtures and source, so a new test is sorted without a decorator.
_SPAWNS = re.compile(r"subprocess\.|Popen|sys\.executable|multiprocessing|torchrun|(?<![.\w])(run|popen|cli_process)\(")
GUI_MODULES = ("test_gui", "test_gui_jobs", "test_panels_standalone", "test_compare_panel")
# Fixtures that train a model first: a test that uses one is slow, whatever its own body takes.
TRAINING_FIXTURES = {"modern_run", "pretrained_run", "cli_run", "two_runs"}


# A test that hangs (a deadlock between threads) would hold CI for its whole 90 minutes and say nothing: after
# TEST_WATCHDOG_S every thread's stack is written to stderr and the run ends, naming where it hung.
TEST_WATCHDOG_S = 600


@pytest.fixture(autouse=True)
def _watchdog():
    import faulthandler

    faulthandler.dump_traceback_later(TEST_WATCHDOG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item):
    """After a window test (its widgets closed by pytest-qt): delete what was closed and collect the garbage
    here, on the GUI thread, so no Qt object is left for the collector to delete from another thread later
    (see workbench/gui/gui_gc.py)."""
    yield
    if "qtbot" in getattr(item, "fixturenames", ()):
        import gc

        from PySide6.QtCore import QCoreApplication, QEvent

        if QCoreApplication.instance() is not None:
            QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
            gc.collect()


def pytest_collection_modifyitems(config, items):
    for item in items:
        function = getattr(item, "function", None)
        if "qtbot" in getattr(item, "fixturenames", ()) or item.module.__name__ in GUI_MODULES:
            item.add_marker(pytest.mark.gui)
        try:
            source = inspect.getsource(function) if function else ""
        except (OSError, TypeError):
            source = ""
        if _SPAWNS.search(source) or "postgresql" in item.name:
            item.add_marker(pytest.mark.subprocess)
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


SUBJECTS = ["the cat", "a dog", "my neighbour", "the old sailor", "every student", "the quiet engineer",
            "our teacher", "the tired runner", "a small child", "the baker"]
VERBS = ["watched", "painted", "carried", "remembered", "described", "followed", "repaired", "admired",
         "questioned", "photographed"]
OBJECTS = ["the red boat", "a wooden chair", "the unbelievable sunset", "an enormous lighthouse",
           "the broken umbrella", "a curious manuscript", "the frozen waterfall", "an unexpected visitor",
           "the crowded marketplace", "a forgotten melody"]
PLACES = ["near the harbour", "after midnight", "during the storm", "in the garden", "without hesitation",
          "before breakfast", "beside the river", "under the bridge"]


def make_sentence(rng: random.Random) -> str:
    sentence = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
    if rng.random() < 0.6:
        sentence += f" {rng.choice(PLACES)}"
    return sentence[0].upper() + sentence[1:] + "."


def write_text_corpus(path: Path, documents: int, sentences: tuple[int, int] = (3, 12), seed: int = 0) -> Path:
    """A .txt corpus: one sentence per line, a blank line between documents."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for d in range(documents):
            n = rng.randint(*sentences)
            f.write("\n".join(make_sentence(rng) for _ in range(n)))
            f.write("\n\n")
    return path


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    return write_text_corpus(tmp_path_factory.mktemp("corpus") / "stories.txt", documents=300)


@pytest.fixture(scope="session")
def small_config():
    from workbench.config import WorkbenchConfig

    config = WorkbenchConfig()
    config.tokenizer.vocab_size = 200
    config.tokenizer.min_frequency = 1
    config.data.max_seq_length = 64
    return config


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, corpus_file, small_config):
    from workbench.data.prepare import prepare_dataset

    return prepare_dataset([corpus_file], tmp_path_factory.mktemp("ds") / "stories", small_config).dataset


TOPICS = ["river", "castle", "engine", "garden", "planet", "violin", "forest", "market", "harbour", "library",
          "mountain", "kitchen", "desert", "island", "factory", "temple"]
ADJECTIVES = ["old", "quiet", "bright", "small", "famous", "hidden"]
LEARN_VERBS = ["holds", "needs", "shows", "keeps"]
LEARN_NOUNS = ["a secret", "the answer", "some water", "many stones", "no doors", "two keys"]


def write_learnable_corpus(path: Path, documents: int = 400, seed: int = 0) -> Path:
    """Documents about one topic each (so NSP is learnable) in a tiny grammar (so MLM is)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(documents):
            topic = rng.choice(TOPICS)
            lines = [f"The {rng.choice(ADJECTIVES)} {topic} {rng.choice(LEARN_VERBS)} {rng.choice(LEARN_NOUNS)}."
                     for _ in range(rng.randint(4, 8))]
            f.write("\n".join(lines) + "\n\n")
    return path


@pytest.fixture(scope="session")
def learnable_dataset(tmp_path_factory):
    from workbench.config import WorkbenchConfig
    from workbench.data.prepare import prepare_dataset

    folder = tmp_path_factory.mktemp("learnable")
    corpus = write_learnable_corpus(folder / "topics.txt")
    config = WorkbenchConfig()
    config.tokenizer.vocab_size = 120
    config.tokenizer.min_frequency = 1
    config.data.max_seq_length = 32
    config.data.heldout_fraction = 0.05
    return prepare_dataset([corpus], folder / "ds", config).dataset


def tiny_train_config(dataset_path, **train):
    """A very small model and run for tests: 2 layers of width 32."""
    from workbench.config import WorkbenchConfig

    config = WorkbenchConfig()
    config.data.dataset = str(dataset_path)
    config.data.max_seq_length = 32
    config.data.heldout_fraction = 0.05
    config.model.architecture = "bert"  # the faithful BERT, with dropout (its RNG is part of what resume restores)
    config.model.hidden_dropout_prob = config.model.attention_probs_dropout_prob = 0.1
    config.model.preset = "custom"
    config.model.hidden_size, config.model.num_hidden_layers = 32, 2
    config.model.num_attention_heads, config.model.intermediate_size = 2, 64
    config.model.max_position_embeddings = 64
    config.train.batch_size = 16
    config.train.learning_rate = 3e-3
    config.train.warmup_steps = 10
    config.train.max_steps = 50
    config.train.eval_every = 0
    config.train.eval_every_seconds = 0.0
    config.train.max_minutes = 0.0   # a step budget: the schedule must not depend on the clock
    config.train.checkpoint_every = 0
    config.train.threads = 1
    config.train.device = "cpu"
    for key, value in train.items():
        setattr(config.train, key, value)
    config.validate()
    return config


# --- run databases: SQLite, and a real PostgreSQL server when one can be started ------------------------

@pytest.fixture(scope="session")
def postgres_server():
    import postgres_server as pg

    server, reason = pg.start()
    if server is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but no server could be started: {reason}")
        pytest.skip(f"no PostgreSQL server: {reason}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """A fresh, empty run database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'runs.db'}"
    return request.getfixturevalue("postgres_server").create_database()


def write_corpus_file(path, texts: list[str]) -> None:
    """Write ``texts`` (one document each) in the format the suffixes of ``path`` name."""
    import bz2
    import gzip
    import lzma

    import zstandard

    from workbench.data.columnar import ARROW_SUFFIXES, PARQUET_SUFFIXES
    from workbench.data.compressed import COMPRESSION_SUFFIXES
    from workbench.data.corpus import CSV_SUFFIXES, JSONL_SUFFIXES

    compression = COMPRESSION_SUFFIXES.get(path.suffix.lower(), "")
    inner = (path.with_suffix("") if compression else path).suffix.lower()
    if inner in PARQUET_SUFFIXES or inner in ARROW_SUFFIXES:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({"id": list(range(len(texts))), "text": texts})
        if inner in PARQUET_SUFFIXES:
            pq.write_table(table, path, row_group_size=2)
        else:
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
                writer.write_table(table, max_chunksize=2)
        return
    if inner in CSV_SUFFIXES:
        body = "text\n" + "".join(f'"{t}"\n' for t in texts)
    elif inner in JSONL_SUFFIXES:
        body = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    else:
        body = "\n\n".join(texts) + "\n"
    raw = body.encode("utf-8")
    compress = {"": bytes, "gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress,
                "zstd": zstandard.ZstdCompressor().compress}[compression]
    path.write_bytes(compress(raw))
