"""Filter expressions over runs: ``masking.probability >= 0.2 and eval_mlm_loss < 5``.

A small, safe language (parsed with ``ast``, never evaluated as Python):

* names: a setting as ``section.key`` (``masking.probability``, ``train.seed``),
  a run field (``id``, ``name``, ``status``, ``steps``, ``tags``), or a metric's
  last value (``mlm_loss``) or held-out last value (``eval_mlm_loss``);
* numbers, strings in quotes, ``true`` / ``false``, lists ``[1, 2]``;
* comparisons ``< <= > >= == !=``, ``in`` / ``not in``, ``and``, ``or``, ``not``,
  parentheses.

A comparison with a value the run lacks (a metric it never recorded) is false.
Bad expressions raise ``FilterError`` with what is wrong and where.
"""

from __future__ import annotations

import ast
import operator
from typing import Callable

from workbench.errors import WorkbenchError


class FilterError(WorkbenchError):
    """An expression that cannot be read; the message says what and where."""


_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_LITERALS = {"true": True, "false": False, "True": True, "False": False, "none": None, "None": None}
OPERATOR_CHARS = ("<", ">", "=", "!")
MAX_LENGTH = 2000       # characters of an expression
MAX_DEPTH = 64          # nesting of its pieces (not, parentheses, lists): far beyond what a person types


def looks_like_expression(text: str) -> bool:
    """Whether filter text is an expression (it has a comparison) rather than words to search for."""
    return any(c in text for c in OPERATOR_CHARS) or " in " in f" {text} "


def compile_filter(text: str, known: set[str] | None = None) -> Callable[[dict], bool]:
    """A predicate over a run's namespace (``{name: value}``). ``known``: the names that exist; any other
    name is an error that lists a few of them."""
    source = " ".join(text.split())
    if len(source) > MAX_LENGTH:
        raise FilterError(f"filter {source[:40]!r}...: too long ({len(source):,} characters; at most {MAX_LENGTH:,})")
    try:
        tree = ast.parse(source, mode="eval")
    except (RecursionError, MemoryError):
        raise FilterError(f"filter {source[:40]!r}...: nested too deeply") from None
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise FilterError(f"filter {source!r}: not an expression{where} (e.g. masking.probability >= 0.2 "
                          f"and eval_mlm_loss < 5)") from None
    check = _Checker(source, known)
    check.visit(tree.body)
    body = tree.body

    def predicate(namespace: dict) -> bool:
        try:
            return bool(_evaluate(body, namespace))
        except _Missing:
            return False
    return predicate


class _Missing(Exception):
    """A value the run lacks: the comparison it is in is false."""


def dotted_name(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


class _Checker(ast.NodeVisitor):
    """Refuses everything but the small language, naming the offending piece."""

    def __init__(self, source: str, known: set[str] | None):
        self.source, self.known = source, known
        self.depth = 0

    def visit(self, node):
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise FilterError(f"filter {self.source[:40]!r}...: nested too deeply (more than {MAX_DEPTH} levels)")
            return super().visit(node)
        finally:
            self.depth -= 1

    def fail(self, node, what: str):
        piece = ast.get_source_segment(self.source, node) or ""
        raise FilterError(f"filter {self.source!r}: {what}: {piece!r}")

    def generic_visit(self, node):
        self.fail(node, "not allowed in a filter (use names, numbers, strings, comparisons, and/or/not)")

    def visit_BoolOp(self, node):
        for value in node.values:
            self.visit(value)

    def visit_UnaryOp(self, node):
        if not isinstance(node.op, (ast.Not, ast.USub)):
            self.fail(node, "unknown operator")
        self.visit(node.operand)

    def visit_Compare(self, node):
        for op in node.ops:
            if type(op) not in _COMPARE:
                self.fail(node, "unknown comparison")
        for part in (node.left, *node.comparators):
            self.visit(part)

    def visit_Constant(self, node):
        if not isinstance(node.value, (int, float, str, bool)) and node.value is not None:
            self.fail(node, "unknown constant")

    def visit_List(self, node):
        for element in node.elts:
            self.visit(element)

    visit_Tuple = visit_List

    def visit_Name(self, node):
        self._name(node)

    def visit_Attribute(self, node):
        self._name(node)

    def _name(self, node):
        name = dotted_name(node)
        if name is None:
            self.fail(node, "not a name")
        if name in _LITERALS or self.known is None or name in self.known:
            return
        similar = sorted(k for k in self.known if name.split(".")[-1] in k)[:5] or sorted(self.known)[:5]
        raise FilterError(f"filter {self.source!r}: unknown name {name!r}; names are settings like "
                          f"masking.probability and metrics like mlm_loss or eval_mlm_loss "
                          f"(e.g. {', '.join(similar)})")


def _evaluate(node, namespace: dict):
    if isinstance(node, ast.BoolOp):
        if isinstance(node.op, ast.And):
            return all(_truth(v, namespace) for v in node.values)
        return any(_truth(v, namespace) for v in node.values)
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return not _truth(node.operand, namespace)
        value = _evaluate(node.operand, namespace)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise _Missing                       # -name, -[1]: no number to negate, so no match
        return -value
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, namespace)
        for op, right_node in zip(node.ops, node.comparators):
            right = _evaluate(right_node, namespace)
            if left is None or right is None:
                raise _Missing
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError:
                raise _Missing from None          # a string against a number: not a match
            left = right
        return True
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_evaluate(e, namespace) for e in node.elts]
    name = dotted_name(node)
    if name in _LITERALS:
        return _LITERALS[name]
    return namespace.get(name)


def _truth(node, namespace: dict) -> bool:
    try:
        return bool(_evaluate(node, namespace))
    except _Missing:
        return False


def run_namespace(summary: dict, config: dict | None) -> dict:
    """The names a filter sees for one run: the fields and metric values of its summary row
    (``workbench.store.summary.run_summary``: ``mlm_loss``, ``eval_mlm_loss``...) and its flattened settings."""
    from workbench.store.comparison import flat_config

    fields = {k: v for k, v in summary.items() if k not in ("run_dir", "created", "device")}
    return {**flat_config(config or {}), **fields}
