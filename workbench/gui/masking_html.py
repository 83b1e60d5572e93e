"""The masking preview's HTML: an example's tokens as coloured chips (what was masked, replaced, kept), the
models' guesses, accuracy by kind. Plain strings from a batch; no Qt, so it is tested and reused alone."""

from __future__ import annotations

import html

from workbench.data.inspection import example_tokens
from workbench.data.masking import KEPT, KIND_NAMES, MASKED, NOT_SELECTED, RANDOM

COLORS = {  # background, text
    MASKED: ("#d62728", "#ffffff"),
    RANDOM: ("#ff7f0e", "#ffffff"),
    KEPT: ("#2ca02c", "#ffffff"),
    "A": ("#dbe9f6", "#1b2631"),
    "B": ("#eadcf5", "#1b2631"),
    "special": ("#7f8c8d", "#ffffff"),
}

def by_kind_text(counts: dict[str, tuple[int, int]]) -> str:
    """"[MASK] 41% (123/300) · random 12% (4/33) · kept 80% (24/30)" - kinds with no positions are left out."""
    return " · ".join(f"{html.escape(kind)} {right / total:.0%} ({right}/{total})"
                      for kind, (right, total) in counts.items() if total)


def chip(text: str, background: str, color: str, bold: bool = False) -> str:
    weight = "font-weight:600;" if bold else ""
    return (f'<span style="background-color:{background};color:{color};{weight}">'
            f"&nbsp;{html.escape(text)}&nbsp;</span>")


def pair_label(config, batch, row: int) -> str:
    """What the pair task says of this row: IsNext/NotNext, in order/swapped, or no pair task."""
    if not config.nsp.pair_task:
        return "no pair task: B continues A"
    if config.nsp.objective == "sop":
        return "in order" if batch.nsp_labels[row] == 0 else "swapped"
    return "IsNext" if batch.nsp_labels[row] == 0 else "NotNext"


def accuracy_by_kind(batch, row: int, vocab, predictions: dict) -> str:
    """How many top guesses were right at [MASK], random and kept positions of this row."""
    counts: dict[str, list[int]] = {KIND_NAMES[k]: [0, 0] for k in (MASKED, RANDOM, KEPT)}
    for pos, guesses in predictions.items():
        entry = counts[KIND_NAMES[int(batch.kinds[row, pos])]]
        entry[0] += guesses[0][0] == vocab.tokens[int(batch.original_ids[row, pos])]
        entry[1] += 1
    return by_kind_text({kind: (right, total) for kind, (right, total) in counts.items()})


def _guess_list(guesses, original: str) -> str:
    return ", ".join(f"<span style='color:{'#1e8449' if g == original else 'inherit'}'>{html.escape(g)} {p:.0%}</span>"
                     for g, p in guesses)


def example_html(batch, row: int, vocab, predictions: dict, before: dict, before_label: str = "") -> str:
    """Row ``row`` as chips, each guessed position followed by the top guess; then every guess listed."""
    chips = []
    for token in example_tokens(batch, row, vocab):
        pos, original, kind = token.position, token.original, token.kind
        if kind == MASKED:
            text = f"[MASK] ({original})"
        elif kind == RANDOM:
            text = f"{token.shown} ← {original}"
        elif kind == KEPT:
            text = f"{original} (kept)"
        else:
            text = original
        colors = COLORS[kind] if kind != NOT_SELECTED else COLORS[token.role]
        piece = chip(text, *colors, bold=kind != NOT_SELECTED)
        if pos in predictions:
            top, probability = predictions[pos][0]
            right = top == original
            piece += (f'<span style="color:{"#1e8449" if right else "#b03a2e"};font-size:small"> → '
                      f'{html.escape(top)} {probability:.0%} {"✓" if right else "✗"}</span>')
        chips.append(piece)
    body = "<p style='line-height:170%'>" + " ".join(chips) + "</p>"
    if predictions:
        heading = "Top guesses" if not before else \
            f"Top guesses, loaded model and <i>before ({html.escape(before_label)})</i>,"
        body += f"<p style='font-size:small'><b>{heading}</b> at each predicted position:<br>"
        for pos, guesses in predictions.items():
            original = vocab.tokens[int(batch.original_ids[row, pos])]
            listed = _guess_list(guesses, original)
            if pos in before:
                listed += " &nbsp; <i>before: " + _guess_list(before[pos], original) + "</i>"
            body += f"{pos}: <b>{html.escape(original)}</b> → {listed}<br>"
        body += "</p>"
    return body
