"""Prose from this Python's standard library: docstrings and comment blocks, unwrapped into paragraphs and
cut into sentences that read as English. The sample corpus (``workbench.data.sample``) and the built-in
fine-tuning tasks (``workbench.data.labelled``) are both made from it, from disjoint packages.

Sources are parsed with ``ast``; no module is imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Iterable

from workbench.data.sentences import split_sentences

# The packages the built-in fine-tuning tasks are made from; the sample corpus leaves them out, so nothing of
# those tasks is pre-trained on.
HELD_OUT_PACKAGES = ("asyncio", "email", "http", "importlib", "logging", "multiprocessing", "unittest", "xml")

_ROLE = re.compile(r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``([^`]*)``|`([^`]*)`")
_RULE = re.compile(r"^[=\-~^*#+]{3,}$")
_LETTERS = re.compile(r"[A-Za-z]")


def module_sentences(path: str) -> list[str]:
    """Sentences of a module's docstrings and comment blocks, in source order."""
    try:
        source = Path(path).read_bytes().decode("utf-8")
        tree = ast.parse(source)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return []
    pieces: list[tuple[int, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                pieces.append((getattr(node, "lineno", 0), paragraphs(doc.splitlines())))
    pieces.extend(_comment_blocks(source))
    pieces.sort(key=lambda item: item[0])
    return prose_sentences(text for _, texts in pieces for text in texts)


def _comment_blocks(source: str) -> list[tuple[int, list[str]]]:
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for lineno, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            text = stripped.lstrip("#").strip()
            if not current:
                start = lineno
            if text:
                current.append(text)
            elif current:
                blocks.append((start, [" ".join(current)]))
                current = []
            continue
        if current:
            blocks.append((start, [" ".join(current)]))
            current = []
    if current:
        blocks.append((start, [" ".join(current)]))
    return blocks


def paragraphs(lines: list[str]) -> list[str]:
    """Unwrap text into paragraphs, dropping code blocks, doctests and rules."""
    out: list[str] = []
    current: list[str] = []
    for line in lines + [""]:
        stripped = line.strip()
        if not stripped:
            if current:
                out.append(" ".join(current))
                current = []
            continue
        indented = line[:1].isspace()
        if stripped.startswith((">>>", "...", "$ ", "%")) or _RULE.match(stripped):
            current = []  # a doctest or an underline: drop the paragraph it belongs to
            continue
        if indented and not current:
            continue  # an indented block: code, or a parameter table
        current.append(stripped)
    return out


def _clean(paragraph: str) -> str:
    paragraph = _ROLE.sub(r"\1", paragraph)
    paragraph = _LITERAL.sub(lambda m: m.group(1) or m.group(2) or "", paragraph)
    paragraph = paragraph.replace("::", ":")
    return " ".join(paragraph.split())


def _looks_like_prose(sentence: str) -> bool:
    words = sentence.split()
    if len(words) < 4 or len(sentence) > 1000:
        return False
    letters = len(_LETTERS.findall(sentence))
    if letters < 0.6 * len(sentence):
        return False
    if "copyright" in sentence.lower() or "license" in sentence.lower():
        return False
    return sentence[0].isupper() or sentence[0] in "\"'("


def prose_sentences(paragraphs: Iterable[str]) -> list[str]:
    out = []
    for paragraph in paragraphs:
        for sentence in split_sentences(_clean(paragraph)):
            if _looks_like_prose(sentence):
                out.append(sentence)
    return out
