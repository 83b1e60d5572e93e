"""The MLM loss at the selected positions: a leaner cross-entropy, and the vocabulary projection fused
with it for training on CPU.

The MLM head's last step, (M, H) states times the (V, H) token embeddings, and the cross-entropy over
its (M, V) logits are the largest single piece of a small model's step (V = 8k-30k against H = 128-256).
``F.cross_entropy`` keeps a log-softmax of that size and its backward writes two more; the fused path
(``decoder_cross_entropy``) never holds the (M, V) logits at all: it works through the rows in chunks
that stay in the CPU's cache, computing each chunk's logits, loss, argmax and gradient at once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from workbench.model import cpu_linear

IGNORE_INDEX = -100
CHUNK_BYTES = 8 << 20          # one chunk of fp32 logits: 8 MB, well inside a server CPU's L3 cache


def padded_targets(mlm_labels: torch.Tensor, positions: torch.Tensor, rows: int) -> torch.Tensor:
    """The labels at ``positions`` (M,), then ``IGNORE_INDEX`` for the bucket's extra rows: (rows,)."""
    targets = mlm_labels.reshape(-1).index_select(0, positions)
    if rows > len(positions):
        targets = torch.cat([targets, targets.new_full((rows - len(positions),), IGNORE_INDEX)])
    return targets


class _CrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of (M, V) logits against (M,) targets (``IGNORE_INDEX`` rows left out).

    The forward keeps exp(logit - row max), which the log-sum-exp needs anyway, and the backward scales
    it in place into the gradient, minus the scale at the target: one big tensor and one exp, where
    ``F.cross_entropy`` keeps a log-softmax, writes a zero gradient, scatters into it and makes a third.
    Same values to rounding (tested). The saved tensor becomes the gradient, so a second backward through
    the same graph (``retain_graph``) is refused.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        scores = logits.float()
        top = scores.amax(-1)                                                       # (M,)
        exps = torch.sub(scores, top[:, None]).exp_()                               # (M, V)
        total = exps.sum(-1)
        keep = targets != IGNORE_INDEX
        safe = targets.masked_fill(~keep, 0)
        count = keep.sum().clamp(min=1).to(total.dtype)
        picked = scores.gather(1, safe[:, None]).squeeze(1)
        ctx.save_for_backward(exps, total, safe, keep, count)
        ctx.dtype, ctx.spent = logits.dtype, False
        return ((top + total.log() - picked) * keep).sum() / count

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.spent:
            raise RuntimeError("the MLM loss's gradient was already taken (backward twice through one step)")
        ctx.spent = True
        exps, total, safe, keep, count = ctx.saved_tensors
        scale = grad.to(total.dtype) / count * keep                                 # (M,) each row's weight
        result = exps.mul_((scale / total)[:, None])                                # softmax * weight, in place
        result.scatter_add_(1, safe[:, None], -scale[:, None])
        return result.to(ctx.dtype), None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy(logits.float(), targets)`` (mean over the rows not ``IGNORE_INDEX``), leaner."""
    if logits.dim() != 2 or torch.compiler.is_compiling():
        return F.cross_entropy(logits.float(), targets)
    return _CrossEntropy.apply(logits, targets)


class _DecoderCrossEntropy(torch.autograd.Function):
    """loss = mean cross-entropy of ``hidden @ weight.T + bias`` against ``targets``, and each row's argmax.

    Every gradient is computed in the forward, chunk by chunk, for an upstream gradient of 1; the
    backward only scales the three by the real one (a scalar). Per chunk of rows: the logits (through
    oneDNN), their argmax and the target's logit, exp(logit - max) in place, the loss, the softmax-minus-
    one-hot gradient in place, then that chunk's share of the gradients of ``hidden`` (its rows), of
    ``weight`` and of ``bias`` (accumulated). Each chunk's logits are written once and read from cache.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, targets: torch.Tensor):
        rows, vocabulary = len(hidden), weight.shape[0]
        keep = targets != IGNORE_INDEX
        safe = targets.masked_fill(~keep, 0)
        count = float(max(1, int(keep.sum())))
        weights = keep.to(hidden.dtype) / count                                     # (M,) each row's share
        chunk = max(16, CHUNK_BYTES // (4 * vocabulary))
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight)
        grad_bias = torch.zeros_like(bias)
        predictions = torch.empty(rows, dtype=torch.long)
        loss = torch.zeros((), dtype=torch.float64)
        weight_t = weight.t().contiguous()                                          # (H, V) for the input gradient
        for start in range(0, rows, chunk):
            part = slice(start, min(rows, start + chunk))
            x, target, share = hidden[part], safe[part], weights[part]
            logits = cpu_linear.onednn_linear(x, weight, bias)                      # (c, V)
            predictions[part] = logits.argmax(-1)
            picked = logits.gather(1, target[:, None]).squeeze(1)
            top = logits.amax(-1)
            exps = logits.sub_(top[:, None]).exp_()
            total = exps.sum(-1)
            loss += ((top + total.log() - picked) * share).sum(dtype=torch.float64)
            grad = exps.mul_((share / total)[:, None])                              # softmax * share
            grad.scatter_add_(1, target[:, None], -share[:, None])                  # minus the one-hot
            grad_hidden[part] = cpu_linear.onednn_linear(grad, weight_t, None)
            grad_weight.addmm_(grad.t(), x)
            grad_bias += grad.sum(0)
        ctx.save_for_backward(grad_hidden, grad_weight, grad_bias)
        ctx.mark_non_differentiable(predictions)
        return loss.to(hidden.dtype), predictions

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_predictions):
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        return grad_hidden * grad_loss, grad_weight * grad_loss, grad_bias * grad_loss, None


def fused_applies(hidden: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether ``decoder_cross_entropy`` serves this call: training in fp32 on a CPU with the oneDNN path."""
    return (torch.is_grad_enabled() and bias is not None and hidden.device.type == "cpu"
            and hidden.dtype == torch.float32 and cpu_linear.in_use() and not torch.is_autocast_enabled("cpu")
            and not torch.compiler.is_compiling())


def decoder_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                          targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, argmax per row) of the logits ``hidden @ weight.T + bias``, never holding them all."""
    return _DecoderCrossEntropy.apply(hidden, weight, bias, targets)
