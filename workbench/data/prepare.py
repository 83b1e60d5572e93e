"""Prepare a corpus into a tokenized dataset (the directory ``workbench.data.dataset`` opens).

``prepare_dataset`` streams the corpus in batches through the tokenizer's
batch API (both cores), appends to the files as it goes (memory stays flat in
corpus size), writes into a hidden ``.NAME.partial-*`` directory and renames
it into place only when complete. Preparing again with the same
corpus files (paths, sizes, modification times), reading settings and
tokenizer finds the fingerprint in the manifest and returns at once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from workbench.config import WorkbenchConfig
from workbench.data.corpus import CorpusFile, Document, ReadProgress, list_corpus_files, read_documents, total_bytes
from workbench.data.diagnostics import Diagnostics
from workbench.data.stats import CorpusStatsBuilder
from workbench.data.tokenizer import describe, load_tokenizer, save_vocab_txt, tokenizer_from_counts, tokenizer_hash
from workbench.data.tokenizer_sample import plan_for, sampled_texts
from workbench.data.wordpiece_training import WordCounter
from workbench.durable_io import fsync_dir, fsync_tree, remove_stale_partials, temporary_sibling, writing
from workbench.data.dataset import FORMAT_VERSION, TokenizedDataset
from workbench.data.sentence_encoding import SentenceEncoder
from workbench.data.prepare_checkpoint import (
    CHECKPOINT, CHECKPOINT_SECONDS, IN_USE, cut_back, find_resumable, write_checkpoint,
)
from workbench.errors import DatasetError, WorkbenchError

# Which trainer made a trained tokenizer: part of the fingerprint, so a dataset made by another trainer
# (1: ``tokenizers``' WordPieceTrainer, not reproducible) is prepared again rather than reused.
TRAINER_VERSION = 2
BATCH_CHARS = 1 << 20  # text handed to encode_batch at once: large enough for both cores, small in memory

# progress(stage, done, total): stage "train-tokenizer" (bytes of the sample counted), "build-vocabulary"
# (merges made), "resume" (reading past what an interrupted prepare wrote) or "tokenize" (bytes).
Progress = Callable[[str, int, int], None]


class Cancelled(WorkbenchError):
    """Preparing was cancelled by the user; nothing was put in place (what was tokenized is kept, hidden, for
    the next prepare of the same corpus to resume)."""


@dataclass
class PrepareResult:
    dataset: "TokenizedDataset"
    reused: bool      # True when an up-to-date dataset was found and nothing was done
    seconds: float
    resumed_at: float | None = None  # share of the corpus an interrupted prepare had done, when resumed


def corpus_fingerprint(files: Sequence[CorpusFile], config: WorkbenchConfig, tokenizer_spec: str) -> str:
    """Identity of a prepared dataset: same fingerprint, same bytes on disk."""
    data = config.data
    # Every setting that changes what prepare writes (stats.json depends on max_seq_length too);
    # data.dataset and data.heldout_fraction are read at training time only.
    identity = {
        "format": FORMAT_VERSION,
        "files": [[os.path.abspath(f.path), f.kind, f.size, f.mtime_ns, f.compression] for f in files],
        "reading": [data.sentences, data.split_lines_longer_than, data.text_field, data.encoding_errors,
                    data.max_seq_length],
        "tokenizer": tokenizer_spec,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _tokenizer_spec(config: WorkbenchConfig, corpus_bytes: int) -> str:
    tok = config.tokenizer
    # The sample size only matters when the corpus is larger (a smaller corpus trains on all of it).
    sample = tok.sample_mb if 0 < tok.sample_mb * 1_000_000 < corpus_bytes else 0
    settings = json.dumps([tok.vocab_size, tok.lowercase, tok.strip_accents, tok.min_frequency, tok.limit_alphabet,
                           sample])
    if tok.path:  # the file's contents (casing comes from the file)
        return "file:" + tokenizer_hash(load_tokenizer(tok.path, tok.loaded_case))
    return f"train:{TRAINER_VERSION}:" + settings


def prepare_dataset(
    corpus: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    config: WorkbenchConfig,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PrepareResult:
    """Read, (train a tokenizer,) tokenize and write a dataset directory."""
    started = time.perf_counter()
    out = Path(out_dir)
    listing = Diagnostics()
    files = list_corpus_files(corpus, listing)
    fingerprint = corpus_fingerprint(files, config, _tokenizer_spec(config, total_bytes(files)))
    if (out / "manifest.json").exists():
        try:
            existing = TokenizedDataset(out)
        except DatasetError:
            existing = None
        if existing is not None and existing.manifest.get("fingerprint") == fingerprint:
            return PrepareResult(existing, True, time.perf_counter() - started)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out}: is a file, not a folder; choose another --out")
    if out.exists() and not (out / "manifest.json").exists() and any(out.iterdir()):
        raise DatasetError(f"{out}: folder exists and is not a prepared dataset; choose another --out")

    progress = progress or (lambda stage, done, total: None)
    should_stop = should_stop or (lambda: False)
    total = total_bytes(files)
    with writing(out):
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = temporary_sibling(out)
        found = find_resumable(out, fingerprint)
        in_use = frozenset(Path(p).name for p in IN_USE if Path(p).parent == out.parent)
        keep = (in_use | {found[0].name}) if found else in_use
        remove_stale_partials(out.parent, prefix=f".{out.name}.", keep=keep)
        resume = _take_over(found, partial, config) if found else None
        if resume is None:
            partial.mkdir()
    IN_USE.add(str(partial))
    try:
        if resume is not None:
            tokenizer = load_tokenizer(partial / "tokenizer.json")
            training = resume.get("training")
        else:
            if config.tokenizer.path:
                tokenizer = load_tokenizer(config.tokenizer.path, config.tokenizer.loaded_case)
                training = None
            else:
                tokenizer, training = _train_on_corpus(files, config, progress, should_stop, total)
            with writing(out / "tokenizer.json"):
                tokenizer.save(str(partial / "tokenizer.json"))
                save_vocab_txt(tokenizer, partial / "vocab.txt")
        writer = TokenWriter(files, config, tokenizer, partial, fingerprint, training, resume)
        counts, stats = writer.run(listing, progress, should_stop, total)
        manifest = {
            "format_version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "dtype": counts.pop("dtype"),
            "counts": counts,
            "tokenizer": {"sha256": tokenizer_hash(tokenizer), **describe(tokenizer),
                          **({"training": training} if training else {})},
            "corpus": [{"path": os.path.abspath(f.path), "kind": f.kind, "size": f.size,
                        **({"compression": f.compression} if f.compression else {})} for f in files],
            "config": {"data": config.to_dict()["data"], "tokenizer": config.to_dict()["tokenizer"]},
        }
        with writing(partial):
            (partial / CHECKPOINT).unlink(missing_ok=True)
            (partial / "stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
            (partial / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            fsync_tree(partial)
            _swap_into_place(partial, out)
    except (KeyboardInterrupt, Cancelled):
        # Stopped on purpose: keep what was written, if a checkpoint says how far it got, for the next prepare.
        if not (partial / CHECKPOINT).exists():
            shutil.rmtree(partial, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        IN_USE.discard(str(partial))
    return PrepareResult(TokenizedDataset(out), False, time.perf_counter() - started,
                         resumed_at=(resume["bytes_read"] / max(1, total)) if resume else None)


def _take_over(found: tuple[Path, dict], partial: Path, config: WorkbenchConfig) -> dict | None:
    """Move the abandoned partial folder of an interrupted prepare of the same corpus to ``partial`` (our
    own name, so no other process takes it for stale) and return its checkpoint; None if it is unusable
    (then the folder is removed and preparing starts afresh)."""
    folder, state = found
    try:
        os.replace(folder, partial)
        for key in ("pieces", "bytes_read", "tokens", "sentences", "documents"):
            int(state[key])
        CorpusStatsBuilder(config.data.max_seq_length, Diagnostics()).restore(state["stats"])
        Diagnostics.from_dict(state["writer"])
        if set(state["sizes"]) != set(TokenWriter.FILES) or len(state["carried"]) != 2:
            raise ValueError("checkpoint does not name the dataset's files")
        for name, size in state["sizes"].items():
            cut_back(partial / name, int(size))
    except (OSError, ValueError, KeyError, TypeError):
        shutil.rmtree(partial, ignore_errors=True)
        return None
    return state


def _swap_into_place(partial: Path, out: Path) -> None:
    """Replace ``out`` by ``partial`` so that ``out`` is never seen half-written."""
    if out.exists():
        old = temporary_sibling(out, "old")
        os.replace(out, old)
        os.replace(partial, out)
        fsync_dir(out.parent)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(partial, out)
        fsync_dir(out.parent)


def _train_on_corpus(files, config, progress, should_stop, total):
    """Train the tokenizer on the corpus, or on its sample when it is large; returns it and what it saw."""
    started = time.perf_counter()
    plan = plan_for(files, config.tokenizer.sample_mb)
    planned = sum(end - start for start, end in plan.spans())
    counter = WordCounter(config.tokenizer.lowercase, config.tokenizer.strip_accents)
    for batch in sampled_texts(files, config.data, plan, lambda done: progress("train-tokenizer", done, planned)):
        if should_stop():
            raise Cancelled("preparing was cancelled")
        counter.add(batch)
    progress("train-tokenizer", planned, planned)

    def merged(made: int, wanted: int) -> None:
        if should_stop():
            raise Cancelled("preparing was cancelled")
        progress("build-vocabulary", made, wanted)

    tokenizer = tokenizer_from_counts(counter.counts(), config.tokenizer, merged)
    training = {**plan.to_dict(), "sampled_bytes": planned, "characters": counter.characters,
                "seconds": round(time.perf_counter() - started, 2)}
    return tokenizer, training


def _document_batches(files, config, diagnostics, reading, skip: int = 0) -> Iterator[tuple[list[Document], dict]]:
    """Batches of about BATCH_CHARS of document pieces, after the first ``skip`` pieces; each with what
    the reader has seen up to its end (for a checkpoint): pieces consumed, bytes read, reader findings."""
    batch: list[Document] = []
    chars = 0
    consumed = 0
    for doc in read_documents(files, config.data, diagnostics, reading):
        consumed += 1
        if consumed <= skip:
            continue
        batch.append(doc)
        chars += sum(map(len, doc.sentences))
        if chars >= BATCH_CHARS:
            yield batch, {"pieces": consumed, "bytes_read": reading.bytes_done, "reader": diagnostics.to_dict()}
            batch, chars = [], 0
    if batch:
        yield batch, {"pieces": consumed, "bytes_read": reading.bytes_done, "reader": diagnostics.to_dict()}


def _prefetch(iterator: Iterator, depth: int = 2) -> Iterator:
    """Run ``iterator`` on a thread so that reading overlaps tokenizing (which releases the GIL)."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(("done", done))
        except BaseException as exc:  # handed to the consumer, raised there
            items.put(("error", exc))

    thread = threading.Thread(target=produce, name="corpus-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        stop.set()
        thread.join(timeout=5)


class TokenWriter:
    """Tokenizes the corpus into ``tokens.bin`` and the offset files of ``folder``, checkpointing as it goes
    (see ``workbench.data.prepare_checkpoint``); ``resume`` is the checkpoint to go on from."""

    FILES = ("tokens.bin", "sentence_offsets.bin", "document_offsets.bin")

    def __init__(self, files, config, tokenizer, folder: Path, fingerprint: str, training: dict | None,
                 resume: dict | None):
        self.files, self.config, self.tokenizer, self.folder = files, config, tokenizer, folder
        self.fingerprint, self.training, self.resume = fingerprint, training, resume
        vocab_size = tokenizer.get_vocab_size()
        self.dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32
        self.writer_findings = Diagnostics()
        self.stats = CorpusStatsBuilder(config.data.max_seq_length, self.writer_findings)
        self.n_tokens = self.n_sentences = self.n_documents = 0
        self.carried_sentences = self.carried_tokens = 0  # of a document whose pieces began in an earlier batch
        if resume is not None:
            self.n_tokens, self.n_sentences, self.n_documents = (int(resume[k]) for k in
                                                                 ("tokens", "sentences", "documents"))
            self.carried_sentences, self.carried_tokens = int(resume["carried"][0]), int(resume["carried"][1])
            self.stats.restore(resume["stats"])
            self.writer_findings.findings.update(Diagnostics.from_dict(resume["writer"]).findings)

    def run(self, listing: Diagnostics, progress, should_stop, total) -> tuple[dict, dict]:
        unk_id = self.tokenizer.token_to_id("[UNK]")
        encoder = SentenceEncoder(self.tokenizer)
        reading = ReadProgress()
        reader_findings = Diagnostics()
        skip = int(self.resume["pieces"]) if self.resume else 0
        mode = "ab" if self.resume else "wb"
        last_checkpoint = time.monotonic()
        with writing(self.folder), open(self.folder / "tokens.bin", mode) as tok_f, \
                open(self.folder / "sentence_offsets.bin", mode) as sent_f, \
                open(self.folder / "document_offsets.bin", mode) as doc_f:
            handles = (tok_f, sent_f, doc_f)
            if not self.resume:
                sent_f.write(np.zeros(1, np.int64).tobytes())
                doc_f.write(np.zeros(1, np.int64).tobytes())
                self._checkpoint(handles, {"pieces": 0, "bytes_read": 0, "reader": {}})
            else:
                progress("resume", 0, total)
            for pieces, seen in _prefetch(_document_batches(self.files, self.config, reader_findings, reading, skip)):
                if should_stop():
                    raise Cancelled("preparing was cancelled; preparing the same corpus again goes on from "
                                    "where it stopped")
                self._write_batch(pieces, encoder, unk_id, handles)
                progress("tokenize", seen["bytes_read"], total)
                if time.monotonic() - last_checkpoint >= CHECKPOINT_SECONDS:
                    self._checkpoint(handles, seen)
                    last_checkpoint = time.monotonic()
            if self.carried_sentences:  # the reader always ends a document; this only guards the offsets
                doc_f.write(np.array([self.n_sentences], np.int64).tobytes())
                self.n_documents += 1
        if self.n_tokens == 0:
            raise DatasetError("corpus has no text that the tokenizer turns into tokens")
        progress("tokenize", total, total)
        counts = {"documents": self.n_documents, "sentences": self.n_sentences, "tokens": self.n_tokens,
                  "characters": self.stats.characters, "bytes": total,
                  "vocab_size": self.tokenizer.get_vocab_size(), "dtype": np.dtype(self.dtype).name}
        findings = Diagnostics.merged(listing, reader_findings, self.writer_findings)
        return counts, self.stats.finish(counts, findings)

    def _checkpoint(self, handles, seen: dict) -> None:
        """Flush the files and record, durably, how far they are complete (``seen``: the reader's side)."""
        for handle in handles:
            handle.flush()
            os.fsync(handle.fileno())
        write_checkpoint(self.folder, {
            "fingerprint": self.fingerprint, "training": self.training,
            "pieces": seen["pieces"], "bytes_read": seen["bytes_read"], "reader": seen["reader"],
            "sizes": {name: handle.tell() for name, handle in zip(self.FILES, handles)},
            "tokens": self.n_tokens, "sentences": self.n_sentences, "documents": self.n_documents,
            "carried": [self.carried_sentences, self.carried_tokens],
            "stats": self.stats.state(), "writer": self.writer_findings.to_dict(),
        })

    def _write_batch(self, pieces: list[Document], encoder, unk_id: int, handles) -> None:
        tok_f, sent_f, doc_f = handles
        texts = [s for d in pieces for s in d.sentences]
        lengths, flat = encoder.encode(texts, self.dtype)
        piece_of_sentence = np.repeat(np.arange(len(pieces)), [len(d.sentences) for d in pieces])
        kept = lengths > 0
        if not kept.all():
            first = int(np.flatnonzero(~kept)[0])
            self.writer_findings.note("empty_sentence", _where(pieces, piece_of_sentence, first), int((~kept).sum()))
        self.stats.add_sentences(sum(len(t) for t, k in zip(texts, kept) if k), lengths, kept, flat, unk_id,
                                 lambda i: _where(pieces, piece_of_sentence, i))
        tok_f.write(flat.tobytes())
        kept_lengths = lengths[kept]
        sent_f.write((self.n_tokens + np.cumsum(kept_lengths)).astype(np.int64).tobytes())

        # Pieces -> documents: a piece with ``more`` set goes on in the next piece (maybe the next batch).
        ends = np.fromiter((not d.more for d in pieces), dtype=bool, count=len(pieces))
        doc_of_piece = np.concatenate(([0], np.cumsum(ends[:-1]))).astype(np.int64)
        n_docs = int(doc_of_piece[-1]) + 1
        doc_of_sentence = doc_of_piece[piece_of_sentence]
        sentences_per_doc = np.bincount(doc_of_sentence[kept], minlength=n_docs)
        tokens_per_doc = np.bincount(doc_of_sentence, weights=lengths, minlength=n_docs).astype(np.int64)
        doc_ends = self.n_sentences + np.cumsum(sentences_per_doc)  # sentence offset where each document ends
        sentences_per_doc[0] += self.carried_sentences
        tokens_per_doc[0] += self.carried_tokens
        closed = n_docs if ends[-1] else n_docs - 1
        written = np.flatnonzero(sentences_per_doc[:closed] > 0)
        doc_f.write(doc_ends[written].astype(np.int64).tobytes())
        self.stats.add_documents(sentences_per_doc[written], tokens_per_doc[written],
                                 lambda i: pieces[int(np.searchsorted(doc_of_piece, written[i]))].where)
        self.carried_sentences, self.carried_tokens = ((0, 0) if ends[-1] else
                                                       (int(sentences_per_doc[-1]), int(tokens_per_doc[-1])))
        self.n_tokens += int(kept_lengths.sum())
        self.n_sentences += int(kept.sum())
        self.n_documents += len(written)


def _where(pieces: list[Document], piece_of_sentence: np.ndarray, i: int) -> str:
    piece = pieces[int(piece_of_sentence[i])]
    first_of_piece = int(np.searchsorted(piece_of_sentence, piece_of_sentence[i]))
    return f"{piece.path}:{piece.lines[i - first_of_piece]}"


