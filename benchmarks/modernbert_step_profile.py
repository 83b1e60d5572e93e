"""Where a ModernBERT training step spends its time: ours against transformers' ModernBertForMaskedLM. JSON.

    python benchmarks/modernbert_step_profile.py [--presets tiny mini] [--steps 12] [--vocab 30522]

The same weights (ours exported under transformers' names), the same batches (the sample corpus at 128
tokens: ``padded`` as the data really comes, and ``full``, every row cut to 128 real tokens), the same
optimizer (fused AdamW), MLM only on both sides (ours without the pair head; theirs with sparse
prediction). transformers runs with "sdpa" and "eager"; the faster is the reference. Prints the median step
time of each, the ratio, and for ours and the reference the top operators by self CPU time from
``torch.profiler`` (the table issue 21 asks for). Needs the ``bench`` extra (transformers).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def batches_of(dataset, length: int, full: bool, count: int = 6, batch: int = 32):
    import numpy as np

    from workbench.config import WorkbenchConfig
    from workbench.data.batches import BatchStream

    config = WorkbenchConfig()
    config.data.max_seq_length = length
    stream = BatchStream(dataset, config, batch, seed=0)
    out = []
    for k in range(count):
        b = stream.batch(0, k)
        ids, labels, mask = b.input_ids, b.mlm_labels, b.attention_mask
        if full:                                     # every row a full 128 tokens of real text (no padding)
            tokens = np.asarray(dataset.tokens[k * batch * length:(k + 1) * batch * length], dtype=np.int64)
            ids = tokens.reshape(batch, length).copy()
            rng = np.random.default_rng(k)
            chosen = rng.random(ids.shape) < 0.15
            labels = np.where(chosen, ids, -100)
            ids = np.where(chosen, dataset.vocabulary.mask_id, ids)
            mask = np.ones_like(ids)
        out.append((ids, labels, mask))
    return out


def build(preset: str, vocab: int, impls: list[str]):
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


def step(torch, name, model, optimizer, batch):
    ids, labels, mask = (torch.from_numpy(a) for a in batch)
    if name == "ours":
        loss = model(ids, None, mask, mlm_labels=labels, pair_head=False).loss
    else:
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def profile_table(torch, name, model, optimizer, batches, rows: int = 14) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[:3]:
            step(torch, name, model, optimizer, batch)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "self_ms_per_step": round(e.self_cpu_time_total / 1000 / 3, 2),
             "share": round(e.self_cpu_time_total / total, 3), "calls_per_step": e.count // 3}
            for e in events[:rows]]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["tiny", "mini"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--vocab", type=int, default=0, help="vocabulary size (0: the sample dataset's)")
    args = parser.parse_args()

    import torch

    from corpora import prepared

    dataset = prepared("sample")
    vocab = args.vocab or dataset.vocabulary.size
    report = {"threads": torch.get_num_threads(), "vocab": vocab, "results": []}
    for preset in args.presets:
        models, optimizers = build(preset, vocab, ["sdpa", "eager"])
        for kind in ("full", "padded"):
            batches = batches_of(dataset, 128, full=kind == "full")
            times = {name: [] for name in models}
            for name, model in models.items():                  # warm-up
                step(torch, name, model, optimizers[name], batches[0])
            for k in range(args.steps):                         # interleaved, round by round
                for name, model in models.items():
                    started = time.perf_counter()
                    step(torch, name, model, optimizers[name], batches[k % len(batches)])
                    times[name].append(time.perf_counter() - started)
            median = {name: statistics.median(t) for name, t in times.items()}
            reference = min(("hf_sdpa", "hf_eager"), key=lambda n: median[n])
            real_tokens = sum(int(b[2].sum()) for b in batches) / len(batches)
            entry = {"preset": preset, "batch": kind, "real_tokens_per_batch": real_tokens,
                     "tokens_per_s": {n: round(real_tokens / m) for n, m in median.items()},
                     "reference": reference, "ratio_vs_reference": round(median[reference] / median["ours"], 3)}
            if kind == "full":
                entry["profile_ours"] = profile_table(torch, "ours", models["ours"], optimizers["ours"], batches)
                entry["profile_reference"] = profile_table(torch, reference, models[reference],
                                                           optimizers[reference], batches)
            report["results"].append(entry)
            print(json.dumps(entry), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
