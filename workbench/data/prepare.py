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
from workbench.errors import DatasetError, WorkbenchError

# Which trainer made a trained tokenizer: part of the fingerprint, so a dataset made by another trainer
# (1: ``tokenizers``' WordPieceTrainer, not reproducible) is prepared again rather than reused.
TRAINER_VERSION = 2
BATCH_CHARS = 1 << 20  # text handed to encode_batch at once: large enough for both cores, small in memory

# progress(stage, done, total): stage is "train-tokenizer" or "tokenize"; done/total in bytes.
Progress = Callable[[str, int, int], None]


class Cancelled(WorkbenchError):
    """Preparing was cancelled by the user; nothing was written."""


@dataclass
class PrepareResult:
    dataset: "TokenizedDataset"
    reused: bool      # True when an up-to-date dataset was found and nothing was done
    seconds: float


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


def _tokenizer_spec(config: WorkbenchConfig) -> str:
    tok = config.tokenizer
    settings = json.dumps([tok.vocab_size, tok.lowercase, tok.strip_accents, tok.min_frequency, tok.limit_alphabet,
                           tok.sample_mb])
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
    diagnostics = Diagnostics()
    files = list_corpus_files(corpus, diagnostics)
    fingerprint = corpus_fingerprint(files, config, _tokenizer_spec(config))
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
        remove_stale_partials(out.parent, prefix=f".{out.name}.")
        partial = temporary_sibling(out)
        partial.mkdir()
    try:
        if config.tokenizer.path:
            tokenizer = load_tokenizer(config.tokenizer.path, config.tokenizer.loaded_case)
            training = None
        else:
            tokenizer, training = _train_on_corpus(files, config, progress, should_stop, total)
        with writing(out / "tokenizer.json"):
            tokenizer.save(str(partial / "tokenizer.json"))
            save_vocab_txt(tokenizer, partial / "vocab.txt")
        counts, stats = _write_tokens(files, config, tokenizer, partial, diagnostics, progress, should_stop, total)
        manifest = {
            "format_version": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "dtype": counts.pop("dtype"),
            "counts": counts,
            "tokenizer": {"sha256": tokenizer_hash(tokenizer), **describe(tokenizer),
                          **({"training": training} if training else {})},
            "corpus": [{"path": os.path.abspath(f.path), "kind": f.kind, "size": f.size} for f in files],
            "config": {"data": config.to_dict()["data"], "tokenizer": config.to_dict()["tokenizer"]},
        }
        with writing(partial):
            (partial / "stats.json").write_text(json.dumps(stats, indent=1), encoding="utf-8")
            (partial / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
            fsync_tree(partial)
            _swap_into_place(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return PrepareResult(TokenizedDataset(out), False, time.perf_counter() - started)


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


def _document_batches(files, config, diagnostics, reading) -> Iterator[list[Document]]:
    batch: list[Document] = []
    chars = 0
    for doc in read_documents(files, config.data, diagnostics, reading):
        batch.append(doc)
        chars += sum(map(len, doc.sentences))
        if chars >= BATCH_CHARS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


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


def _write_tokens(files, config, tokenizer, folder: Path, diagnostics: Diagnostics, progress, should_stop, total):
    vocab_size = tokenizer.get_vocab_size()
    dtype = np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.uint32
    unk_id = tokenizer.token_to_id("[UNK]")
    stats = CorpusStatsBuilder(config.data.max_seq_length, diagnostics)
    encoder = SentenceEncoder(tokenizer)
    reading = ReadProgress()
    n_tokens = n_sentences = n_documents = 0
    carried_sentences = carried_tokens = 0  # of a document whose pieces began in an earlier batch
    with writing(folder), open(folder / "tokens.bin", "wb") as tok_f, \
            open(folder / "sentence_offsets.bin", "wb") as sent_f, \
            open(folder / "document_offsets.bin", "wb") as doc_f:
        sent_f.write(np.zeros(1, np.int64).tobytes())
        doc_f.write(np.zeros(1, np.int64).tobytes())
        for pieces in _prefetch(_document_batches(files, config, diagnostics, reading)):
            if should_stop():
                raise Cancelled("preparing was cancelled")
            texts = [s for d in pieces for s in d.sentences]
            lengths, flat = encoder.encode(texts, dtype)
            piece_of_sentence = np.repeat(np.arange(len(pieces)), [len(d.sentences) for d in pieces])
            kept = lengths > 0
            if not kept.all():
                first = int(np.flatnonzero(~kept)[0])
                diagnostics.note("empty_sentence", _where(pieces, piece_of_sentence, first), int((~kept).sum()))
            stats.add_sentences(sum(len(t) for t, k in zip(texts, kept) if k), lengths, kept, flat, unk_id,
                                lambda i: _where(pieces, piece_of_sentence, i))
            tok_f.write(flat.tobytes())
            kept_lengths = lengths[kept]
            sent_f.write((n_tokens + np.cumsum(kept_lengths)).astype(np.int64).tobytes())

            # Pieces -> documents: a piece with ``more`` set goes on in the next piece (maybe the next batch).
            ends = np.fromiter((not d.more for d in pieces), dtype=bool, count=len(pieces))
            doc_of_piece = np.concatenate(([0], np.cumsum(ends[:-1]))).astype(np.int64)
            n_docs = int(doc_of_piece[-1]) + 1
            doc_of_sentence = doc_of_piece[piece_of_sentence]
            sentences_per_doc = np.bincount(doc_of_sentence[kept], minlength=n_docs)
            tokens_per_doc = np.bincount(doc_of_sentence, weights=lengths, minlength=n_docs).astype(np.int64)
            doc_ends = n_sentences + np.cumsum(sentences_per_doc)  # sentence offset where each document ends
            sentences_per_doc[0] += carried_sentences
            tokens_per_doc[0] += carried_tokens
            closed = n_docs if ends[-1] else n_docs - 1
            written = np.flatnonzero(sentences_per_doc[:closed] > 0)
            doc_f.write(doc_ends[written].astype(np.int64).tobytes())
            stats.add_documents(sentences_per_doc[written], tokens_per_doc[written],
                                lambda i: pieces[int(np.searchsorted(doc_of_piece, written[i]))].where)
            carried_sentences, carried_tokens = ((0, 0) if ends[-1] else
                                                 (int(sentences_per_doc[-1]), int(tokens_per_doc[-1])))
            n_tokens += int(kept_lengths.sum())
            n_sentences += int(kept.sum())
            n_documents += len(written)
            progress("tokenize", reading.bytes_done, total)
        if carried_sentences:  # the reader always ends a document; this only guards the offsets
            doc_f.write(np.array([n_sentences], np.int64).tobytes())
            n_documents += 1
    if n_tokens == 0:
        raise DatasetError("corpus has no text that the tokenizer turns into tokens")
    progress("tokenize", total, total)
    counts = {"documents": n_documents, "sentences": n_sentences, "tokens": n_tokens,
              "characters": stats.characters, "bytes": total, "vocab_size": vocab_size,
              "dtype": np.dtype(dtype).name}
    return counts, stats.finish(counts, diagnostics)


class SentenceEncoder:
    """Sentences -> (lengths, ids back to back), as ``tokenizer`` encodes each sentence on its own.

    Handing ``tokenizers`` one string per sentence costs more in per-string overhead than the encoding
    itself (short sentences, millions of them). So runs of about ``CHUNK_CHARS`` are joined with a marker
    that a copy of the tokenizer knows as a special token: text on each side of a special token is
    normalised and split on its own, so the ids between markers are exactly each sentence's ids. A run in
    which the marker text itself occurs is encoded sentence by sentence.
    """

    MARKER = "\ue000\u2063\ue001"  # private-use characters around an invisible separator: not in real text
    CHUNK_CHARS = 4096

    def __init__(self, tokenizer):
        from tokenizers import AddedToken, Tokenizer

        self._plain = tokenizer
        self._marked = Tokenizer.from_str(tokenizer.to_str())
        self._marked.add_special_tokens([AddedToken(self.MARKER, special=True, normalized=False)])
        self._marker_id = self._marked.token_to_id(self.MARKER)

    def encode(self, texts: list[str], dtype) -> tuple[np.ndarray, np.ndarray]:
        chunks: list[str] = []
        run: list[str] = []
        size = 0
        for text in texts:
            run.append(text)
            size += len(text)
            if size >= self.CHUNK_CHARS:
                chunks.append(self.MARKER.join(run) + self.MARKER)
                run, size = [], 0
        if run:
            chunks.append(self.MARKER.join(run) + self.MARKER)
        if sum(chunk.count(self.MARKER) for chunk in chunks) != len(texts):  # the marker text is in the corpus
            ids = [e.ids for e in self._plain.encode_batch_fast(texts, add_special_tokens=False)]
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            return lengths, np.fromiter(itertools.chain.from_iterable(ids), dtype=dtype, count=int(lengths.sum()))
        encodings = self._marked.encode_batch_fast(chunks, add_special_tokens=False)
        marked = np.fromiter(itertools.chain.from_iterable(e.ids for e in encodings), dtype=np.int64)
        is_marker = marked == self._marker_id
        ends = np.flatnonzero(is_marker)  # (S,) one marker after each sentence
        lengths = np.diff(ends, prepend=-1) - 1
        return lengths.astype(np.int64), marked[~is_marker].astype(dtype)


def _where(pieces: list[Document], piece_of_sentence: np.ndarray, i: int) -> str:
    piece = pieces[int(piece_of_sentence[i])]
    first_of_piece = int(np.searchsorted(piece_of_sentence, piece_of_sentence[i]))
    return f"{piece.path}:{piece.lines[i - first_of_piece]}"


