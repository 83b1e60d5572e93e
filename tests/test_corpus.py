"""Corpus reading: formats, folders, sentence splitting and every kind of bad input."""

from __future__ import annotations

import json

import pytest

from workbench.config import DataConfig
from workbench.data.corpus import LINE_BYTES, list_corpus_files, read_corpus
from workbench.data.diagnostics import Diagnostics
from workbench.data.sentences import MAX_SENTENCE_CHARS, split_sentences
from workbench.errors import CorpusError

from conftest import write_corpus_file


def docs(paths, **settings):
    diagnostics = Diagnostics()
    out = list(read_corpus([str(p) for p in paths], DataConfig(**settings), diagnostics))
    return out, diagnostics


def test_blank_lines_separate_documents_and_lines_are_sentences(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("First sentence here.\nSecond one.\n\n\n\nAnother document.\n  \nThird doc.", encoding="utf-8")
    out, _ = docs([f])
    assert [d.sentences for d in out] == [["First sentence here.", "Second one."], ["Another document."], ["Third doc."]]
    assert [d.lines for d in out] == [[1, 2], [6], [8]]
    assert out[1].where == f"{f}:6"


def test_long_lines_are_split_into_sentences_short_ones_kept(tmp_path):
    paragraph = " ".join(f"This is sentence number {i} of a long paragraph, e.g. from Wikipedia." for i in range(8))
    f = tmp_path / "a.md"
    f.write_text("Dr. Smith met Mr. Jones. They talked.\n" + paragraph + "\n", encoding="utf-8")
    out, _ = docs([f])
    sentences = out[0].sentences
    assert sentences[0] == "Dr. Smith met Mr. Jones. They talked."  # short line: kept whole
    assert len(sentences) == 9
    assert sentences[1] == "This is sentence number 0 of a long paragraph, e.g. from Wikipedia."
    out, _ = docs([f], sentences="lines")
    assert len(out[0].sentences) == 2


def test_wrapped_mode_joins_hard_wrapped_lines(tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("The quick brown fox jumps\nover the lazy dog. Then it\nran away.\n", encoding="utf-8")
    out, _ = docs([f], sentences="wrapped")
    assert out[0].sentences == ["The quick brown fox jumps over the lazy dog.", "Then it ran away."]


def test_split_sentences_handles_abbreviations_quotes_and_initials():
    text = 'He said "Stop!" Then J. R. Smith left, i.e. he went home. Numbers like 3.14 stay. Why? Because.'
    assert split_sentences(text) == ['He said "Stop!"', "Then J. R. Smith left, i.e. he went home.",
                                     "Numbers like 3.14 stay.", "Why?", "Because."]


def test_jsonl_documents_with_configurable_field(tmp_path):
    f = tmp_path / "a.jsonl"
    f.write_text(json.dumps({"body": "One. Two.\n\nThree."}) + "\n\n" + json.dumps({"body": ""}) + "\n"
                 + json.dumps({"body": "Four."}) + "\n", encoding="utf-8")
    out, diagnostics = docs([f], text_field="body")
    assert [d.sentences for d in out] == [["One. Two.", "Three."], ["Four."]]
    assert [d.lines[0] for d in out] == [1, 4]
    assert diagnostics.findings["empty_document"].count == 1
    assert diagnostics.findings["empty_document"].example == f"{f}:3"


def test_csv_documents(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text('id,text\n1,"Hello there. General Kenobi."\n2,"Multi\nline, with comma."\n', encoding="utf-8")
    out, _ = docs([f])
    assert [d.sentences for d in out] == [["Hello there. General Kenobi."], ["Multi", "line, with comma."]]


def test_every_suffix_the_window_and_cli_offer_is_read_from_a_folder(tmp_path):
    from workbench.data.corpus import CORPUS_SUFFIXES

    for number, suffix in enumerate(CORPUS_SUFFIXES):
        write_corpus_file(tmp_path / f"{number:02d}{suffix}", [f"Document {number}."])
    diagnostics = Diagnostics()
    out = list(read_corpus([tmp_path], diagnostics=diagnostics))
    assert [d.sentences for d in out] == [[f"Document {n}."] for n in range(len(CORPUS_SUFFIXES))]
    assert diagnostics.count("skipped_file") == 0


def test_folders_are_walked_sorted_skipping_hidden_and_unsupported(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "b" / "2.txt").write_text("Two.\n")
    (tmp_path / "1.txt").write_text("One.\n")
    (tmp_path / "b" / "0.jsonl").write_text('{"text": "Zero."}\n')
    (tmp_path / ".hidden" / "x.txt").write_text("Hidden.\n")
    (tmp_path / ".dot.txt").write_text("Dot.\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\x00")
    (tmp_path / "empty.txt").write_text("")
    diagnostics = Diagnostics()
    files = list_corpus_files([tmp_path], diagnostics)
    assert [f.path.split("/")[-1] for f in files] == ["1.txt", "0.jsonl", "2.txt"]
    assert diagnostics.count("skipped_file") == 1
    assert diagnostics.count("empty_file") == 1
    out = list(read_corpus([tmp_path]))
    assert [d.sentences[0] for d in out] == ["One.", "Zero.", "Two."]


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\x02binary", "looks like a binary file (NUL byte at offset 0)"),
    (b"\xff\xfeU\x00T\x00F\x00", "looks like a binary file"),
])
def test_binary_files_are_refused_with_the_file_named(tmp_path, content, message):
    f = tmp_path / "data.txt"
    f.write_bytes(content)
    with pytest.raises(CorpusError) as info:
        list_corpus_files([f])
    assert str(f) in str(info.value) and message in str(info.value)


def test_invalid_utf8_names_file_and_line(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes(("Fine line.\n" * 5000).encode() + "Caf\xe9 au lait.\n".encode("latin-1") + b"More.\n")
    with pytest.raises(CorpusError) as info:
        docs([f])
    assert str(info.value).startswith(f"{f}:5001: invalid UTF-8 (byte 0xe9)")
    assert "--encoding-errors replace" in str(info.value)


def test_invalid_utf8_can_be_replaced_and_counted(tmp_path):
    f = tmp_path / "latin1.txt"
    f.write_bytes(b"Fine.\n" + "Caf\xe9 cr\xe8me.\n".encode("latin-1"))
    out, diagnostics = docs([f], encoding_errors="replace")
    assert out[0].sentences == ["Fine.", "Caf\ufffd cr\ufffdme."]
    assert diagnostics.findings["replaced_bytes"].count == 2
    assert diagnostics.findings["replaced_bytes"].example == f"{f}:2"


def test_utf8_bom_is_dropped(tmp_path):
    f = tmp_path / "bom.txt"
    f.write_bytes(b"\xef\xbb\xbfHello.\n")
    assert docs([f])[0][0].sentences == ["Hello."]


@pytest.mark.parametrize("paths, message", [
    (["missing.txt"], "missing.txt: no such file or folder"),
    ([], "no corpus given"),
])
def test_missing_paths(tmp_path, paths, message):
    with pytest.raises(CorpusError, match=message):
        list_corpus_files([str(tmp_path / p) for p in paths])


def test_folder_without_corpus_files(tmp_path):
    (tmp_path / "notes.docx").write_bytes(b"PK")
    with pytest.raises(CorpusError, match="folder has no readable corpus files"):
        list_corpus_files([tmp_path])


def test_empty_corpus(tmp_path):
    f = tmp_path / "empty.txt"
    f.write_text("")
    with pytest.raises(CorpusError, match="corpus is empty"):
        list_corpus_files([f])


@pytest.mark.parametrize("line, message", [
    ("{not json", ":2: not valid JSON"),
    ('{"title": "x"}', ":2: record has no 'text' field (fields: title)"),
    ('["a list"]', ":2: expected a JSON object"),
    ('{"text": 3}', ":2: field 'text' must be a string, got int"),
])
def test_bad_jsonl_lines(tmp_path, line, message):
    f = tmp_path / "a.jsonl"
    f.write_text('{"text": "Fine."}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        docs([f])
    assert str(info.value).startswith(str(f)) and message in str(info.value)


def test_csv_without_the_column(tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("id,body\n1,hello\n")
    with pytest.raises(CorpusError, match=r"no column 'text' \(columns: id, body\)"):
        docs([f])


def test_a_line_of_many_megabytes_is_split_not_choked_on(tmp_path):
    f = tmp_path / "huge.txt"
    word = "lorem "
    f.write_text("Start.\n" + word * (3 * LINE_BYTES // len(word)) + "\nEnd.\n", encoding="utf-8")
    pieces, diagnostics = docs([f])
    # One document, handed on in pieces of about PIECE_CHARS (memory stays bounded).
    assert len(pieces) >= 3 and [p.more for p in pieces] == [True] * (len(pieces) - 1) + [False]
    sentences = [s for p in pieces for s in p.sentences]
    lines = [n for p in pieces for n in p.lines]
    assert sentences[0] == "Start." and sentences[-1] == "End."
    assert max(map(len, sentences)) <= MAX_SENTENCE_CHARS
    assert sum(len(s) + 1 for s in sentences[1:-1]) >= 3 * LINE_BYTES * 0.99
    assert diagnostics.findings["long_line"].example == f"{f}:2"
    assert all(line == 2 for line in lines[1:-1])
    assert lines[-1] == 3
