"""A prepared (tokenized) dataset: a directory written once by ``prepare_dataset``, memory-mapped after.

Layout of a dataset directory::

    manifest.json          format version, fingerprint, counts, dtype, tokenizer hash
    stats.json             corpus statistics and diagnostics (see ``workbench.data.stats``)
    tokens.bin             (N,) uint16|uint32  token ids of every sentence, back to back
    sentence_offsets.bin   (S+1,) int64        sentence s is tokens[off[s]:off[s+1]]
    document_offsets.bin   (D+1,) int64        document d is sentences doff[d]..doff[d+1]
    tokenizer.json, vocab.txt

Sentences of one document are contiguous in ``tokens.bin``, so any run of
consecutive sentences is one slice - the pair builder depends on this.

Written by ``workbench.data.prepare``; opened here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from workbench.data.tokenizer import Vocabulary, load_tokenizer
from workbench.errors import DatasetError

FORMAT_VERSION = 1


class TokenizedDataset:
    """A prepared dataset directory, memory-mapped; cheap to open, safe to share between processes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        manifest_path = self.path / "manifest.json"
        if not self.path.exists():
            raise DatasetError(f"{self.path}: no such dataset; create it with `pretrain-workbench prepare`")
        if not manifest_path.exists():
            raise DatasetError(f"{self.path}: not a prepared dataset (no manifest.json); create it with `pretrain-workbench prepare`")
        try:
            self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            version = int(self.manifest["format_version"])
            if version > FORMAT_VERSION:
                raise DatasetError(
                    f"{self.path}: dataset format {version} is newer than this program understands "
                    f"({FORMAT_VERSION}); update pretrain-workbench")
            dtype = np.dtype(self.manifest["dtype"])
            counts = self.manifest["counts"]
            n_tokens, n_sentences, n_documents = (int(counts[k]) for k in ("tokens", "sentences", "documents"))
            if min(n_tokens, n_sentences, n_documents) < 0 or dtype not in (np.uint16, np.uint32):
                raise ValueError("negative counts or an unknown dtype")
            self.fingerprint  # noqa: B018 - must be present
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{manifest_path}: damaged manifest ({exc}); prepare the dataset again") from None
        if not (self.path / "tokenizer.json").is_file():
            raise DatasetError(f"{self.path}: tokenizer.json is missing; prepare the dataset again")
        if not (self.path / "stats.json").is_file():
            raise DatasetError(f"{self.path}: stats.json is missing; prepare the dataset again")
        self.tokens = self._map("tokens.bin", dtype, n_tokens)
        self.sentence_offsets = self._map("sentence_offsets.bin", np.int64, n_sentences + 1)
        self.document_offsets = self._map("document_offsets.bin", np.int64, n_documents + 1)
        self._tokenizer = None
        self._vocabulary: Vocabulary | None = None
        self._validate()

    def _validate(self) -> None:
        """Structure checks, so a damaged dataset is a clear error rather than an IndexError or garbage. The
        files are read in pieces with plain reads, not through the maps: checking a dataset of gigabytes
        then neither needs nor keeps its pages in this process's memory."""
        def bad(what: str) -> DatasetError:
            return DatasetError(f"{self.path}: dataset is damaged ({what}); prepare it again")

        for name, offsets, end in (("sentence_offsets.bin", self.sentence_offsets, len(self.tokens)),
                                   ("document_offsets.bin", self.document_offsets, len(self.sentence_offsets) - 1)):
            if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != end:
                raise bad(f"{name} does not span the data")
            previous = None
            for piece in self._pieces(name, np.int64, 1 << 22):
                # compared, not subtracted: a difference of damaged 64-bit values can wrap around
                if (len(piece) > 1 and (piece[1:] <= piece[:-1]).any()) or (
                        previous is not None and len(piece) and piece[0] <= previous):
                    raise bad(f"{name} is not increasing")
                if len(piece):
                    previous = piece[-1]
        vocab_size = self.vocabulary.size
        for piece in self._pieces("tokens.bin", self.tokens.dtype, 1 << 24):
            if len(piece) and int(piece.max()) >= vocab_size:
                raise bad(f"tokens.bin holds id {int(piece.max())}, beyond the vocabulary of {vocab_size}")

    def _pieces(self, name: str, dtype, count: int):
        """The values of ``name`` in pieces of ``count``, read (not mapped)."""
        path = self.path / name
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb") as handle:
            while True:
                piece = np.fromfile(handle, dtype=dtype, count=count)
                if not len(piece):
                    return
                yield piece

    def _map(self, name: str, dtype, length: int) -> np.ndarray:
        path = self.path / name
        expected = length * np.dtype(dtype).itemsize
        if expected == 0:
            return np.zeros(0, dtype=dtype)  # np.memmap cannot map an empty file
        actual = path.stat().st_size if path.exists() else -1
        if actual != expected:
            raise DatasetError(
                f"{path}: dataset is incomplete or damaged ({max(actual, 0)} bytes, expected {expected}); "
                "prepare it again"
            )
        return np.memmap(path, dtype=dtype, mode="r", shape=(length,))

    @property
    def num_documents(self) -> int:
        return len(self.document_offsets) - 1

    @property
    def num_sentences(self) -> int:
        return len(self.sentence_offsets) - 1

    @property
    def num_tokens(self) -> int:
        return len(self.tokens)

    @property
    def fingerprint(self) -> str:
        value = self.manifest["fingerprint"]
        if not isinstance(value, str):
            raise TypeError("fingerprint is not a string")
        return value

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.path / "tokenizer.json")
        return self._tokenizer

    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocabulary is None:
            self._vocabulary = Vocabulary.from_tokenizer(self.tokenizer)
        return self._vocabulary

    @property
    def stats(self) -> dict:
        try:
            stats = json.loads((self.path / "stats.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DatasetError(f"{self.path / 'stats.json'}: missing or damaged ({exc}); prepare the dataset again") from None
        if not isinstance(stats, dict):
            raise DatasetError(f"{self.path / 'stats.json'}: damaged; prepare the dataset again")
        return stats

    def sentence(self, index: int) -> np.ndarray:
        return self.tokens[self.sentence_offsets[index]:self.sentence_offsets[index + 1]]

    def document_sentence_range(self, doc: int) -> tuple[int, int]:
        return int(self.document_offsets[doc]), int(self.document_offsets[doc + 1])
