"""The MLM loss over the vocabulary with its gradient made in the forward pass.

``F.cross_entropy(logits.float(), targets)`` walks the (rows, V) logits many times: the cast to fp32, the
log-softmax, then in backward a zeroed (rows, V) gradient for the gather, the log-softmax's backward and the
cast back. Under bf16 autocast on CPU that was a sixth of a ``tiny`` step. Here the forward pass takes a
block of rows at a time in fp32: its max (whose indices are the predicted tokens, which the trainer's
accuracy wanted from a second pass over the logits), the softmax, the loss from them (log p(target) =
x_t - max + log p_max, p_max being exactly 1 / the softmax's sum), and the gradient ``(softmax - onehot)
/ count`` straight into a tensor of the logits' dtype; backward hands that tensor on. The arithmetic is
in fp32 as ``cross_entropy``'s, and the stored gradient takes the logits' dtype, half the bytes of the
fp32 log-probabilities ``cross_entropy`` kept under bf16. Given the decoder's bias, it adds it in fp32
and sums its gradient from the blocks while they are cached (the decoder's own backward cast the whole
gradient to fp32 to sum it: another sixth of the loss's time).

Without gradients (evaluation, inspection), and under ``torch.compile``, it is plain ``cross_entropy``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from workbench.model.cpu_linear import rows_like

IGNORE_INDEX = -100
BLOCK_BYTES = 4 << 20          # fp32 log-probabilities per block on CPU: stays in the caches
LANES = 32                     # ``first_maximum``'s lanes: a work block's row is a whole number of them


def first_maximum(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x.max(-1)`` of an fp32 (b, W) block, W a multiple of ``LANES``: each row's largest value and the
    index of its first occurrence, with fewer scalar steps.

    On CPU ``max`` with indices walks a row one element at a time (0.3 ms for 71 x 14,688, against 0.07 for
    ``amax``). Here the row is seen as W / 32 chunks of 32 lanes: ``amax`` over the chunks gives each lane's
    maximum (vectorised), the first lane that holds the row's maximum is found among 32, and the one
    column of that lane is scanned for its first chunk holding it (``_lane_maxima``). That is the row's
    first maximum unless another lane holds it too (a tie): such rows, and rows with a NaN, take ``max``
    itself (``_settle_ties``)."""
    b = len(x)
    lanes, top, chunk_top = x.new_empty((b, LANES)), x.new_empty(b), x.new_empty(b)
    lane, best = (torch.empty(b, dtype=torch.int64, device=x.device) for _ in range(2))
    _lane_maxima(x, lanes, top, lane, chunk_top, best, torch.arange(b, device=x.device))
    _settle_ties(lanes, top, best, lambda tied: x[tied])
    return top, best


def _lane_maxima(x: torch.Tensor, lanes: torch.Tensor, top: torch.Tensor, lane: torch.Tensor,
                 chunk_top: torch.Tensor, best: torch.Tensor, rows: torch.Tensor) -> None:
    """For the (b, W) block ``x``, into the given (b, ...) outputs: each lane's maximum (b, LANES), the
    row's maximum and the first lane holding it, and in ``best`` the first index in that lane holding it
    (``chunk_top``: scratch). ``rows``: 0, 1, ... at least b long."""
    b, width = x.shape
    grid = x.view(b, width // LANES, LANES)
    torch.amax(grid, 1, out=lanes)
    torch.max(lanes, -1, out=(top, lane))
    torch.max(grid[rows[:b], :, lane], -1, out=(chunk_top, best))                  # the lane's first chunk
    torch.add(lane, best, alpha=LANES, out=best)


def _settle_ties(lanes: torch.Tensor, top: torch.Tensor, best: torch.Tensor, rows_of) -> None:
    """Where another lane holds a row's maximum too (or the row has a NaN), ``_lane_maxima``'s index may
    not be the first: those rows take ``max`` of their values, ``rows_of(which)`` (fp32)."""
    tied = (lanes == top.unsqueeze(1)).sum(-1) != 1
    if bool(tied.any()):
        top[tied], best[tied] = rows_of(tied).max(-1)


class _VocabCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor,
                bias_added: bool) -> tuple[torch.Tensor, torch.Tensor]:
        rows, vocab = logits.shape
        device = logits.device
        valid = targets != IGNORE_INDEX
        safe = targets.clamp(min=0).unsqueeze(1)                                      # (rows, 1)
        count = valid.sum().clamp(min=1).to(torch.float32)
        scale = (valid.to(torch.float32) / count).unsqueeze(1)                        # (rows, 1); 0 where ignored
        adds_bias = bias is not None and not bias_added
        on_cpu = device.type == "cpu"
        # fp32 blocks whose rows are a whole number of lanes (``first_maximum``), the columns beyond the
        # vocabulary -inf: they take no part in the maximum, and the softmax gives them exactly 0
        width = -(-vocab // LANES) * LANES if on_cpu else vocab
        block = max(1, BLOCK_BYTES // (4 * width)) if on_cpu else rows
        in_place = logits.dtype == torch.float32
        if in_place:           # fp32: the gradient's own rows are the blocks (``width`` apart), nothing to copy out
            work = torch.empty((rows, width), dtype=torch.float32, device=device)
            grad = work[:, :vocab]
        else:                  # a block at a time in fp32, into the gradient (laid out as padded logits are)
            work = torch.empty((min(block, rows), width), dtype=torch.float32, device=device)
            grad = rows_like(logits)
        # per row: the largest logit and its index, the largest probability; per block: the column sums
        top, chunk_top, largest = (torch.empty(rows, device=device) for _ in range(3))
        best, lane = (torch.empty(rows, dtype=torch.int64, device=device) for _ in range(2))
        lanes = torch.empty((rows, LANES), device=device) if on_cpu else None
        column_sums = torch.empty((-(-rows // block), width), device=device) if bias is not None else None
        minus_one = torch.full((min(block, rows), 1), -1.0, device=device)
        block_rows = torch.arange(min(block, rows), device=device)
        for i, start in enumerate(range(0, rows, block)):
            end = min(rows, start + block)
            x = work[start:end] if in_place else work[: end - start]
            if adds_bias:                                                             # the bias added in fp32
                torch.add(logits[start:end], bias, out=x[:, :vocab])
            else:
                x[:, :vocab].copy_(logits[start:end])                                 # in fp32
            if width > vocab:
                x[:, vocab:].fill_(float("-inf"))
            if on_cpu:                                                                # the predictions
                _lane_maxima(x, lanes[start:end], top[start:end], lane[start:end], chunk_top[start:end],
                             best[start:end], block_rows)
            else:
                torch.max(x, -1, out=(top[start:end], best[start:end]))
            probabilities = torch._softmax(x, -1, False, out=x)    # in place: half the block's bytes in the cache
            # the largest probability, at an index holding the largest logit (a tie's first or not: equal)
            torch.gather(probabilities, 1, best[start:end, None], out=largest[start:end, None])
            probabilities.scatter_add_(1, safe[start:end], minus_one[: end - start])
            probabilities.mul_(scale[start:end])                                      # d loss / d logits
            if not in_place:
                grad[start:end].copy_(probabilities[:, :vocab])                       # in the logits' dtype
            if column_sums is not None:
                torch.sum(probabilities, 0, out=column_sums[i])                       # while the block is cached
        if on_cpu:                             # the logits are the blocks' values (in fp32, with the bias added)
            _settle_ties(lanes, top, best, lambda tied: with_bias_fp32(logits[tied], bias if adds_bias else None))
        target_logits = with_bias_fp32(logits.gather(1, safe), bias[safe] if adds_bias else None)  # (rows, 1)
        # log p(target) = x_t - max - log(sum exp(x - max)); the largest probability is exactly 1 / that sum
        total = -((target_logits - top.unsqueeze(1) + largest.unsqueeze(1).log()) * scale).sum()
        bias_grad = column_sums.sum(0)[:vocab] if column_sums is not None else None
        ctx.save_for_backward(grad, bias_grad)
        ctx.bias_dtype = bias.dtype if bias is not None else None
        ctx.mark_non_differentiable(best)
        return total, best

    @staticmethod
    @once_differentiable
    def backward(ctx, upstream: torch.Tensor, _best_grad):
        grad, bias_grad = ctx.saved_tensors
        if bias_grad is not None:
            bias_grad = (bias_grad * upstream).to(ctx.bias_dtype)
        if upstream.device.type == "cpu" and float(upstream) == 1.0:                  # the usual case: no pass
            return grad, bias_grad, None, None
        return torch.mul(grad, upstream.to(grad.dtype), out=rows_like(grad)), bias_grad, None, None


def vocab_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """Mean cross-entropy of (rows, V) ``logits`` (plus the (V,) ``bias``, when given) against (rows,)
    ``targets``, rows whose target is ``IGNORE_INDEX`` left out (as ``F.cross_entropy``), computed in fp32
    whatever the logits' dtype. At least one target must be scored.

    With ``bias``, the logits leave the decoder's bias out and it is added here, in fp32: its gradient,
    the column sums of the logits' gradient, is then summed from the fp32 blocks while they are in the
    cache, instead of by a cast and a sum over the whole (rows, V) gradient in the decoder's backward."""
    return vocab_loss_and_predictions(logits, targets, bias)[0]


def vocab_loss_and_predictions(logits: torch.Tensor, targets: torch.Tensor, bias: torch.Tensor | None = None,
                               bias_added: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``vocab_cross_entropy`` and, where the loss makes its gradient (training), each row's predicted
    token: the index of its largest logit (bias included, in fp32), taken from the blocks the loss has in
    the cache. Elsewhere (no gradient, ``torch.compile``) the predictions are None: ask ``top_tokens``.

    ``bias_added``: the logits already include ``bias`` (``cpu_linear.vocabulary_logits`` had oneDNN add
    it); the loss only makes its gradient, from the blocks while they are cached."""
    wants_grad = torch.is_grad_enabled() and (logits.requires_grad or (bias is not None and bias.requires_grad))
    if not wants_grad or torch.compiler.is_compiling():     # under torch.compile the compiler fuses the plain loss
        plain = logits.float() if bias is None or bias_added else logits.float() + bias.float()
        return F.cross_entropy(plain, targets), None
    return _VocabCrossEntropy.apply(logits, bias, targets, bias_added)


def with_bias_fp32(logits: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``logits`` plus ``bias`` (broadcast) when given, in fp32: the values the loss's blocks hold."""
    return logits.float() if bias is None else torch.add(logits, bias).float()


def with_bias(logits: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The logits a decoder with ``bias`` gives, in the logits' dtype (as ``F.linear`` under autocast)."""
    return logits if bias is None else logits + bias.to(logits.dtype)


def top_tokens(logits: torch.Tensor) -> torch.Tensor:
    """The index of each row's largest logit, the first on ties: ``logits.argmax(-1)``.

    On CPU ``argmax`` over a vocabulary is a slow reduction: 17 ms for 640 x 14,687 bf16 logits, a fifth
    of a ``tiny`` training step, against 3.8 ms for ``max``'s indices, which are the same (the first
    maximum; tested)."""
    return logits.max(-1).indices
