"""Shared fixtures: small corpora written by the tests and datasets prepared from them."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

# Qt tests must never need a display; set before anything imports Qt.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

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
    from workbench.data.store import prepare_dataset

    return prepare_dataset([corpus_file], tmp_path_factory.mktemp("ds") / "stories", small_config).dataset
