"""The user's probes: small tests of one ability each, scored at every snapshot.

A probe file is JSON Lines (``.jsonl``) or tab-separated (``.tsv``/``.txt``); ``#`` starts a comment line.

======== ================================================ ============================================
kind     JSONL fields                                     TSV columns
======== ================================================ ============================================
fill     ``text`` with one ``[MASK]``, ``answer``         ``fill  TEXT  ANSWER``
minimal  ``good``, ``bad`` (acceptable, unacceptable)     ``minimal  GOOD  BAD``
next     ``first``, ``second``, ``is_next`` (true/false)  ``next  FIRST  SECOND  yes|no``
======== ================================================ ============================================

Every probe may carry a ``name`` (JSONL; the TSV's optional last column). Scores:

* fill: ``ln p(answer)`` at the [MASK]; right when the answer is the model's first guess;
* minimal: pseudo-log-likelihood difference ``PLL(good) - PLL(bad)`` (each token masked in turn; Salazar
  et al. 2020); right when positive;
* next: ``ln p(expected label)`` from the pair head; right when the expected label is the likelier one.

A probe the model cannot take is refused when the file is read, with its file and line: a word the
vocabulary lacks (it would become [UNK]), an answer of several tokens, a text too long for the model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workbench.errors import WorkbenchError, read_user_text

KINDS = ("fill", "minimal", "next")


class ProbeFileError(WorkbenchError):
    """A probe file that cannot be read or holds a probe the model cannot take."""


@dataclass(frozen=True)
class Probe:
    kind: str            # fill | minimal | next
    name: str
    first: str           # fill: the text; minimal: the good sentence; next: sentence A
    second: str          # fill: the answer; minimal: the bad sentence; next: sentence B
    is_next: bool        # next only
    answer_id: int       # fill only (-1 otherwise)


def builtin_probe_path() -> Path:
    from workbench.packaged import resource

    return resource("sample-probes.jsonl")


def read_probes(path: str | Path, tokenizer, max_length: int = 512) -> list[Probe]:
    """The probes of a file, each checked against ``tokenizer``; ``ProbeFileError`` naming file and line."""
    path = Path(path)
    text = read_user_text(path, ProbeFileError, "probe file")
    tsv = path.suffix.lower() != ".jsonl"
    probes: list[Probe] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        fields = _tsv_fields(line, where) if tsv else _json_fields(line, where)
        probes.append(_checked(fields, where, tokenizer, max_length, len(probes) + 1))
    if not probes:
        raise ProbeFileError(f"{path}: holds no probes")
    return probes


def _json_fields(line: str, where: str) -> dict:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise ProbeFileError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(record, dict):
        raise ProbeFileError(f"{where}: not a JSON object")
    kind = record.get("kind")
    needed = {"fill": ("text", "answer"), "minimal": ("good", "bad"), "next": ("first", "second", "is_next")}
    if kind not in needed:
        raise ProbeFileError(f"{where}: \"kind\" must be one of {', '.join(KINDS)}; got {kind!r}")
    missing = [k for k in needed[kind] if k not in record]
    if missing:
        raise ProbeFileError(f"{where}: a {kind} probe needs {', '.join(repr(k) for k in missing)}")
    a, b = (record[k] for k in needed[kind][:2])
    if kind == "next" and not isinstance(record["is_next"], bool):
        raise ProbeFileError(f"{where}: \"is_next\" must be true or false")
    return {"kind": kind, "first": a, "second": b, "is_next": record.get("is_next", False),
            "name": record.get("name", "")}


def _tsv_fields(line: str, where: str) -> dict:
    columns = line.rstrip("\r\n").split("\t")
    kind = columns[0].strip()
    if kind not in KINDS:
        raise ProbeFileError(f"{where}: the first column must be one of {', '.join(KINDS)}; got {kind!r}")
    wanted = 4 if kind == "next" else 3
    if len(columns) not in (wanted, wanted + 1):
        raise ProbeFileError(f"{where}: a {kind} probe has {wanted} tab-separated columns (and an optional name); "
                             f"found {len(columns)}")
    is_next = False
    if kind == "next":
        label = columns[3].strip().lower()
        if label not in ("yes", "no"):
            raise ProbeFileError(f"{where}: the fourth column of a next probe must be yes or no; got {label!r}")
        is_next = label == "yes"
    return {"kind": kind, "first": columns[1], "second": columns[2], "is_next": is_next,
            "name": columns[wanted] if len(columns) > wanted else ""}


def _checked(fields: dict, where: str, tokenizer, max_length: int, index: int) -> Probe:
    kind, first, second = fields["kind"], fields["first"], fields["second"]
    if not isinstance(first, str) or not isinstance(second, str) or not first.strip() or not second.strip():
        raise ProbeFileError(f"{where}: the texts of a probe must be non-empty strings")
    name = str(fields["name"] or f"{kind} {index}: {first[:40]}")
    answer_id = -1
    if kind == "fill":
        if first.count("[MASK]") != 1:
            raise ProbeFileError(f"{where}: a fill probe's text needs exactly one [MASK]; it has {first.count('[MASK]')}")
        pieces = tokenizer.encode(second, add_special_tokens=False).tokens
        if len(pieces) != 1:
            raise ProbeFileError(f"{where}: the answer {second!r} is {len(pieces)} tokens ({' '.join(pieces)}); a fill "
                                 "probe needs an answer of one token: choose another answer or word")
        answer_id = tokenizer.token_to_id(pieces[0])
        _known(pieces[0] != "[UNK]", second, where)
        _known_text(tokenizer, first, where, max_length)
    elif kind == "minimal":
        _known_text(tokenizer, first, where, max_length)
        _known_text(tokenizer, second, where, max_length)
    else:
        _known_text(tokenizer, first + " " + second, where, max_length)
    return Probe(kind, name, first, second, bool(fields["is_next"]), int(answer_id))


def _known(ok: bool, word: str, where: str) -> None:
    if not ok:
        raise ProbeFileError(f"{where}: {word!r} is not in the tokenizer's vocabulary (it would be [UNK]); use "
                             "words of the corpus")


def _known_text(tokenizer, text: str, where: str, max_length: int) -> None:
    encoding = tokenizer.encode(text, add_special_tokens=False)          # [MASK] is a special token, never [UNK]
    unknown = [text[a:b] for token, (a, b) in zip(encoding.tokens, encoding.offsets) if token == "[UNK]"]
    if unknown:
        _known(False, unknown[0], where)
    if len(encoding.ids) + 3 > max_length:
        raise ProbeFileError(f"{where}: the probe is {len(encoding.ids)} tokens long; the model takes at most "
                             f"{max_length - 3} besides [CLS] and [SEP]")


def _encode(tokenizer, first: str, second: str | None = None) -> tuple[list[int], list[int]]:
    encoding = tokenizer.encode(first, second) if second is not None else tokenizer.encode(first)
    return encoding.ids, encoding.type_ids


@torch.no_grad()
def score_probes(model, tokenizer, probes: list[Probe], device) -> tuple[np.ndarray, np.ndarray]:
    """(score, right) of every probe, (n,) float32 and (n,) int8; the model in eval mode."""
    mask_id = tokenizer.token_to_id("[MASK]")
    scores = np.zeros(len(probes), np.float32)
    right = np.zeros(len(probes), np.int8)
    for index, probe in enumerate(probes):
        if probe.kind == "fill":
            ids, types = _encode(tokenizer, probe.first)
            logits = _logits(model, [ids], [types], device)[0]                      # (T, V)
            position = ids.index(mask_id)
            logp = logits[position].float().log_softmax(-1)
            scores[index] = float(logp[probe.answer_id])
            right[index] = int(int(logp.argmax()) == probe.answer_id)
        elif probe.kind == "minimal":
            difference = pseudo_log_likelihood(model, tokenizer, probe.first, device) - \
                pseudo_log_likelihood(model, tokenizer, probe.second, device)
            scores[index] = difference
            right[index] = int(difference > 0)
        else:
            ids, types = _encode(tokenizer, probe.first, probe.second)
            tensors = [torch.tensor([x], device=device) for x in (ids, types, [1] * len(ids))]
            out = model(*tensors)
            if out.nsp_logits is None:
                scores[index], right[index] = np.nan, 0
                continue
            logp = out.nsp_logits[0].float().log_softmax(-1)
            expected = 0 if probe.is_next else 1                                    # 0 IsNext, 1 NotNext
            scores[index] = float(logp[expected])
            right[index] = int(int(logp.argmax()) == expected)
    return scores, right


def _logits(model, ids: list[list[int]], types: list[list[int]], device) -> torch.Tensor:
    tensors = [torch.tensor(x, device=device) for x in (ids, types, [[1] * len(r) for r in ids])]
    return model(*tensors, pair_head=False).mlm_logits                              # (B, T, V)


def pseudo_log_likelihood(model, tokenizer, text: str, device) -> float:
    """Sum over the tokens of ``ln p(token | the rest)``, each token masked in its own row."""
    ids, types = _encode(tokenizer, text)
    mask_id = tokenizer.token_to_id("[MASK]")
    positions = list(range(1, len(ids) - 1))
    rows = [ids[:p] + [mask_id] + ids[p + 1:] for p in positions]
    logits = _logits(model, rows, [types] * len(rows), device)                      # (n, T, V)
    logp = logits[torch.arange(len(positions)), torch.tensor(positions)].float().log_softmax(-1)
    return float(logp[torch.arange(len(positions)), torch.tensor([ids[p] for p in positions])].sum())
