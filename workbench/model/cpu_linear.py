"""The dense layers' matmuls on x86 CPUs, forward and both gradients: MKL or oneDNN, whichever is fast here.

torch sends an fp32 ``F.linear`` on CPU to MKL's sgemm. MKL is Intel's library: on Intel CPUs it is the
fast one (a Xeon with AVX-512, 2 cores: 280-320 GFLOP/s at our shapes, oneDNN 200-266), while on AMD
CPUs it takes slower code paths (an AMD EPYC with AVX-512, 2 cores: MKL 110-145 GFLOP/s, oneDNN's fp32
kernels 145-260 for a layer's forward and both gradients together). So ``linear`` goes through oneDNN on
x86 CPUs that are not Intel's and is ``F.linear`` on Intel's; ``benchmarks/modernbert_step_profile.py
--matmuls`` prints both for each layer on the machine at hand. The choice depends on the CPU alone, never
on a timing, so a machine always takes the same path and its runs stay reproducible.

Both libraries compute in fp32 with fp32 accumulation; only the order of the sums differs (results agree
to ~1e-6 relative, tested against ``F.linear``), and each is deterministic for a given thread count.
Elsewhere (CUDA, autocast, ``torch.compile``, non-x86 CPUs, a torch without oneDNN) ``linear`` is
``F.linear``. The weight gradient wants its inputs in oneDNN's own layout: the copies cost ~5% of it,
and it pays only once freed buffers are reused (``workbench.train.allocator``, which the trainer sets).
"""

from __future__ import annotations

import contextlib
import platform
from typing import Iterator

import torch
import torch.nn.functional as F

AVAILABLE = (platform.machine().lower() in ("x86_64", "amd64") and torch.backends.mkldnn.is_available()
             and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


def cpuinfo_field(key: str) -> str | None:
    """The value of the first ``key`` line of /proc/cpuinfo ("" if absent); None where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.split(":", 1)[0].strip() == key), "")
    except OSError:
        return None


def cpu_vendor() -> str:
    """The x86 vendor string (``GenuineIntel``, ``AuthenticAMD``, ...), or "" where it cannot be read."""
    vendor = cpuinfo_field("vendor_id")
    if vendor:
        return vendor
    described = platform.processor()                     # Windows: "Intel64 Family 6 ... GenuineIntel"
    return next((v for v in ("GenuineIntel", "AuthenticAMD") if v in described), "")


def onednn_preferred(vendor: str) -> bool:
    """oneDNN on x86 CPUs other than Intel's, where MKL's sgemm is slower; MKL (``F.linear``) on Intel's
    and where the vendor is unknown."""
    return vendor not in ("", "GenuineIntel")


_enabled = AVAILABLE and onednn_preferred(cpu_vendor())


def _onednn(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class _OneDnnLinear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _onednn(x, weight, bias)                                         # (N, out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _onednn(grad, weight.t(), None)                           # (N, in): W.T as a view, no copy
        if ctx.needs_input_grad[1]:
            # (out, in) and (out,), dense; the weight argument only names the result's dtype and device
            grad_w, grad_b = torch.ops.aten.mkldnn_linear_backward_weights(
                grad.to_mkldnn(), x.contiguous().to_mkldnn(), weight, ctx.has_bias)
        elif ctx.has_bias:
            grad_b = grad.sum(0)
        return grad_x, grad_w, (grad_b if ctx.has_bias and ctx.needs_input_grad[2] else None)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``; for fp32 training on an x86 CPU other than Intel's, through oneDNN."""
    if (not _enabled or x.device.type != "cpu" or x.dtype != torch.float32 or weight.dtype != torch.float32
            or torch.is_autocast_enabled("cpu") or torch.compiler.is_compiling() or x.numel() == 0):
        return F.linear(x, weight, bias)
    if x.dim() == 2:
        return _OneDnnLinear.apply(x, weight, bias)
    return _OneDnnLinear.apply(x.reshape(-1, x.shape[-1]), weight, bias).view(*x.shape[:-1], weight.shape[0])


ROW_MULTIPLE = 32     # bf16 elements: 64 bytes, a cache line
COLUMN_CHUNK = 4096   # the vocabulary projection's columns per matmul (2,048-8,192 ran alike)
BIAS_COLUMNS = 8      # the bias's column and zeros, on the states and the weight (1, 16, 32 ran alike)


class TiedGradient:
    """Carries the padded projection's gradient for the weight it shares with the token embeddings to the
    embeddings' backward (``modernbert._TiedEmbedding``), which runs later in the same backward pass and
    adds its rows to it in place. Otherwise the embeddings' backward filled a zero (V, H) fp32 tensor and
    autograd added the two (V, H) gradients: ~5 ms of a ``mini`` step. One per forward pass."""

    __slots__ = ("grad",)

    def __init__(self) -> None:
        self.grad: torch.Tensor | None = None


class _PaddedVocabularyProjection(torch.autograd.Function):
    """(R, H) states x (V, H) weight.T + (V,) bias in bf16, through a weight padded to Vp rows (Vp = V
    rounded up to ``ROW_MULTIPLE``): the product is the first V columns of an (R, Vp) buffer, so every
    row of the logits starts on a cache line. The pad rows are zeros, so they add nothing anywhere.

    The forward is one matmul per ``COLUMN_CHUNK`` columns, each written straight into its columns of the
    buffer: for ``mini`` (1,280 x 256 states, 30,528 rows, 2 cores) 13.6-15.3 ms against 19.4-20.4 for one
    matmul over all of them. The bias rides in the matmul: the states get a column of ones, the weight its
    column of the bias (in bf16, as autocast casts it), zeros beyond (``BIAS_COLUMNS``); the sums are in
    fp32 and rounded once, as in autocast's ``F.linear`` (equal to 1 ulp, the order of the sums; tested).
    The bias's gradient is left to the loss (``vocab_loss``, ``bias_added``), which sums it from its
    gradient blocks while they are in the cache: summing the (R, V) gradient here took 2-4x as long. Given
    ``tied``, the weight's gradient goes there (``TiedGradient``) instead of to autograd."""

    @staticmethod
    def forward(ctx, states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                tied: TiedGradient | None) -> torch.Tensor:
        vocab, hidden = weight.shape
        rows = -(-vocab // ROW_MULTIPLE) * ROW_MULTIPLE
        depth = hidden if bias is None else hidden + BIAS_COLUMNS
        padded = weight.new_empty((rows, depth), dtype=torch.bfloat16)
        padded[vocab:].zero_()
        padded[:vocab, :hidden].copy_(weight)                          # the cast autocast would make, padded
        x = states.to(torch.bfloat16)
        operand = x
        if bias is not None:                                           # [x | 1 0 ...] [W | b 0 ...].T = x W.T + b
            padded[:vocab, hidden].copy_(bias)
            padded[:vocab, hidden + 1:].zero_()
            operand = x.new_zeros((len(x), depth))
            operand[:, :hidden].copy_(x)
            operand[:, hidden].fill_(1.0)
        logits = x.new_empty((len(x), rows))
        for start in range(0, rows, COLUMN_CHUNK):
            torch.mm(operand, padded[start:start + COLUMN_CHUNK].t(), out=logits[:, start:start + COLUMN_CHUNK])
        ctx.save_for_backward(x, padded)
        ctx.dtypes, ctx.tied = (states.dtype, weight.dtype), tied
        return logits[:, :vocab]                                       # (R, V), rows Vp apart

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, padded = ctx.saved_tensors
        rows, vocab = grad.shape
        padded = padded[:, :x.shape[1]]                                  # the weight's columns, not the bias's
        full = padded_rows(grad.to(torch.bfloat16), len(padded))         # (R, Vp), zeros beyond V
        grad_states = torch.mm(full, padded).to(ctx.dtypes[0]) if ctx.needs_input_grad[0] else None
        grad_weight = _weight_gradient(full, x, vocab, ctx.dtypes[1]) if ctx.needs_input_grad[1] else None
        if grad_weight is not None and ctx.tied is not None:             # the embeddings' backward adds it up
            ctx.tied.grad, grad_weight = grad_weight, None
        return grad_states, grad_weight, None, None                      # the bias's: the loss makes it


def _weight_gradient(full: torch.Tensor, x: torch.Tensor, vocab: int, dtype: torch.dtype) -> torch.Tensor:
    """The (V, H) weight's gradient full[:, :V].T @ x, in ``dtype``, from the (R, Vp) bf16 gradient and the
    (R, H) bf16 states. For an fp32 weight it is made transposed, x.T @ full (H, Vp), both operands
    row-major, and the cast to fp32 writes it back in (V, H) rows: for ``mini`` (1,280 x 30,528, 256 wide,
    2 cores) 16.1 + 4.6 ms against 23.8 + 2.6 for full.T @ x and its cast. (A transposing copy into bf16
    ran at a third of that speed, so a bf16 weight takes full.T @ x.)"""
    if dtype == torch.bfloat16:
        return torch.mm(full.t(), x)[:vocab]
    transposed = torch.mm(x.t().contiguous(), full)                               # (H, Vp)
    return transposed.t()[:vocab].to(dtype, memory_format=torch.contiguous_format)


def padded_rows(t: torch.Tensor, width: int) -> torch.Tensor:
    """(R, width) whose first V columns are the (R, V) ``t`` and the rest zeros: ``t``'s own buffer when
    its rows are already ``width`` apart in one buffer that holds them whole (``rows_like`` made it), else
    a copy."""
    rows, vocab = t.shape
    if (t.stride() == (width, 1) and t.storage_offset() == 0
            and t.untyped_storage().nbytes() >= rows * width * t.element_size()):
        full = t.as_strided((rows, width), (width, 1))
        full[:, vocab:].zero_()
        return full
    full = t.new_zeros((rows, width))
    full[:, :vocab].copy_(t)
    return full


def rows_like(t: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor of ``t``'s shape and dtype, its rows as far apart as ``t``'s when ``t``
    is a narrowed view of wider rows (the padded projection's logits); else contiguous."""
    rows, vocab = t.shape
    if t.stride(1) == 1 and t.stride(0) > vocab:
        return t.new_empty((rows, t.stride(0)))[:, :vocab]
    return torch.empty_like(t, memory_format=torch.contiguous_format)


def bf16_cpu_training(x: torch.Tensor) -> bool:
    """Whether the (N, features) ``x`` is on its way through a training step under CPU autocast to bf16
    (not compiled): where the step's hand-made bf16 pieces apply."""
    return (x.device.type == "cpu" and x.dim() == 2 and torch.is_grad_enabled() and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16 and not torch.compiler.is_compiling())


def vocabulary_logits(states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                      tied: TiedGradient | None = None) -> tuple[torch.Tensor, bool]:
    """(R, H) states -> (R, V) logits against the (V, H) (tied) decoder weight, and whether they include
    the decoder's (V,) ``bias``. Where they do not (the bias is None, or it is left out), the caller's loss
    adds it (``vocab_loss``); where they do, the loss still makes its gradient (``bias_added``).

    Training in bf16 on an x86 CPU (autocast), oneDNN's bf16 matmuls ran 20-25% faster with the
    vocabulary padded to a multiple of 32 (the sample's 14,687 -> 14,688, 1,280 rows, 128 wide, 2 cores:
    forward 6.7 -> 4.9 ms, states' gradient 4.7 -> 3.8, weight's 7.2 -> 5.9; ``benchmarks/
    modernbert_step_profile.py --vocab``) and with the forward cut into column chunks, the bias inside the
    matmul (``_PaddedVocabularyProjection``), so there the logits are a view of an (R, Vp) product that
    includes the bias. fp32 (MKL, oneDNN) gained nothing from padding; elsewhere it is ``linear``, without
    the bias. ``tied``: where the padded projection runs, the weight's gradient is handed to the token
    embeddings' backward through it (``TiedGradient``)."""
    if AVAILABLE and bf16_cpu_training(states) and (states.requires_grad or weight.requires_grad):
        return _PaddedVocabularyProjection.apply(states, weight, bias, tied), bias is not None
    return linear(states, weight), False


def in_use() -> bool:
    """Whether fp32 CPU training takes the oneDNN path (on this machine, or within ``onednn``)."""
    return _enabled


@contextlib.contextmanager
def onednn(enabled: bool) -> Iterator[None]:
    """Within the block ``linear`` goes through oneDNN (where it can) or is ``F.linear``, whatever this
    machine's choice: benchmarks measure both paths, tests check the oneDNN one on any x86 CPU."""
    global _enabled
    saved, _enabled = _enabled, enabled and AVAILABLE
    try:
        yield
    finally:
        _enabled = saved
