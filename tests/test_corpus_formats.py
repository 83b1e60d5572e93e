"""Compressed and columnar corpora: every format reads the same documents as plain text, and every
damaged or unsuitable file is a clear error naming it, with nothing half-written left behind."""

from __future__ import annotations

import gzip
import json
import sys

import pytest

from workbench.config import DataConfig
from workbench.data.corpus import ReadProgress, list_corpus_files, read_corpus, read_documents
from workbench.data.diagnostics import Diagnostics
from workbench.data.prepare import prepare_dataset
from workbench.errors import CorpusError

from conftest import write_corpus_file

TEXTS = ["First document. It has two sentences.", "Second one, alone.", "Third: Ünïcode café text. Ends here."]


def sentences_of(paths, **settings) -> list[list[str]]:
    return [d.sentences for d in read_corpus([str(p) for p in paths], DataConfig(**settings))]


@pytest.mark.parametrize("inner", [".txt", ".jsonl", ".csv"])
@pytest.mark.parametrize("compression", [".gz", ".bz2", ".xz", ".zst"])
def test_compressed_files_read_the_same_documents_as_plain_ones(tmp_path, inner, compression):
    write_corpus_file(tmp_path / f"plain{inner}", TEXTS)
    write_corpus_file(tmp_path / f"packed{inner}{compression}", TEXTS)
    expected = sentences_of([tmp_path / f"plain{inner}"])
    assert len(expected) == 3
    assert sentences_of([tmp_path / f"packed{inner}{compression}"]) == expected


def test_compression_is_recognised_by_its_first_bytes_whatever_the_name(tmp_path):
    import zstandard

    (tmp_path / "notes.txt").write_bytes(gzip.compress("\n\n".join(TEXTS).encode()))
    (tmp_path / "export.bin").write_bytes(zstandard.ZstdCompressor().compress("\n\n".join(TEXTS).encode()))
    assert sentences_of([tmp_path / "notes.txt"]) == sentences_of([tmp_path / "export.bin"])
    assert len(sentences_of([tmp_path / "notes.txt"])) == 3
    files = list_corpus_files([tmp_path / "notes.txt", tmp_path / "export.bin"])
    assert [f.compression for f in files] == ["gzip", "zstd"]


def test_progress_counts_the_bytes_on_disk_and_ends_at_the_total(tmp_path):
    import random

    rng = random.Random(0)
    texts = [" ".join(f"w{rng.randint(0, 10**6)}" for _ in range(50)) + "." for _ in range(3000)]
    write_corpus_file(tmp_path / "big.txt.gz", texts)
    files = list_corpus_files([tmp_path / "big.txt.gz"])
    progress = ReadProgress()
    seen = []
    for _ in read_documents(files, DataConfig(), Diagnostics(), progress):
        seen.append(progress.bytes_done)
    size = files[0].size
    assert seen == sorted(seen) and 0 < seen[len(seen) // 2] < size  # compressed bytes, not text
    assert progress.bytes_done == size


def test_a_truncated_gzip_is_an_error_naming_the_file_and_nothing_is_left(tmp_path, small_config):
    import random

    rng = random.Random(1)
    texts = [f"Sentence number {rng.random()} of the corpus." for _ in range(20000)]
    write_corpus_file(tmp_path / "cut.txt.gz", texts)
    data = (tmp_path / "cut.txt.gz").read_bytes()
    (tmp_path / "cut.txt.gz").write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "dataset"
    with pytest.raises(CorpusError, match=r"cut\.txt\.gz: gzip data is damaged after line \d+ .*cut short"):
        prepare_dataset([tmp_path / "cut.txt.gz"], out, small_config)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "cut.txt.gz"]  # no partial folder either


def test_a_damaged_zstd_frame_is_an_error_naming_the_file(tmp_path):
    import zstandard

    import random

    rng = random.Random(2)
    raw = "".join(json.dumps({"text": f"Row {rng.random()}."}) + "\n" for _ in range(5000)).encode()
    packed = bytearray(zstandard.ZstdCompressor().compress(raw))
    for i in range(len(packed) // 2, len(packed) // 2 + 64):
        packed[i] ^= 0x5A
    (tmp_path / "broken.jsonl.zst").write_bytes(bytes(packed))
    with pytest.raises(CorpusError, match=r"broken\.jsonl\.zst: zstd data is damaged"):
        sentences_of([tmp_path / "broken.jsonl.zst"])


def test_a_file_with_a_compression_suffix_but_garbage_inside_is_refused_before_reading(tmp_path):
    (tmp_path / "fake.txt.xz").write_bytes(b"\xfd7zXZ\x00" + b"definitely not xz data" * 10)
    with pytest.raises(CorpusError, match=r"fake\.txt\.xz: xz data is damaged at its start"):
        list_corpus_files([tmp_path / "fake.txt.xz"])


def test_parquet_and_arrow_rows_are_documents_numbered_by_row(tmp_path):
    write_corpus_file(tmp_path / "rows.parquet", TEXTS + [""])
    write_corpus_file(tmp_path / "rows.arrow", TEXTS)
    diagnostics = Diagnostics()
    out = list(read_corpus([tmp_path / "rows.parquet"], DataConfig(), diagnostics))
    assert [d.sentences for d in out] == sentences_of([tmp_path / "rows.arrow"])
    assert out[1].lines == [2] and out[1].where == f"{tmp_path / 'rows.parquet'}:2"
    assert diagnostics.findings["empty_document"].example == f"{tmp_path / 'rows.parquet'}:4"


def test_a_parquet_file_without_the_text_column_names_the_columns(tmp_path, small_config):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"id": [1, 2], "body": ["a", "b"]}), tmp_path / "wrong.parquet")
    with pytest.raises(CorpusError, match=r"wrong\.parquet: no column 'text' \(columns: id, body\).*--text-field"):
        prepare_dataset([tmp_path / "wrong.parquet"], tmp_path / "out", small_config)
    assert not (tmp_path / "out").exists()
    assert sentences_of([tmp_path / "wrong.parquet"], text_field="body") == [["a"], ["b"]]
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "numbers.parquet")
    with pytest.raises(CorpusError, match=r"numbers\.parquet: column 'text' holds int64, not text"):
        sentences_of([tmp_path / "numbers.parquet"])


def test_a_file_that_claims_to_be_parquet_but_is_not_is_a_clear_error(tmp_path):
    (tmp_path / "fake.parquet").write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(CorpusError, match=r"fake\.parquet: not a readable Parquet file"):
        sentences_of([tmp_path / "fake.parquet"])


def write_datasets_folder(folder, shards: list[list[str]], order=None) -> None:
    """A folder as ``datasets``' ``save_to_disk`` writes it: Arrow stream shards and a state.json."""
    folder.mkdir(parents=True)
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    for name, texts in zip(names, shards):
        write_corpus_file(folder / name, texts)
    listed = [names[i] for i in (order or range(len(names)))]
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": n} for n in listed],
                                                   "_fingerprint": "0", "_split": "train"}))
    (folder / "dataset_info.json").write_text("{}")


def test_a_datasets_folder_is_read_in_the_order_its_state_lists_the_shards(tmp_path):
    write_datasets_folder(tmp_path / "saved", [["Shard zero."], ["Shard one."]], order=[1, 0])
    assert sentences_of([tmp_path / "saved"]) == [["Shard one."], ["Shard zero."]]
    diagnostics = Diagnostics()
    list_corpus_files([tmp_path / "saved"], diagnostics)
    assert diagnostics.count("skipped_file") == 0  # its metadata files are not corpus files


def test_a_dataset_dict_folder_reads_every_split(tmp_path):
    root = tmp_path / "dict"
    write_datasets_folder(root / "train", [["Training text."]])
    write_datasets_folder(root / "validation", [["Validation text."]])
    (root / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "validation"]}))
    assert sentences_of([root]) == [["Training text."], ["Validation text."]]


def test_an_arrow_folder_missing_a_shard_names_it(tmp_path, small_config):
    write_datasets_folder(tmp_path / "saved", [["One."], ["Two."], ["Three."]])
    (tmp_path / "saved" / "data-00001-of-00003.arrow").unlink()
    with pytest.raises(CorpusError, match=r"saved: the dataset lists 3 Arrow shard\(s\) but "
                                          r"data-00001-of-00003\.arrow is missing"):
        prepare_dataset([tmp_path / "saved"], tmp_path / "out", small_config)
    assert not (tmp_path / "out").exists()


def test_a_missing_optional_package_names_the_extra_to_install(tmp_path, monkeypatch):
    write_corpus_file(tmp_path / "rows.parquet", TEXTS)
    write_corpus_file(tmp_path / "text.txt.zst", TEXTS)
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "zstandard", None)
    with pytest.raises(CorpusError, match=r"rows\.parquet: reading Parquet and Arrow files needs the pyarrow "
                                          r"package: pip install 'pretrain-workbench\[parquet\]'"):
        sentences_of([tmp_path / "rows.parquet"])
    with pytest.raises(CorpusError, match=r"text\.txt\.zst: reading zstd-compressed files needs the "
                                          r"zstandard package: pip install 'pretrain-workbench\[zstd\]'"):
        sentences_of([tmp_path / "text.txt.zst"])


def test_the_cli_reports_a_damaged_file_in_one_line_with_exit_2(tmp_path, capsys, monkeypatch):
    from test_cli import run_inside

    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(b'{"text": "A."}\n' * 5000)[:200])
    result = run_inside(capsys, monkeypatch, "prepare", tmp_path / "cut.jsonl.gz", "--out", tmp_path / "out")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "cut.jsonl.gz: gzip data is damaged" in result.stderr
    assert not (tmp_path / "out").exists()
