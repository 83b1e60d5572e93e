"""The text a tokenizer is trained on: the whole corpus when it is small, else a reproducible sample.

The sample is taken in evenly spaced stretches: the corpus (its files in order, as bytes on disk) is
cut into ``STRETCHES`` equal parts and the first ``sample / corpus`` share of each part is read. No
randomness, the same stretches on every machine, and every region of the corpus is represented (a
corpus sorted by topic or language is not sampled from its head only). Uncompressed text and JSONL
files are read only where the sample lies (a seek to each stretch, then to the next line); compressed
and columnar files are read through, and a document belongs to the sample when it ends inside a stretch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Sequence

from workbench.config import DataConfig
from workbench.data.corpus import CorpusFile, ReadProgress, read_documents
from workbench.data.diagnostics import Diagnostics
from workbench.data.wordpiece_training import batched_by_chars

STRETCHES = 64
SAMPLE_BATCH_CHARS = 1 << 20  # text handed to the word counter at once


@dataclass(frozen=True)
class SamplePlan:
    """Which bytes of the corpus the tokenizer is trained on."""

    corpus_bytes: int
    sample_bytes: int   # wanted (0: the whole corpus)
    stretches: int = STRETCHES

    @property
    def whole(self) -> bool:
        return self.sample_bytes == 0 or self.sample_bytes >= self.corpus_bytes

    def spans(self) -> list[tuple[int, int]]:
        """``[start, end)`` corpus offsets of the sampled bytes."""
        if self.whole:
            return [(0, self.corpus_bytes)]
        step = self.corpus_bytes / self.stretches
        length = self.sample_bytes / self.stretches
        return [(int(k * step), int(k * step + length)) for k in range(self.stretches)]

    def to_dict(self) -> dict:
        return {**asdict(self), "whole": self.whole}


def describe_training(manifest: dict) -> str:
    """One line on what the dataset's tokenizer was trained on (the CLI and the Corpus panel show it)."""
    training = manifest.get("tokenizer", {}).get("training")
    if not training:
        return "tokenizer given (not trained on this corpus)"
    corpus = _megabytes(training["corpus_bytes"])
    if training["whole"]:
        return f"tokenizer trained on the whole corpus ({corpus} on disk) in {training['seconds']:.0f} s"
    return (f"tokenizer trained on a {_megabytes(training['sampled_bytes'])} sample of the {corpus} on disk "
            f"({training['stretches']} evenly spaced stretches) in {training['seconds']:.0f} s; "
            "the statistics are from the whole corpus")


def _megabytes(count: int) -> str:
    mb = count / 1e6
    return f"{mb:,.1f} MB" if mb < 100 else f"{mb:,.0f} MB"


def plan_for(files: Sequence[CorpusFile], sample_mb: int) -> SamplePlan:
    return SamplePlan(sum(f.size for f in files), sample_mb * 1_000_000)


def sampled_texts(files: Sequence[CorpusFile], config: DataConfig, plan: SamplePlan,
                  progress: Callable[[int], None] = lambda done: None) -> Iterator[list[str]]:
    """Batches of the sampled text (sentences or lines) for the word counter; ``progress(bytes)`` as it goes."""
    if plan.whole:
        reading = ReadProgress()
        documents = read_documents(files, config, Diagnostics(), reading)
        yield from batched_by_chars(_sentences(documents, reading, progress), SAMPLE_BATCH_CHARS)
        return
    spans = plan.spans()
    offset = 0
    done = 0
    for f in files:
        inside = [(max(start, offset) - offset, min(end, offset + f.size) - offset)
                  for start, end in spans if start < offset + f.size and end > offset]
        if inside:
            if f.compression == "" and f.kind in ("text", "jsonl"):
                texts = _seek_lines(f, config, inside)
            else:
                texts = _filtered(f, config, inside)
            for batch in batched_by_chars(texts, SAMPLE_BATCH_CHARS):
                yield batch
            done += sum(end - start for start, end in inside)
            progress(done)
        offset += f.size


def _sentences(documents, reading: ReadProgress, progress) -> Iterator[str]:
    for i, document in enumerate(documents):
        if i % 64 == 0:
            progress(reading.bytes_done)
        yield from document.sentences


def _seek_lines(f: CorpusFile, config: DataConfig, inside: list[tuple[int, int]]) -> Iterator[str]:
    """The lines starting inside each ``[start, end)`` of an uncompressed file (the text field, for JSONL).
    Undecodable bytes are replaced here: the full pass that follows reports them with their line."""
    with open(f.path, "rb") as handle:
        for start, end in inside:
            handle.seek(start)
            if start > 0:
                handle.seek(start - 1)
                handle.readline()  # to the start of the next line (stays put if start begins a line)
            while handle.tell() < end:
                raw = handle.readline()
                if not raw:
                    break
                text = raw.decode("utf-8", errors="replace")
                if f.kind == "jsonl":
                    try:
                        record = json.loads(text)
                        text = record.get(config.text_field) if isinstance(record, dict) else None
                    except ValueError:
                        continue
                    if not isinstance(text, str):
                        continue
                if text.strip():
                    yield text


def _filtered(f: CorpusFile, config: DataConfig, inside: list[tuple[int, int]]) -> Iterator[str]:
    """The sentences of the documents of ``f`` that end inside one of the ``[start, end)`` ranges."""
    reading = ReadProgress()
    last = inside[-1][1]
    k = 0
    for document in read_documents([f], config, Diagnostics(), reading):
        position = reading.bytes_done
        while k < len(inside) and position >= inside[k][1]:
            k += 1
        if k == len(inside) or position >= last:
            return
        if position >= inside[k][0]:
            yield from document.sentences
