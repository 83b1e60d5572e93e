"""Columnar corpus files: Parquet, Arrow IPC files, and Hugging Face ``datasets`` folders
(``save_to_disk``: a ``state.json`` naming Arrow shards). All are read with ``pyarrow`` (the ``parquet``
extra), a batch of rows at a time, so memory holds one batch whatever the file size.

``text_records`` yields ``(row number, text)`` from the text column (``DataConfig.text_field``);
rows are numbered from 1 across the whole file, and serve where text files give line numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from workbench.data.optional import needed_package
from workbench.errors import CorpusError

PARQUET_SUFFIXES = {".parquet", ".pq"}
ARROW_SUFFIXES = {".arrow"}
DATASETS_STATE = "state.json"  # what marks a folder written by ``datasets``' save_to_disk
PARQUET_MAGIC = b"PAR1"
ROWS_PER_BATCH = 1024


def _pyarrow(path: str):
    return needed_package("pyarrow", path, "Parquet and Arrow files", "parquet")


def datasets_shards(folder: Path) -> list[Path]:
    """The Arrow shards of a ``datasets`` folder, in the order its ``state.json`` lists them."""
    state_path = folder / DATASETS_STATE
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        names = [entry["filename"] for entry in state["_data_files"]]
        if not all(isinstance(name, str) and name and "/" not in name and "\\" not in name for name in names):
            raise ValueError("a shard name is not a plain file name")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CorpusError(f"{state_path}: not a readable datasets state file ({exc})") from None
    if not names:
        raise CorpusError(f"{state_path}: lists no data files")
    shards = [folder / name for name in names]
    missing = [shard.name for shard in shards if not shard.is_file()]
    if missing:
        raise CorpusError(f"{folder}: the dataset lists {len(shards)} Arrow shard(s) but "
                          f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing; "
                          "copy the whole folder again")
    return shards


def _column_index(schema, field: str, path: str) -> int:
    names = list(schema.names)
    if field not in names:
        raise CorpusError(f"{path}: no column {field!r} (columns: {', '.join(names) or 'none'}); "
                          "choose the column with --text-field")
    pa = _pyarrow(path)
    kind = schema.field(field).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        raise CorpusError(f"{path}: column {field!r} holds {kind}, not text; choose the text column with "
                          "--text-field")
    return names.index(field)


def text_records(path: str, kind: str, field: str, position: list[float]) -> Iterator[tuple[int, str | None]]:
    """``(row, text)`` of every row of a Parquet (``kind="parquet"``) or Arrow file. ``position[0]`` is set to
    the share of the file read so far (0..1), for progress."""
    pa = _pyarrow(path)
    try:
        if kind == "parquet":
            yield from _parquet_records(pa, path, field, position)
        else:
            yield from _arrow_records(pa, path, field, position)
    except (pa.ArrowInvalid, pa.ArrowIOError, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        label = "Parquet" if kind == "parquet" else "Arrow"
        raise CorpusError(f"{path}: not a readable {label} file ({detail})") from None


def _parquet_records(pa, path: str, field: str, position: list[float]) -> Iterator[tuple[int, str | None]]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    _column_index(parquet.schema_arrow, field, path)
    total = max(1, parquet.metadata.num_rows)
    row = 0
    for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=[field]):
        for text in batch.column(0).to_pylist():
            row += 1
            yield row, text
        position[0] = row / total


def _arrow_records(pa, path: str, field: str, position: list[float]) -> Iterator[tuple[int, str | None]]:
    import pyarrow.ipc as ipc

    size = max(1, Path(path).stat().st_size)
    with pa.OSFile(path, "rb") as source:
        try:  # datasets writes the stream format; the file format (with a footer) is read in order too
            reader = ipc.open_stream(source)
            batches = iter(reader)
        except pa.ArrowInvalid:
            source.seek(0)
            file_reader = ipc.open_file(source)
            reader = file_reader
            batches = (file_reader.get_batch(i) for i in range(file_reader.num_record_batches))
        column = _column_index(reader.schema, field, path)
        row = 0
        for batch in batches:
            for text in batch.column(column).to_pylist():
                row += 1
                yield row, text
            position[0] = min(1.0, source.tell() / size)
