"""Our ModernBERT training step against transformers' ModernBertForMaskedLM, same process, same batches. JSON.

    python benchmarks/modernbert_step_profile.py [--presets tiny mini] [--steps 16] [--vocab V]
                                                 [--profile] [--matmuls] [--allocators] [--compile]
                                                 [--precision fp32|bf16] [--masking 0.15]

The same weights (ours exported under transformers' names), the same batches (the sample corpus at 128
tokens: ``padded`` as the data really comes, and ``full``, every row cut to 128 real tokens), the same
optimizer (fused AdamW), MLM only on both sides (ours without the pair head; theirs with sparse
prediction). transformers runs with "sdpa" and "eager"; the faster is the reference. The sides take
their steps interleaved, round by round, and the median step counts. ``ours`` takes this CPU's matmul
path (``workbench.model.cpu_linear``: oneDNN on x86 CPUs other than Intel's, MKL on Intel's); next to it
``ours_mkl`` or ``ours_onednn`` is the same step forced onto the other path (``cpu_linear.onednn``).
Like the trainer, the process keeps freed step buffers for reuse and, where glibc and the kernel allow,
starts again with malloc on transparent huge pages, as the program does (``workbench.train.allocator``);
both serve both sides alike.

Vocabulary: the sample's own (14,689) for tiny, 30,522 (BERT's) for the larger presets, unless --vocab.

* ``--profile``: the top operators by self CPU time for ours and the reference (``torch.profiler``). The
  process then stays on small pages: under the profiler the step's buffers were faulted in again every
  step, 38k small pages (~50 ms) or ~200 huge ones (~400 ms), which doubled the mini step.
* ``--matmuls``: each dense layer's forward + backward, torch's ``F.linear`` (MKL) against oneDNN's.
* ``--allocators``: the tiny step (full batches) again in a fresh process per allocator: glibc as is,
  glibc tuned as the trainer does, that on huge pages as the program runs, jemalloc and tcmalloc when
  installed (``LD_PRELOAD``); at the ``--precision`` and ``--masking`` given.
* ``--compile``: ours under ``torch.compile`` as well (``train.compile``), with its compile time.
* ``--masking P``: the share of tokens predicted (0.15 by default, the rate the comparison was first
  measured at; the trainer's default is 0.3).
* ``--trainer N``: our ``Trainer`` itself (the default config: tiny, this machine's precision, 30%
  masking, its metrics every step) for N steps on the sample; the median and mean step time after the
  first 20 steps (what the race above does not see: the trainer also reads the predictions every step).
  ``--trainer-precision fp32|bf16`` sets its ``train.precision`` (default ``auto``).
* ``--precision bf16``: every side's forward under CPU autocast to bfloat16 (``train.precision bf16``);
  fast only on CPUs with AMX or AVX512-BF16.

Each row also has the arithmetic of ours and the reference per step (``gflop_per_step``: matmuls and
attention, forward and backward, counted by torch at the shapes they run), what each achieved
(``gflop_per_s``), and ``arithmetic_ratio``, the reference's count over ours: the step ratio that the
work each side does allows where matmuls are nearly all of the step (fp32 on a CPU without a fast
matmul unit). A ratio above it comes from doing the same arithmetic faster or from less other work.

Also printed: the process's peak RSS and its RSS after the warm-up and at the end (flat: buffers are
reused, not accumulated). Needs the ``bench`` extra (transformers).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

NO_TUNING = "WORKBENCH_BENCH_GLIBC_AS_IS"


def rss_mb() -> dict:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = round(int(value.split()[0]) / 1024)
    return fields


def batches_of(dataset, length: int, full: bool, probability: float, count: int = 6, batch: int = 32):
    import numpy as np

    from workbench.config import WorkbenchConfig
    from workbench.data.batches import BatchStream

    config = WorkbenchConfig()
    config.data.max_seq_length = length
    config.masking.probability = probability
    stream = BatchStream(dataset, config, batch, seed=0)
    out = []
    for k in range(count):
        b = stream.batch(0, k)
        ids, labels, mask = b.input_ids, b.mlm_labels, b.attention_mask
        if full:                                     # every row a full 128 tokens of real text (no padding)
            tokens = np.asarray(dataset.tokens[k * batch * length:(k + 1) * batch * length], dtype=np.int64)
            ids = tokens.reshape(batch, length).copy()
            rng = np.random.default_rng(k)
            chosen = rng.random(ids.shape) < probability
            labels = np.where(chosen, ids, -100)
            ids = np.where(chosen, dataset.vocabulary.mask_id, ids)
            mask = np.ones_like(ids)
        out.append((ids, labels, mask))
    return out


def build(preset: str, vocab: int, impls: list[str], compiled: bool = False):
    import torch
    import transformers
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    from workbench.config import ModelConfig
    from workbench.model import build_model
    from workbench.model.modernbert import export_tensors

    transformers.logging.set_verbosity_error()
    config = ModelConfig.from_preset(preset, vocab_size=vocab).resolved()
    torch.manual_seed(0)
    ours = build_model(config)
    models = {"ours": ours}
    if compiled:
        twin = build_model(config)
        twin.load_state_dict(ours.state_dict())
        models["ours_compiled"] = torch.compile(twin)
    for impl in impls:
        hf = ModernBertForMaskedLM(ModernBertConfig(
            vocab_size=vocab, hidden_size=config.hidden_size, num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads, intermediate_size=config.intermediate_size,
            global_attn_every_n_layers=1, sparse_prediction=True, attention_dropout=0.0, mlp_dropout=0.0,
            embedding_dropout=0.0, norm_bias=False, attention_bias=False, mlp_bias=False, decoder_bias=True,
            tie_word_embeddings=True, pad_token_id=0, attn_implementation=impl))
        hf.load_state_dict(export_tensors(ours.state_dict()), strict=False)
        models[f"hf_{impl}"] = hf
    for model in models.values():
        model.train()
    optimizers = {k: torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True) for k, m in models.items()}
    return models, optimizers


BF16 = False            # --precision bf16: every side's forward under CPU autocast to bfloat16
MASKING = 0.15          # --masking: share of tokens predicted


def step(torch, name, model, optimizer, batch):
    ids, labels, mask = (torch.from_numpy(a) for a in batch)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
        loss = forward(torch, name, model, ids, labels, mask)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def forward(torch, name, model, ids, labels, mask):
    """The MLM loss; the oneDNN matmuls keep the path they were called on through the backward."""
    from workbench.model import cpu_linear

    if name.startswith("ours"):
        forced = {"ours_mkl": cpu_linear.onednn(False), "ours_onednn": cpu_linear.onednn(True)}
        with forced.get(name, contextlib.nullcontext()):
            return model(ids, None, mask, mlm_labels=labels, pair_head=False).loss
    return model(input_ids=ids, attention_mask=mask, labels=labels).loss


def step_gflop(torch, name, model, batches) -> float:
    """The arithmetic one training step of ``name`` does, in GFLOP, averaged over ``batches``: every matmul
    at the shape it runs, forward and backward (torch's ``FlopCounterMode``; ours counted on ``F.linear``,
    which does the same products as its oneDNN calls), and attention at the shapes SDPA is given, padding
    included (the counter has no formula for CPU SDPA: the CUDA kernels' is used). Elementwise work and
    the optimizer are not counted. Where matmuls are nearly all of both steps (fp32 on a CPU without a
    fast matmul unit), the ratio of two sides' counts is the step ratio their arithmetic allows."""
    from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

    from workbench.model import cpu_linear

    def attention(query, key, value, *args, **kwargs):
        return sdpa_flop_count(query, key, value)

    def attention_backward(grad, query, key, value, *args, **kwargs):
        return sdpa_backward_flop_count(grad, query, key, value)

    aten = torch.ops.aten
    formulas = {aten._scaled_dot_product_flash_attention_for_cpu: attention,
                aten._scaled_dot_product_flash_attention_for_cpu_backward: attention_backward}
    total = 0
    for batch in batches:
        ids, labels, mask = (torch.from_numpy(a) for a in batch)
        with cpu_linear.onednn(False), FlopCounterMode(display=False, custom_mapping=formulas) as counter:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=BF16):
                loss = forward(torch, name, model, ids, labels, mask)
            loss.backward()
        model.zero_grad(set_to_none=True)
        total += counter.get_total_flops()
    return total / len(batches) / 1e9


def profile_table(torch, name, model, optimizer, batches, rows: int = 16) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    for batch in batches[:3]:                    # steady state: the allocator's heap is warm
        step(torch, name, model, optimizer, batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[:3]:
            step(torch, name, model, optimizer, batch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1000 / 3, 2),
             "share": round(e.self_cpu_time_total / total, 3), "calls_per_step": e.count // 3}
            for e in events[:rows]]


def race(torch, models, optimizers, batches, steps: int) -> dict:
    """Median seconds per step of each model, interleaved round by round after one warm-up round."""
    times = {name: [] for name in models}
    for name, model in models.items():
        for batch in batches[:2]:
            step(torch, name, model, optimizers[name], batch)
    for k in range(steps):
        for name, model in models.items():
            started = time.perf_counter()
            step(torch, name, model, optimizers[name], batches[k % len(batches)])
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def step_ratios(torch, dataset, preset: str, vocab: int, steps: int, profile: bool, compiled: bool,
                kinds: tuple[str, ...] = ("full", "padded")) -> list[dict]:
    models, optimizers = build(preset, vocab, ["sdpa", "eager"], compiled)
    from workbench.model import cpu_linear

    other = "ours_mkl" if cpu_linear.in_use() else "ours_onednn"      # the matmul path this CPU does not take
    others = {other: models["ours"]} if cpu_linear.AVAILABLE else {}
    models = {"ours": models["ours"], **others, **{k: v for k, v in models.items() if k != "ours"}}
    optimizers.update({name: optimizers["ours"] for name in others})
    entries = []
    for kind in kinds:
        batches = batches_of(dataset, 128, full=kind == "full", probability=MASKING)
        started = time.perf_counter()
        if compiled:                                             # compile (and recompile per shape) up front
            for batch in batches:
                step(torch, "ours_compiled", models["ours_compiled"], optimizers["ours_compiled"], batch)
        compile_seconds = time.perf_counter() - started
        after_warmup = rss_mb()
        median = race(torch, models, optimizers, batches, steps)
        reference = min(("hf_sdpa", "hf_eager"), key=lambda n: median[n])
        gflop = {n: round(step_gflop(torch, n, models[n], batches), 2) for n in ("ours", reference)}
        real_tokens = sum(int(b[2].sum()) for b in batches) / len(batches)
        entry = {"preset": preset, "vocab": vocab, "batch": kind, "padding_share": round(1 - real_tokens / 4096, 3),
                 "tokens_per_s": {n: round(real_tokens / m) for n, m in median.items()},
                 "reference": reference, "ratio_vs_reference": round(median[reference] / median["ours"], 3),
                 "gflop_per_step": gflop, "arithmetic_ratio": round(gflop[reference] / gflop["ours"], 3),
                 "gflop_per_s": {n: round(gflop[n] / median[n], 1) for n in gflop},
                 "rss_mb_after_warmup": after_warmup["VmRSS"], "rss_mb_end": rss_mb()["VmRSS"]}
        if compiled:
            entry["compile_seconds_for_these_shapes"] = round(compile_seconds, 1)
        if profile and kind == "full":
            entry["profile_ours"] = profile_table(torch, "ours", models["ours"], optimizers["ours"], batches)
            entry["profile_reference"] = profile_table(torch, reference, models[reference], optimizers[reference],
                                                       batches)
        entries.append(entry)
        print(json.dumps({k: v for k, v in entry.items() if not k.startswith("profile")}), file=sys.stderr,
              flush=True)
    return entries


def matmul_table(torch, presets: list[str], vocab_of) -> list[dict]:
    """Forward + backward of each dense layer shape: F.linear (MKL) against workbench's linear forced to oneDNN."""
    import torch.nn.functional as F

    from workbench.config import ModelConfig
    from workbench.model.cpu_linear import linear, onednn

    def seconds(fn, x, w, g, repeats=10):
        for _ in range(2):
            fn(x, w).backward(g)
        started = time.perf_counter()
        for _ in range(repeats):
            x.grad = w.grad = None
            fn(x, w).backward(g)
        return (time.perf_counter() - started) / repeats

    rows = []
    for preset in presets:
        c = ModelConfig.from_preset(preset, vocab_size=vocab_of(preset)).resolved()
        H, I, V = c.hidden_size, c.intermediate_size, c.vocab_size
        for name, (m, k, n) in {"Wqkv": (4096, H, 3 * H), "attention Wo": (4096, H, H), "MLP Wi": (4096, H, 2 * I),
                                "MLP Wo": (4096, I, H), "decoder (640 masked rows)": (640, H, V)}.items():
            x = torch.randn(m, k, requires_grad=True)
            w = (torch.randn(n, k) * 0.02).requires_grad_()
            g = torch.randn(m, n)
            flops = 3 * 2 * m * k * n
            with onednn(True):
                mkl, dnn = seconds(F.linear, x, w, g), seconds(linear, x, w, g)
            rows.append({"preset": preset, "layer": name, "shape": [m, k, n], "mkl_gflops": round(flops / mkl / 1e9),
                         "onednn_gflops": round(flops / dnn / 1e9), "onednn_speedup": round(mkl / dnn, 2)})
    return rows


def allocator_table(args) -> list[dict]:
    """The tiny full-batch race in a fresh process per allocator."""
    libs = {"jemalloc": "jemalloc", "tcmalloc": "tcmalloc_minimal"}
    small_pages = {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}
    variants = [("glibc as is", {NO_TUNING: "1", **small_pages}), ("glibc tuned (the trainer's)", small_pages),
                ("glibc tuned, huge pages (the program's)", {})]
    for name, lib in libs.items():
        found = ctypes.util.find_library(lib)
        path = next((str(p) for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib")
                     for p in sorted(Path(d).glob(f"lib{lib}.so*"))), None) if found else None
        if path:
            extra = {"MALLOC_CONF": "dirty_decay_ms:-1,muzzy_decay_ms:-1"} if name == "jemalloc" else {}
            variants.append((f"{name} (LD_PRELOAD)", {NO_TUNING: "1", "LD_PRELOAD": path, **small_pages, **extra}))
    rows = []
    for label, env in variants:
        out = subprocess.run([sys.executable, __file__, "--presets", "tiny", "--steps", str(args.steps), "--only-full",
                              "--masking", str(args.masking), "--precision", args.precision],
                             env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
        entry = json.loads(out)["results"][0]
        rows.append({"allocator": label, "tokens_per_s": entry["tokens_per_s"],
                     "ratio_vs_reference": entry["ratio_vs_reference"]})
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def trainer_steps(steps: int, dataset, precision: str = "auto") -> dict:
    """Our Trainer with the default config (``train.precision`` = ``precision``) for ``steps`` steps (no
    evaluation, no checkpoint)."""
    import tempfile

    from workbench.config import WorkbenchConfig
    from workbench.train.trainer import Trainer

    config = WorkbenchConfig()
    config.data.dataset = str(dataset.path)
    config.train.max_minutes, config.train.max_steps = 0.0, steps
    config.train.checkpoint_every, config.train.eval_every_seconds, config.train.log_every = 0, 0.0, 10
    config.train.precision = precision
    tokens = []
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, Path(folder) / "run")
        trainer.subscribe(lambda event: tokens.append(event.tokens_per_second) if event.type == "step" else None)
        trainer.run()
    times = trainer.step_times[20:]
    return {"steps": steps, "precision": trainer.precision, "median_step_ms": round(statistics.median(times) * 1e3, 2),
            "mean_step_ms": round(statistics.mean(times) * 1e3, 2),
            "tokens_per_s_median": round(statistics.median(tokens[2:] or tokens))}


def main() -> None:
    from workbench.train.allocator import restart_with_huge_pages

    if "--profile" not in sys.argv[1:]:    # under the profiler freed buffers are faulted in again every step, and
        restart_with_huge_pages()          # on huge pages that doubled the step: profiles stay on small pages
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="*", default=["tiny", "mini"],
                        help="presets to race (none: only the other measurements asked for)")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--vocab", type=int, default=0, help="vocabulary size (0: the sample's for tiny, else 30522)")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--matmuls", action="store_true")
    parser.add_argument("--allocators", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: CPU autocast on both sides (fast only with AMX or AVX512-BF16)")
    parser.add_argument("--masking", type=float, default=0.15, help="share of tokens predicted (default 0.15)")
    parser.add_argument("--trainer", type=int, default=0, metavar="N",
                        help="also time our Trainer (default config) for N steps on the sample")
    parser.add_argument("--trainer-precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="the Trainer's train.precision (default auto, the default config's)")
    parser.add_argument("--only-full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    global BF16, MASKING
    BF16, MASKING = args.precision == "bf16", args.masking

    import torch

    from corpora import prepared
    from workbench.model import cpu_linear
    from workbench.train.allocator import keep_freed_memory_for_reuse

    tuned = False if os.environ.get(NO_TUNING) else keep_freed_memory_for_reuse()
    dataset = prepared("sample")

    def vocab_of(preset: str) -> int:
        return args.vocab or (dataset.vocabulary.size if preset == "tiny" else 30522)

    report = {"threads": torch.get_num_threads(), "torch": torch.__version__, "cpu_vendor": cpu_linear.cpu_vendor(),
              "onednn_linear": cpu_linear.in_use(), "precision": args.precision, "masking": args.masking,
              "glibc_tuned": tuned, "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""), "results": []}
    for preset in args.presets:
        report["results"] += step_ratios(torch, dataset, preset, vocab_of(preset), args.steps, args.profile,
                                         args.compile, ("full",) if args.only_full else ("full", "padded"))
    if args.trainer:
        report["trainer"] = trainer_steps(args.trainer, dataset, args.trainer_precision)
    if args.matmuls:
        report["matmuls"] = matmul_table(torch, args.presets, vocab_of)
    if args.allocators:
        report["allocators"] = allocator_table(args)
    report["peak_rss_mb"] = rss_mb()["VmHWM"]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
