"""Which device and precision a run trains on, and how the device is described to the user."""

from __future__ import annotations

import torch

from workbench.errors import ConfigError
from workbench.model.cpu_linear import cpuinfo_field


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device is {name!r} but CUDA is not available on this machine")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("train.device is 'mps' but MPS is not available on this machine")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(device)


def resolve_precision(setting: str, device: torch.device) -> str:
    """``auto``: bf16 autocast on CUDA and on CPUs with AMX, fp32 elsewhere.

    On a Xeon with AMX (2 cores) bf16 steps ``tiny`` 1.4x and ``mini`` 1.9x as fast as fp32, and 3 minutes
    of the default run on the sample ended 0.24 nats lower (``benchmarks/learning_value.py --set
    train.precision=fp32|bf16``). CPUs with AVX512-BF16 alone are not measured and stay in fp32."""
    if setting == "auto":
        return "bf16" if device.type == "cuda" or (device.type == "cpu" and cpu_has_amx()) else "fp32"
    return setting


def _cpu_flags() -> set[str] | None:
    """The CPU's feature flags (/proc/cpuinfo); None where they cannot be read (not Linux)."""
    flags = cpuinfo_field("flags")
    return None if flags is None else set(flags.split())


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles for bf16 matrix products (Intel Xeon since Sapphire Rapids)."""
    return "amx_bf16" in (_cpu_flags() or set())


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX); otherwise torch emulates it slowly."""
    flags = _cpu_flags()
    if flags is None:
        return True  # not Linux: do not warn on a guess
    return bool(flags & {"avx512_bf16", "amx_bf16"})
