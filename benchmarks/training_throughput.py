"""Training throughput of our BERT against transformers' BertForPreTraining. Prints JSON.

    python benchmarks/training_throughput.py [--presets mini base] [--rounds 3] [--precision fp32 bf16]

Same config, same batches (the sample corpus, 128 tokens, real padding), same
optimizer (fused AdamW), the same machine, interleaved round by round; tokens/s
count real (non-padding) tokens of forward + backward + optimizer step.
transformers runs with attn_implementation "eager" and "sdpa"; the faster is
the reference. Peak memory is measured per implementation in its own process
(VmHWM). MFU is the model's useful FLOPs (matmuls, MLM head at the selected
positions) per second over the measured matmul peak of this machine.
Needs the ``bench`` extra (transformers).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = {"tiny": 32, "mini": 32, "small": 16, "medium": 16, "base": 8}


def matmul_peak(dtype_name: str) -> float:
    import torch

    dtype = getattr(torch, {"fp32": "float32", "bf16": "bfloat16"}[dtype_name])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = 8192 if device == "cuda" else (2048 if dtype_name == "fp32" else 512)
    a = torch.randn(n, n, dtype=dtype, device=device)
    b = torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(5):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


def setup(preset: str, dataset_dir: str, impls: list[str]):
    import torch
    import transformers
    from transformers import BertConfig, BertForPreTraining

    from workbench.config import WorkbenchConfig
    from workbench.data.batches import BatchStream
    from workbench.data.dataset import TokenizedDataset
    from workbench.model import BertPretrainingModel, ModelConfig

    transformers.logging.set_verbosity_error()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dataset = TokenizedDataset(dataset_dir)
    vocab = dataset.vocabulary.size
    stream = BatchStream(dataset, WorkbenchConfig(), BATCH[preset], seed=0)
    batches = [stream.batch(0, k) for k in range(8)]
    config = ModelConfig.from_preset(preset, vocab_size=vocab)
    torch.manual_seed(0)
    models = {}
    ours = BertPretrainingModel(config)
    for impl in impls:
        if impl == "ours":
            models[impl] = ours
        else:
            hf = BertForPreTraining(BertConfig(
                vocab_size=vocab, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
                num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
                attn_implementation=impl.removeprefix("hf_")))
            hf.load_state_dict(ours.state_dict(), strict=False)
            models[impl] = hf
    for model in models.values():
        model.to(device).train()
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True) for k, m in models.items()}
    return torch, device, config, batches, models, optimizers


def make_step(torch, device, models, optimizers, precision):
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bf16")

    def step(name, batch):
        feed = {k: torch.from_numpy(getattr(batch, k)).to(device)
                for k in ("input_ids", "token_type_ids", "attention_mask", "mlm_labels", "nsp_labels")}
        with autocast:
            if name == "ours":
                loss = models[name](**feed).loss
            else:
                loss = models[name](input_ids=feed["input_ids"], token_type_ids=feed["token_type_ids"],
                                    attention_mask=feed["attention_mask"], labels=feed["mlm_labels"],
                                    next_sentence_label=feed["nsp_labels"]).loss
        loss.backward()
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
    return step


def peak_memory(preset: str, dataset_dir: str, impl: str, precision: str) -> float:
    """Peak resident memory (MB) of a process that runs three training steps of one implementation."""
    code = (
        "import sys, json; sys.path.insert(0, sys.argv[1]);"
        "import training_throughput as b;"
        "torch, device, config, batches, models, opts = b.setup(sys.argv[2], sys.argv[3], [sys.argv[4]]);"
        "step = b.make_step(torch, device, models, opts, sys.argv[5]);"
        "[step(sys.argv[4], x) for x in batches[:3]];"
        "peak = torch.cuda.max_memory_allocated() / 2**20 if device == 'cuda' else "
        "[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024;"
        "print(peak)"
    )
    result = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent), preset, dataset_dir, impl, precision],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    from workbench.train.allocator import restart_with_huge_pages

    restart_with_huge_pages()       # as the program starts: malloc on huge pages where glibc and the kernel allow
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["mini", "base"])
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="steps per implementation per round")
    parser.add_argument("--dataset", help="prepared dataset (default: the sample corpus, prepared on the fly)")
    args = parser.parse_args()

    import torch

    from workbench.config import WorkbenchConfig
    from workbench.data.sample import sample_corpus_path
    from workbench.data.prepare import prepare_dataset
    from workbench.model import flops_per_token

    dataset_dir = args.dataset
    if not dataset_dir:
        dataset_dir = str(Path(tempfile.gettempdir()) / "wb-bench-sample")
        prepare_dataset([sample_corpus_path()], dataset_dir, WorkbenchConfig())
    results: dict = {"device": "cuda: " + torch.cuda.get_device_name() if torch.cuda.is_available() else
                     f"cpu, {torch.get_num_threads()} threads", "torch": torch.__version__,
                     "matmul_peak_gflops": {p: round(matmul_peak(p) / 1e9, 1) for p in args.precision}}
    impls = ["ours", "hf_eager", "hf_sdpa"]
    peaks = results["matmul_peak_gflops"]
    precisions = list(args.precision)
    if "bf16" in peaks and "fp32" in peaks and peaks["bf16"] < 0.5 * peaks["fp32"]:
        # No native bf16 (AVX512-BF16/AMX) on this CPU: bf16 is emulated and far slower than fp32.
        results["bf16_training"] = (f"skipped: bf16 matmul runs at {peaks['bf16']} GFLOP/s here against "
                                    f"{peaks['fp32']} in fp32 (no native bf16 on this CPU)")
        precisions = [p for p in precisions if p != "bf16"]
    for preset in args.presets:
        for precision in precisions:
            torch_, device, config, batches, models, optimizers = setup(preset, dataset_dir, impls)
            step = make_step(torch_, device, models, optimizers, precision)
            for name in impls:
                step(name, batches[0])  # warm-up
            seconds = {name: [] for name in impls}
            tokens = {name: [] for name in impls}
            for round_index in range(args.rounds):
                for name in impls:  # interleaved: each round runs every implementation on the same batches
                    chosen = [batches[1 + (round_index * args.steps + i) % (len(batches) - 1)] for i in range(args.steps)]
                    start = time.perf_counter()
                    for batch in chosen:
                        step(name, batch)
                    seconds[name].append(time.perf_counter() - start)
                    tokens[name].append(sum(int(b.attention_mask.sum()) for b in chosen))
            rate = {name: max(t / s for t, s in zip(tokens[name], seconds[name])) for name in impls}
            best_hf = max(rate["hf_eager"], rate["hf_sdpa"])
            mean_length = sum(int(b.attention_mask.sum()) for b in batches) / sum(len(b) for b in batches)
            useful = flops_per_token(config, int(mean_length))
            peak = results["matmul_peak_gflops"][precision] * 1e9
            entry = {
                "batch": f"{BATCH[preset]} x {batches[0].input_ids.shape[1]}",
                "vocab_size": config.vocab_size,
                "tokens_per_s": {k: round(v, 1) for k, v in rate.items()},
                "speedup_vs_best_transformers": round(rate["ours"] / best_hf, 2),
                "mfu": {k: round(v * useful / peak, 3) for k, v in rate.items()},
                "peak_memory_mb": {name: round(peak_memory(preset, dataset_dir, name, precision), 1)
                                   for name in impls},
            }
            results[f"{preset}/{precision}"] = entry
            print(json.dumps({f"{preset}/{precision}": entry}), file=sys.stderr)
            del models, optimizers
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
