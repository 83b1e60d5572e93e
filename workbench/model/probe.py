"""Asking a trained model: top-k fillers for [MASK] positions, and the NSP probability of a pair."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workbench.errors import WorkbenchError
from torch import nn


class ProbeError(WorkbenchError):
    """A probe text the model cannot take."""


def _fits(model: nn.Module, encoding, what: str) -> None:
    limit = model.config.max_position_embeddings
    if len(encoding.ids) > limit:
        raise ProbeError(f"{what} is {len(encoding.ids)} tokens long with [CLS] and [SEP]; the model takes at most "
                         f"{limit}: shorten it")


@dataclass
class MaskPrediction:
    position: int                          # index in the encoded sequence
    candidates: list[tuple[str, float]]    # (token, probability), most likely first


def _tensors(encoding, device) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.tensor([encoding.ids], device=device),
        "token_type_ids": torch.tensor([encoding.type_ids], device=device),
        "attention_mask": torch.tensor([encoding.attention_mask], device=device),
    }


@torch.no_grad()
def fill_mask(model: nn.Module, tokenizer, text: str, top_k: int = 5) -> list[MaskPrediction]:
    """Top-k tokens for every [MASK] in ``text``; an empty list when it has none."""
    device = next(model.parameters()).device
    if top_k < 1:
        raise ProbeError(f"top-k must be at least 1, got {top_k}")
    encoding = tokenizer.encode(text)
    _fits(model, encoding, "the text")
    mask_id = tokenizer.token_to_id("[MASK]")
    positions = [i for i, token in enumerate(encoding.ids) if token == mask_id]
    if not positions:
        return []
    out = model(**_tensors(encoding, device))
    probabilities = out.mlm_logits[0, positions].float().softmax(-1)            # (masks, V)
    top = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
    results = []
    for row, position in enumerate(positions):
        candidates = [(tokenizer.id_to_token(int(i)), float(p)) for p, i in zip(top.values[row], top.indices[row])]
        results.append(MaskPrediction(position, candidates))
    return results


@torch.no_grad()
def nsp_probability(model: nn.Module, tokenizer, first: str, second: str) -> float:
    """Probability that ``second`` follows ``first`` (IsNext), by the NSP head."""
    device = next(model.parameters()).device
    encoding = tokenizer.encode(first, second)
    _fits(model, encoding, "the pair")
    out = model(**_tensors(encoding, device))
    return float(out.nsp_logits[0].float().softmax(-1)[0])
