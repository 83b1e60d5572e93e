"""Compressed corpus files: which compression a file has (by its first bytes, else its suffix) and a
byte stream of its contents that counts how much of the file on disk has been consumed.

gzip, bz2 and xz come with Python; zstd needs the ``zstandard`` package (the ``zstd`` extra). Damaged
or truncated data raises ``CorpusError`` naming the file (see ``damaged``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

from workbench.data.optional import needed_package
from workbench.errors import CorpusError

# suffix -> compression; the magic bytes each starts with
COMPRESSION_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd", ".zstd": "zstd"}
MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


def compression_suffix(path: Path) -> str:
    """The compression suffix of ``path`` (``".gz"``), or ``""``."""
    suffix = path.suffix.lower()
    return suffix if suffix in COMPRESSION_SUFFIXES else ""


def compression_of(path: Path, head: bytes) -> str:
    """``""`` for a plain file, else ``gzip``/``bz2``/``xz``/``zstd``: the magic bytes decide, the suffix
    is the fallback (an empty ``.gz`` file has no magic)."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    return COMPRESSION_SUFFIXES.get(compression_suffix(path), "") if not head else ""


class CountingReader(io.RawIOBase):
    """A raw file that counts the bytes read from it (the compressed bytes, for a compressed file). Each read
    returns at most ``READ_BYTES``, so that ``count`` follows the decompressor closely (progress and the
    tokenizer sample's stretches are placed by it)."""

    READ_BYTES = 1 << 14

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._raw.readinto(memoryview(buffer)[: self.READ_BYTES]) or 0
        self.count += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


@contextmanager
def open_contents(path: str, compression: str) -> Iterator[tuple[BinaryIO, CountingReader]]:
    """The decompressed contents of ``path`` as a buffered binary stream, and the counter of file bytes."""
    try:
        counting = CountingReader(open(path, "rb", buffering=0))
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror or exc})") from None
    stream: BinaryIO
    try:
        if compression == "":
            stream = io.BufferedReader(counting, 1 << 16)
        elif compression == "gzip":
            stream = gzip.GzipFile(fileobj=counting, mode="rb")
        elif compression == "bz2":
            stream = bz2.BZ2File(counting, mode="rb")
        elif compression == "xz":
            stream = lzma.LZMAFile(counting, mode="rb")
        elif compression == "zstd":
            zstandard = _zstandard(path)
            reader = zstandard.ZstdDecompressor().stream_reader(counting, read_across_frames=True)
            stream = io.BufferedReader(reader, 1 << 16)
        else:
            raise ValueError(compression)
        with stream:
            yield stream, counting
    finally:
        counting.close()


def _zstandard(path: str):
    return needed_package("zstandard", path, "zstd-compressed files", "zstd")


def decompression_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean compressed data is damaged or cut short."""
    errors: list[type[BaseException]] = [EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def damaged(path: str, compression: str, where: str, exc: BaseException) -> CorpusError:
    """The error for damaged compressed data: the file, how far reading got, what the decoder said."""
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, EOFError):
        detail = "the file ends before the compressed data does: it was cut short"
    return CorpusError(f"{path}: {compression} data is damaged {where}({detail})")


def read_head(path: str, compression: str, size: int) -> bytes:
    """The first ``size`` bytes of the contents (decompressed), or ``CorpusError`` if they cannot be read."""
    with open_contents(path, compression) as (stream, _):
        try:
            return stream.read(size)
        except decompression_errors() as exc:
            raise damaged(path, compression, "at its start ", exc) from None
        except OSError as exc:  # bz2 says "Invalid data stream" with a plain OSError
            raise damaged(path, compression, "at its start ", exc) from None
