"""Labelled data for fine-tuning: CSV / TSV / JSONL files, and the built-in task.

A labelled file has a text column, optionally a second text column (a pair
task), and a label column. Columns are detected by their usual names
(``text``/``sentence``/``sentence1``, ``text_pair``/``sentence2``,
``label``/``labels``/``category``/``class``) or given. A bad row is an error
that names the file and line.

The built-in task (``builtin_task``) is made offline from the standard library
every Python has: docstrings of functions and classes, labelled by their
top-level package (asyncio, email, http, importlib, logging, multiprocessing,
unittest, xml). Those packages are left out of the sample corpus, so the
task's text is never pre-trained on.
"""

from __future__ import annotations

import ast
import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from workbench.data.records import csv_rows, json_object
from workbench.data.stdlib_text import HELD_OUT_PACKAGES, paragraphs, prose_sentences
from workbench.errors import WorkbenchError

TEXT_NAMES = ("text", "sentence", "sentence1", "text_a", "question", "premise", "content", "document")
PAIR_NAMES = ("text_pair", "sentence2", "text_b", "hypothesis", "answer")
LABEL_NAMES = ("label", "labels", "category", "class", "target", "y")
MIN_EXAMPLES_PER_LABEL = 2     # fewer on average: the column is an id or free text, not a label
BUILTIN_NAME = "builtin:python-docstrings"
WORD_ORDER_NAME = "builtin:word-order"
BUILTIN_TASKS = {"builtin": WORD_ORDER_NAME, "builtin:word-order": WORD_ORDER_NAME,
                 "builtin:package": BUILTIN_NAME, BUILTIN_NAME: BUILTIN_NAME}


class LabelledDataError(WorkbenchError):
    """A labelled file cannot be used for fine-tuning."""


@dataclass
class LabelledData:
    texts: list[str]
    pairs: list[str] | None          # the second text of a pair task, else None
    labels: list[int]                # index into label_names
    label_names: list[str]
    source: str
    columns: str = ""                # which columns were used and how they were chosen, for a person

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "LabelledData":
        return LabelledData([self.texts[i] for i in indices], [self.pairs[i] for i in indices] if self.pairs else None,
                            [self.labels[i] for i in indices], self.label_names, self.source, self.columns)


def read_labelled(path: str | Path, text_column: str | None = None, pair_column: str | None = None,
                  label_column: str | None = None, label_names: list[str] | None = None) -> LabelledData:
    """Read a labelled ``.csv``, ``.tsv`` or ``.jsonl`` file (``label_names`` fixes the label order, for a dev file)."""
    if str(path) in BUILTIN_TASKS:
        return word_order_task() if BUILTIN_TASKS[str(path)] == WORD_ORDER_NAME else builtin_task()
    path = Path(path)
    if not path.is_file():
        raise LabelledDataError(f"{path}: labelled file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        header, rows = _read_table(path, "\t" if suffix == ".tsv" else ",")
    elif suffix in (".jsonl", ".json"):
        header, rows = _read_jsonl(path)
    else:
        raise LabelledDataError(f"{path}: unknown format {suffix!r}; use .csv, .tsv or .jsonl")
    text_key, text_how = _pick(path, header, text_column, TEXT_NAMES, "text", fallback=0)
    label_key, label_how = _pick(path, header, label_column, LABEL_NAMES, "label", fallback=-1)
    pair_key, pair_how = _pick(path, header, pair_column, PAIR_NAMES, "pair", fallback=None) \
        if pair_column != "" else (None, "")
    if label_key == text_key:
        raise LabelledDataError(f"{path}: the text and the label are the same column ({text_key!r}); "
                                "choose them with --text-column and --label-column")
    texts, pairs, raw_labels = [], [] if pair_key else None, []
    for line, row in rows:
        text = str(row.get(text_key) or "").strip()
        label = row.get(label_key)
        if not text:
            raise LabelledDataError(f"{path}:{line}: empty text in column {text_key!r}")
        if label is None or str(label).strip() == "":
            raise LabelledDataError(f"{path}:{line}: no label in column {label_key!r}")
        texts.append(text)
        raw_labels.append(str(label).strip())
        if pairs is not None:
            pairs.append(str(row.get(pair_key) or "").strip())
    if not texts:
        raise LabelledDataError(f"{path}: no rows")
    names = list(label_names) if label_names else sorted(set(raw_labels))
    unknown = sorted(set(raw_labels) - set(names))
    if unknown:
        raise LabelledDataError(f"{path}: labels {unknown[:5]} do not occur in the training file")
    if len(names) < 2:
        raise LabelledDataError(f"{path}: only one label ({names[0]!r}); classification needs at least two")
    if not label_names and len(names) > max(2, len(texts) // MIN_EXAMPLES_PER_LABEL):
        raise LabelledDataError(
            f"{path}: the label column {label_key!r} ({label_how}) has {len(names):,} different values in "
            f"{len(texts):,} rows: " + ("it looks like an id, not a label" if len(names) == len(texts) else
                                        f"fewer than {MIN_EXAMPLES_PER_LABEL} examples per label")
            + f"; name the label column with --label-column (columns: {', '.join(header)})")
    columns = f"text {text_key!r} ({text_how})" + (f", pair {pair_key!r} ({pair_how})" if pair_key else "") + \
        f", label {label_key!r} ({label_how})"
    index = {name: i for i, name in enumerate(names)}
    return LabelledData(texts, pairs, [index[label] for label in raw_labels], names, str(path), columns)


def _pick(path: Path, header: list[str], given: str | None, names: tuple[str, ...], what: str,
          fallback) -> tuple[str | None, str]:
    """The column for ``what`` and how it was chosen: given, found by its name, or the first/last column."""
    if given:
        if given not in header:
            raise LabelledDataError(f"{path}: no column {given!r} (columns: {', '.join(header)})")
        return given, "given"
    lowered = {h.lower(): h for h in header}
    for name in names:
        if name in lowered:
            return lowered[name], "by its name"
    if fallback is None:
        return None, ""
    if len(header) < 2:
        raise LabelledDataError(f"{path}: needs a text and a label column (columns: {', '.join(header)})")
    return header[fallback], f"no column named {names[0]!r}: the {'first' if fallback == 0 else 'last'} column"


def _read_table(path: Path, delimiter: str) -> tuple[list[str], list[tuple[int, dict]]]:
    header, read = csv_rows(path, LabelledDataError, delimiter=delimiter, encoding_hint="save it as UTF-8")
    if not header:
        raise LabelledDataError(f"{path}: empty file")
    rows = []
    for start, row in read:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise LabelledDataError(f"{path}:{start}: {len(row)} columns, the header has {len(header)}")
        rows.append((start, dict(zip(header, row))))
    return header, rows


def _read_jsonl(path: Path) -> tuple[list[str], list[tuple[int, dict]]]:
    rows, header = [], []
    try:
        with open(path, encoding="utf-8-sig") as f:
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue
                record = json_object(text, f"{path}:{line}", LabelledDataError)
                for key in record:
                    if key not in header:
                        header.append(key)
                rows.append((line, record))
    except UnicodeDecodeError:
        raise LabelledDataError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    if not rows:
        raise LabelledDataError(f"{path}: no rows")
    return header, rows


def split(data: LabelledData, heldout_fraction: float, seed: int = 0) -> tuple[LabelledData, LabelledData]:
    """(train, held-out) by a hash of each example's text: stable, and the same text never lands in both."""
    train, heldout = [], []
    for i, text in enumerate(data.texts):
        digest = hashlib.sha256(f"{seed}:{text}:{data.pairs[i] if data.pairs else ''}".encode()).digest()
        (heldout if int.from_bytes(digest[:4], "little") / 2**32 < heldout_fraction else train).append(i)
    if not heldout or not train:
        raise LabelledDataError(f"{data.source}: too few examples ({len(data)}) for a held-out split")
    return data.subset(train), data.subset(heldout)


def _docstrings():
    """(package, prose sentences) for each function or class docstring of the held-out packages."""
    root = Path(sysconfig.get_paths()["stdlib"])
    for package in HELD_OUT_PACKAGES:
        if not (root / package).is_dir():
            continue
        for file in sorted((root / package).rglob("*.py")):
            if "test" in file.parts or "tests" in file.parts:
                continue
            try:
                tree = ast.parse(file.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
                continue
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    doc = ast.get_docstring(node)
                    if doc:
                        yield package, prose_sentences(paragraphs(doc.splitlines()))


def _require_sources(examples: int, labels: int = 2) -> None:
    if examples < 100 or labels < 2:
        raise LabelledDataError("the built-in tasks need the standard library's sources, which this Python lacks")


def builtin_task() -> LabelledData:
    """Docstrings of the standard library labelled by their top-level package (see the module docstring)."""
    texts, labels, seen, present = [], [], set(), []
    for package, sentences in _docstrings():
        text = " ".join(sentences[:3])
        if len(text.split()) >= 6 and text not in seen:
            if package not in present:
                present.append(package)
            seen.add(text)
            texts.append(text)
            labels.append(present.index(package))
    _require_sources(len(texts), len(present))
    return LabelledData(texts, None, labels, present, BUILTIN_NAME)


def word_order_task(seed: int = 0) -> LabelledData:
    """Sentences of the held-out docstrings, half as written and half with two of their words swapped.

    An acceptability task in the manner of CoLA: both labels use exactly the
    same words, so a bag of words cannot tell them apart; only a model that
    knows how text is ordered can. Each sentence appears once (as written or
    swapped, never both), the two swapped words differ, and the choice is a
    fixed function of the seed.
    """
    import random

    rng = random.Random(seed)
    texts, labels, seen = [], [], set()
    for _, sentences in _docstrings():
        for sentence in sentences:
            words = sentence.split()
            if not 6 <= len(words) <= 40 or sentence in seen:
                continue
            seen.add(sentence)
            if rng.random() < 0.5:
                texts.append(sentence)
                labels.append(0)
                continue
            i, j = sorted(rng.sample(range(len(words)), 2))
            if words[i] == words[j]:
                continue
            words[i], words[j] = words[j], words[i]
            texts.append(" ".join(words))
            labels.append(1)
    _require_sources(len(texts))
    return LabelledData(texts, None, labels, ["as written", "words swapped"], WORD_ORDER_NAME)
