"""The MLM loss over the vocabulary with its gradient made in the forward pass.

``F.cross_entropy(logits.float(), targets)`` walks the (rows, V) logits many times: the cast to fp32, the
log-softmax, then in backward a zeroed (rows, V) gradient for the gather, the log-softmax's backward and the
cast back. Under bf16 autocast on CPU that was a sixth of a ``tiny`` step. Here the forward pass computes,
a block of rows at a time, the log-softmax in fp32 (cast inside the kernel), the loss, and the gradient
``(softmax - onehot) / count`` straight into a tensor of the logits' dtype; backward hands that tensor on.
The arithmetic is the same (the log-softmax is computed in fp32 either way), and the stored gradient takes
the logits' dtype, half the bytes of the fp32 log-probabilities ``cross_entropy`` kept under bf16.

Without gradients (evaluation, inspection) it is plain ``cross_entropy``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

IGNORE_INDEX = -100
BLOCK_BYTES = 4 << 20          # fp32 log-probabilities per block on CPU: stays in the caches


class _VocabCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        rows, vocab = logits.shape
        valid = targets != IGNORE_INDEX
        safe = targets.clamp(min=0).unsqueeze(1)                                      # (rows, 1)
        count = valid.sum().clamp(min=1).to(torch.float32)
        scale = (valid.to(torch.float32) / count).unsqueeze(1)                        # (rows, 1); 0 where ignored
        grad = torch.empty_like(logits, memory_format=torch.contiguous_format)
        total = torch.zeros((), dtype=torch.float32, device=logits.device)
        block = rows if logits.device.type != "cpu" else max(1, BLOCK_BYTES // (4 * vocab))
        for start in range(0, rows, block):
            end = min(rows, start + block)
            logp = torch.log_softmax(logits[start:end], -1, dtype=torch.float32)     # (b, V) fp32
            total -= (logp.gather(1, safe[start:end]) * scale[start:end]).sum()
            probabilities = logp.exp_()
            probabilities.scatter_add_(1, safe[start:end], probabilities.new_full((end - start, 1), -1.0))
            torch.mul(probabilities, scale[start:end], out=grad[start:end])           # scaled, in logits' dtype
        ctx.save_for_backward(grad)
        ctx.mark_non_differentiable(targets)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, upstream: torch.Tensor):
        (grad,) = ctx.saved_tensors
        if upstream.device.type == "cpu" and float(upstream) == 1.0:                  # the usual case: no pass
            return grad, None
        return grad * upstream.to(grad.dtype), None


def vocab_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (rows, V) ``logits`` against (rows,) ``targets``, rows whose target is
    ``IGNORE_INDEX`` left out (as ``F.cross_entropy``), computed in fp32 whatever the logits' dtype.
    At least one target must be scored."""
    if not (torch.is_grad_enabled() and logits.requires_grad):
        return F.cross_entropy(logits.float(), targets)
    return _VocabCrossEntropy.apply(logits, targets)
