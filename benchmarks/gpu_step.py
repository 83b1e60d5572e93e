"""The ModernBERT training step on a CUDA GPU: ours against transformers' ModernBertForMaskedLM. JSON.

    python benchmarks/gpu_step.py [--preset base] [--batch 128] [--steps 30] [--compile]

The path a GPU run of the workbench takes: bf16 autocast, fused AdamW, SDPA on unpadded tokens (ours;
transformers' sdpa works on the padded batch), optionally ``torch.compile`` (``train.compile``) for both.
Same weights, same batches (the sample corpus at 128 tokens, as the data really comes: padded), MLM only
on both sides, sparse prediction on theirs; interleaved steps, medians after a warm-up. Prints tokens/s
(real tokens), the step ratio and the model FLOPs utilisation: the model's matmul FLOPs per token
(``workbench.model.common.flops_per_token``, the same count for both) times tokens/s, over this GPU's
measured dense bf16 matmul peak. Without a CUDA device it prints why and exits 0: CPU CI never runs it.
Needs the ``bench`` extra (transformers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def bf16_peak(torch) -> float:
    n = 8192
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(10):
        start = time.perf_counter()
        a @ b
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="base")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--compile", action="store_true")
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print(json.dumps({"skipped": "no CUDA device on this machine"}))
        return

    from corpora import prepared
    from modernbert_step_profile import batches_of, build

    from workbench.model.common import flops_per_token

    dataset = prepared("sample")
    models, _ = build(args.preset, 30522, ["sdpa"])
    device = torch.device("cuda")
    optimizers = {}
    for name, model in models.items():
        model.to(device)
        if args.compile:
            models[name] = torch.compile(model)
        optimizers[name] = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    batches = [tuple(torch.from_numpy(a).to(device) for a in b)
               for b in batches_of(dataset, 128, full=False, probability=0.15, count=8, batch=args.batch)]

    def step(name: str, batch) -> None:
        ids, labels, mask = batch
        with torch.autocast("cuda", dtype=torch.bfloat16):
            if name == "ours":
                loss = models[name](ids, None, mask, mlm_labels=labels, pair_head=False).loss
            else:
                loss = models[name](input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)

    for name in models:                                  # warm-up (and compilation)
        for batch in batches:
            step(name, batch)
    torch.cuda.synchronize()
    times = {name: [] for name in models}
    for k in range(args.steps):
        for name in models:
            torch.cuda.synchronize()
            start = time.perf_counter()
            step(name, batches[k % len(batches)])
            torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    median = {name: statistics.median(t) for name, t in times.items()}
    real_tokens = sum(int(b[2].sum()) for b in batches) / len(batches)
    config = models["ours"].config if hasattr(models["ours"], "config") else models["ours"]._orig_mod.config
    per_token = flops_per_token(config, 128)
    peak = bf16_peak(torch)
    tokens = {name: real_tokens / m for name, m in median.items()}
    print(json.dumps({
        "device": torch.cuda.get_device_name(), "preset": args.preset, "batch": args.batch, "compile": args.compile,
        "padding_share": round(1 - real_tokens / (args.batch * 128), 3),
        "tokens_per_s": {n: round(t) for n, t in tokens.items()},
        "ratio_vs_transformers": round(median["hf_sdpa"] / median["ours"], 3),
        "measured_bf16_peak_tflops": round(peak / 1e12, 1),
        "mfu": {n: round(t * per_token / peak, 3) for n, t in tokens.items()},
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)}, indent=1))


if __name__ == "__main__":
    main()
