"""Reading records from ``.csv``/``.tsv`` and ``.jsonl`` files, for corpora and labelled data alike: the rows
with their line numbers, and errors that name the file and the line (an unterminated quote, invalid UTF-8,
a line that is not a JSON object) in the caller's error type."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import BinaryIO, Iterator

MAX_RECORD_BYTES = 64 * 2**20     # one CSV cell or JSONL line; a bigger one is a broken file, not a document


def csv_rows(path: str | Path, error: type[Exception], delimiter: str = ",", errors: str = "strict",
             encoding_hint: str = "fix the file", binary: BinaryIO | None = None,
             ) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and an iterator of (line number where the row starts, cells). ``errors``: how bytes that
    are not UTF-8 are decoded (``strict`` raises ``error`` naming the line; ``encoding_hint`` says what to do).
    Strict CSV: an unterminated quote is an error naming the line it opened on, not a swallowed file.
    ``binary``: the file's contents already opened (decompressed), else ``path`` is opened."""
    csv.field_size_limit(MAX_RECORD_BYTES)
    if binary is not None:
        handle = io.TextIOWrapper(binary, encoding="utf-8-sig", errors=errors, newline="")
    else:
        handle = open(path, encoding="utf-8-sig", errors=errors, newline="")
    reader = csv.reader(handle, delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except UnicodeDecodeError:
        handle.close()
        raise error(f"{path}:1: invalid UTF-8; {encoding_hint}") from None
    except csv.Error as exc:
        handle.close()
        raise error(f"{path}:1: malformed CSV header ({exc})") from None
    if header is None:
        handle.close()
        return [], iter(())

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except UnicodeDecodeError:
                    raise error(f"{path}:{reader.line_num + 1}: invalid UTF-8; {encoding_hint}") from None
                except csv.Error as exc:
                    if "end of data" in str(exc):
                        raise error(f"{path}:{start}: malformed CSV (a quoted field opened here is never "
                                    "closed)") from None
                    raise error(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
                yield start, row

    return header, rows()


def json_object(text: str, where: str, error: type[Exception]) -> dict:
    """One JSONL line as an object; ``error`` names ``where`` (``file:line``) otherwise."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise error(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record
