"""Reading a corpus: files and folders -> a stream of documents of sentences.

Formats:
  * ``.txt`` / ``.md`` (and any file named explicitly): a blank line separates
    documents; each line is a sentence, long lines are split (see
    ``DataConfig.sentences``).
  * ``.jsonl``: one document per line, its text in ``DataConfig.text_field``.
  * ``.csv``: one document per row, its text in the ``text_field`` column.
  * any of these compressed with gzip, bz2, xz or zstd (``.txt.gz``, ``.jsonl.zst``...;
    recognised by their first bytes too), see ``workbench.data.compressed``;
  * ``.parquet``, ``.arrow`` and ``datasets`` folders (``save_to_disk``): one document
    per row, its text in the ``text_field`` column, see ``workbench.data.columnar``.

Folders are walked recursively in sorted order, hidden entries skipped.
Everything streams: files are read line by line (a line is read in pieces of
at most ``LINE_BYTES``), columnar files a batch of rows at a time, and a
document longer than ``PIECE_CHARS`` comes in pieces (``Document.more``), so
memory does not grow with corpus size. Problems that make a file unusable
raise ``CorpusError`` naming the file and line; problems that can be worked
around are counted in ``Diagnostics``.
"""

from __future__ import annotations

import codecs
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

from workbench.config import DataConfig
from workbench.data.columnar import (
    ARROW_SUFFIXES, DATASETS_STATE, PARQUET_MAGIC, PARQUET_SUFFIXES, datasets_shards, text_records,
)
from workbench.data.compressed import (
    COMPRESSION_SUFFIXES, compression_of, compression_suffix, damaged, decompression_errors, open_contents,
    read_head,
)
from workbench.data.diagnostics import Diagnostics
from workbench.data.records import MAX_RECORD_BYTES, csv_rows, json_object
from workbench.data.sentences import MAX_SENTENCE_CHARS, cut_long, split_sentences
from workbench.errors import CorpusError

TEXT_SUFFIXES = {".txt", ".md", ".text", ".markdown", ".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv"}
# What prepare and the window take (the one list: the CLI help, the file dialog and drag-and-drop read it).
# A compressed file is taken by its compression suffix; in a folder, only when the suffix under it is one
# of the others (``a.txt.gz``).
CORPUS_SUFFIXES = tuple(sorted(TEXT_SUFFIXES | JSONL_SUFFIXES | CSV_SUFFIXES | PARQUET_SUFFIXES | ARROW_SUFFIXES
                               | set(COMPRESSION_SUFFIXES)))
LINE_BYTES = 1 << 20  # a longer line is read (and split) in pieces of this size
PIECE_CHARS = 1 << 20  # a longer document (a file without blank lines) is handed on in pieces of this size
SNIFF_BYTES = 8192


@dataclass(frozen=True)
class CorpusFile:
    """One file of a corpus, with what identifies its content for the fingerprint."""

    path: str
    kind: str  # "text" | "jsonl" | "csv" | "parquet" | "arrow"
    size: int
    mtime_ns: int
    compression: str = ""  # "" | "gzip" | "bz2" | "xz" | "zstd"


@dataclass
class Document:
    """A document: its sentences, and the line (or row) in ``path`` each sentence starts on. ``more``: the
    document goes on in the next one read (a long document comes in pieces, to keep memory bounded)."""

    sentences: list[str]
    lines: list[int]
    path: str
    more: bool = False

    @property
    def where(self) -> str:
        return f"{self.path}:{self.lines[0]}" if self.lines else self.path


def _kind_of(path: Path) -> str | None:
    compressed = compression_suffix(path)
    suffix = (path.with_suffix("") if compressed else path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return None if compressed else "parquet"
    if suffix in ARROW_SUFFIXES:
        return None if compressed else "arrow"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in TEXT_SUFFIXES or (compressed and not suffix):  # "notes.gz": compressed text
        return "text"
    return None


def list_corpus_files(paths: Sequence[str | os.PathLike], diagnostics: Diagnostics | None = None) -> list[CorpusFile]:
    """Resolve files and folders into the corpus files to read, in a stable order."""
    if not paths:
        raise CorpusError("no corpus given: name one or more files or folders")
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    files: list[CorpusFile] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise CorpusError(f"{path}: no such file or folder")
        if path.is_dir():
            found = _walk_folder(path, diagnostics)
            if not found:
                raise CorpusError(
                    f"{path}: folder has no readable corpus files "
                    f"(looked for {', '.join(CORPUS_SUFFIXES)})"
                )
            files.extend(found)
        else:
            files.append(_corpus_file(path, _kind_of(path) or "text"))
    files = [_sniff(f) for f in files]
    nonempty = [f for f in files if f.size > 0]
    for f in files:
        if f.size == 0:
            diagnostics.note("empty_file", f.path)
    if not nonempty:
        raise CorpusError(f"{files[0].path}: corpus is empty" if len(files) == 1 else "corpus is empty: every file has 0 bytes")
    return nonempty


def _walk_folder(folder: Path, diagnostics: Diagnostics) -> list[CorpusFile]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if DATASETS_STATE in names:  # a datasets folder: its shards, in its order, and nothing else
            found.extend(_corpus_file(shard, "arrow") for shard in datasets_shards(Path(root)))
            dirs[:] = []
            continue
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(root) / name
            kind = _kind_of(path)
            if kind is None:
                diagnostics.note("skipped_file", str(path))
                continue
            if os.access(path, os.R_OK):
                found.append(_corpus_file(path, kind))
    return found


def _corpus_file(path: Path, kind: str) -> CorpusFile:
    try:
        stat = path.stat()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    return CorpusFile(str(path), kind, stat.st_size, stat.st_mtime_ns)


def _sniff(f: CorpusFile) -> CorpusFile:
    """Look at the first bytes: find the compression (or a Parquet file under another name) and refuse
    binary files. Damaged compressed data at the start of a file is found here, before anything is written."""
    try:
        with open(f.path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError as exc:
        raise CorpusError(f"{f.path}: cannot read ({exc.strerror})") from None
    if f.kind in ("parquet", "arrow"):
        return f
    if head.startswith(PARQUET_MAGIC):
        return replace(f, kind="parquet")
    compression = compression_of(Path(f.path), head)
    if compression:
        f = replace(f, compression=compression)
        head = read_head(f.path, compression, SNIFF_BYTES)
    nul = head.find(b"\x00")
    if nul >= 0:
        raise CorpusError(
            f"{f.path}: looks like a binary file (NUL byte at offset {nul}); only UTF-8 text is read"
        )
    return f


# --- decoding -----------------------------------------------------------------

_replacements = threading.local()


def _count_and_replace(exc: UnicodeDecodeError) -> tuple[str, int]:
    _replacements.count = getattr(_replacements, "count", 0) + (exc.end - exc.start)
    return "\ufffd", exc.end


codecs.register_error("workbench-count-replace", _count_and_replace)


class ReadProgress:
    """Bytes of the corpus consumed so far; the reader adds to it as it goes."""

    def __init__(self) -> None:
        self.bytes_done = 0


def _iter_lines(f: CorpusFile, config: DataConfig, diagnostics: Diagnostics, progress: ReadProgress,
                limit: int = LINE_BYTES) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of a file; a line longer than ``limit`` bytes comes in pieces."""
    errors = "strict" if config.encoding_errors == "strict" else "workbench-count-replace"
    decoder = codecs.getincrementaldecoder("utf-8")(errors=errors)
    lineno = 0
    continuing = False
    start = progress.bytes_done
    broken = decompression_errors()
    with open_contents(f.path, f.compression) as (handle, counting):
        while True:
            try:
                raw = handle.readline(limit)
            except broken as exc:
                raise damaged(f.path, f.compression, f"after line {lineno} ", exc) from None
            if not raw:
                break
            progress.bytes_done = start + counting.count
            piece_of_longer_line = continuing
            if not continuing:
                lineno += 1
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8):]
            complete = raw.endswith(b"\n")
            if not complete and len(raw) >= limit:
                if not continuing:
                    diagnostics.note("long_line", f"{f.path}:{lineno}")
                continuing = True
            else:
                continuing = False
            before = getattr(_replacements, "count", 0)
            try:
                text = decoder.decode(raw, final=complete or not continuing)
            except UnicodeDecodeError as exc:
                bad = raw[exc.start] if 0 <= exc.start < len(raw) else None
                byte = f"byte 0x{bad:02x}" if bad is not None else "a truncated character"
                raise CorpusError(
                    f"{f.path}:{lineno}: invalid UTF-8 ({byte}); fix the file or read it with "
                    "encoding_errors = \"replace\" (--encoding-errors replace)"
                ) from None
            replaced = getattr(_replacements, "count", 0) - before
            if replaced:
                diagnostics.note("replaced_bytes", f"{f.path}:{lineno}", replaced)
            text = text.rstrip("\r\n")
            if text or not piece_of_longer_line:  # the bare end of a long line is not a blank line
                yield lineno, text


# --- documents -----------------------------------------------------------------

def _line_sentences(line: str, config: DataConfig, where: str, diagnostics: Diagnostics) -> list[str]:
    line = line.strip()
    if not line:
        return []
    if config.sentences == "lines" or len(line) <= config.split_lines_longer_than:
        pieces = [" ".join(line.split())]
    else:
        pieces = split_sentences(line)
    out = []
    for piece in pieces:
        if len(piece) > MAX_SENTENCE_CHARS:
            diagnostics.note("long_sentence_chars", where)
            out.extend(cut_long(piece))
        else:
            out.append(piece)
    return out


def _paragraph_document(text_lines: list[tuple[int, str]], path: str, config: DataConfig, diagnostics: Diagnostics) -> Document:
    """Turn the lines of one document into sentences according to ``config.sentences``."""
    doc = Document([], [], path)
    if config.sentences == "wrapped":
        # Join hard-wrapped lines into paragraphs (a paragraph ends at a blank line,
        # which only occurs inside JSONL/CSV records), then split sentences.
        block: list[tuple[int, str]] = []
        for item in text_lines + [(0, "")]:
            if item[1].strip():
                block.append(item)
                continue
            if block:
                joined = " ".join(t for _, t in block)
                for sentence in split_sentences(joined):
                    doc.sentences.append(sentence)
                    doc.lines.append(block[0][0])
                block = []
        return doc
    for lineno, line in text_lines:
        for sentence in _line_sentences(line, config, f"{path}:{lineno}", diagnostics):
            doc.sentences.append(sentence)
            doc.lines.append(lineno)
    return doc


def _text_documents(f: CorpusFile, config: DataConfig, diagnostics: Diagnostics,
                    progress: ReadProgress) -> Iterator[Document]:
    pending: list[tuple[int, str]] = []
    pending_chars = 0
    continued = False  # a piece with ``more`` was handed on: the next document must end it
    for lineno, line in _iter_lines(f, config, diagnostics, progress):
        if line.strip():
            pending.append((lineno, line))
            pending_chars += len(line)
            if pending_chars < PIECE_CHARS:
                continue
            # A document this long (a file with no blank lines) goes on in pieces; the dataset keeps it whole.
            doc = _paragraph_document(pending, f.path, config, diagnostics)
            pending, pending_chars = [], 0
            if doc.sentences:
                doc.more = continued = True
                yield doc
            continue
        if pending:
            doc = _paragraph_document(pending, f.path, config, diagnostics)
            pending, pending_chars = [], 0
            if doc.sentences or continued:
                continued = False
                yield doc
    if pending or continued:
        yield _paragraph_document(pending, f.path, config, diagnostics)


def _record_document(text: str, f: CorpusFile, lineno: int, config: DataConfig, diagnostics: Diagnostics) -> Document | None:
    lines = [(lineno, part) for part in text.split("\n")]
    doc = _paragraph_document(lines, f.path, config, diagnostics)
    if not doc.sentences:
        diagnostics.note("empty_document", f"{f.path}:{lineno}")
        return None
    return doc


def _jsonl_documents(f: CorpusFile, config: DataConfig, diagnostics: Diagnostics,
                     progress: ReadProgress) -> Iterator[Document]:
    field_name = config.text_field
    for lineno, line in _iter_lines(f, config, diagnostics, progress, limit=MAX_RECORD_BYTES):
        if not line.strip():
            continue
        record = json_object(line, f"{f.path}:{lineno}", CorpusError)
        if field_name not in record:
            fields = ", ".join(sorted(map(str, record))) or "none"
            raise CorpusError(
                f"{f.path}:{lineno}: record has no {field_name!r} field (fields: {fields}); "
                "choose the field with --text-field"
            )
        text = record[field_name]
        if not isinstance(text, str):
            raise CorpusError(f"{f.path}:{lineno}: field {field_name!r} must be a string, got {type(text).__name__}")
        doc = _record_document(text, f, lineno, config, diagnostics)
        if doc is not None:
            yield doc


def _csv_documents(f: CorpusFile, config: DataConfig, diagnostics: Diagnostics,
                   progress: ReadProgress) -> Iterator[Document]:
    errors = "strict" if config.encoding_errors == "strict" else "workbench-count-replace"
    start = progress.bytes_done
    with open_contents(f.path, f.compression) as (handle, counting):
        header, rows = csv_rows(f.path, CorpusError, errors=errors,
                                encoding_hint="fix the file or use --encoding-errors replace", binary=handle)
        if not header:
            return
        if config.text_field not in header:
            raise CorpusError(
                f"{f.path}: no column {config.text_field!r} (columns: {', '.join(header)}); "
                "choose the column with --text-field"
            )
        column = header.index(config.text_field)
        for line, row in rows:
            progress.bytes_done = start + counting.count
            if column >= len(row):
                diagnostics.note("empty_document", f"{f.path}:{line}")
                continue
            doc = _record_document(row[column], f, line, config, diagnostics)
            if doc is not None:
                yield doc


def _columnar_documents(f: CorpusFile, config: DataConfig, diagnostics: Diagnostics,
                        progress: ReadProgress) -> Iterator[Document]:
    start = progress.bytes_done
    position = [0.0]
    for row, text in text_records(f.path, f.kind, config.text_field, position):
        progress.bytes_done = start + int(f.size * position[0])
        if not text:
            diagnostics.note("empty_document", f"{f.path}:{row}")
            continue
        doc = _record_document(text, f, row, config, diagnostics)
        if doc is not None:
            yield doc


def read_documents(files: Sequence[CorpusFile], config: DataConfig, diagnostics: Diagnostics,
                   progress: ReadProgress | None = None) -> Iterator[Document]:
    """Stream the documents of the given corpus files, in order. A document with ``more`` set goes on in
    the next one; a piece may have no sentences when it only ends its document."""
    readers = {"text": _text_documents, "jsonl": _jsonl_documents, "csv": _csv_documents,
               "parquet": _columnar_documents, "arrow": _columnar_documents}
    progress = progress or ReadProgress()
    broken = decompression_errors()
    for f in files:
        start = progress.bytes_done
        try:
            yield from readers[f.kind](f, config, diagnostics, progress)
        except broken as exc:
            raise damaged(f.path, f.compression or f.kind, "", exc) from None
        except OSError as exc:
            raise CorpusError(f"{f.path}: cannot read ({exc.strerror or exc})") from None
        progress.bytes_done = start + f.size


def read_corpus(paths: Sequence[str | os.PathLike], config: DataConfig | None = None,
                diagnostics: Diagnostics | None = None) -> Iterator[Document]:
    """Convenience: list the files of ``paths`` and stream their documents."""
    config = config or DataConfig()
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    return read_documents(list_corpus_files(paths, diagnostics), config, diagnostics)


def total_bytes(files: Sequence[CorpusFile]) -> int:
    """Total bytes of the corpus files (for progress)."""
    return sum(f.size for f in files)

