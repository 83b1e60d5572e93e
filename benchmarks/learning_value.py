"""Learning per minute on held-out text: our default recipe against the plain transformers loops.

For each corpus (a document-level held-out split), every contender trains for
the same wall-clock budget and is scored at fixed intervals of training time
(evaluation time not counted) on the same fixed, pre-masked evaluation set
(``workbench.train.evaluation``: standard 15% masking with 80/10/10, its own
seed). Reported with the context-free floor (unigram loss and accuracy on the
same positions) and chance for the pair task.

Contenders (each in its own process, so peak RSS is its own):
  ours           the workbench's ``Trainer`` with the default config (``--set`` changes it)
  hf-bert        transformers ``BertForPreTraining``: Google-style pairs, the MLM collator's
                 masking law (Bernoulli 15%, 80/10/10; ``--loop-masking`` changes the rate),
                 AdamW lr 1e-3, time-planned schedule
  hf-modernbert  transformers ``ModernBertForMaskedLM`` (global attention, sparse prediction)
                 with a linear NSP head on [CLS], lr 2e-3, the same pairs and schedule

    python benchmarks/learning_value.py --minutes 5 --corpus sample --corpus debian
    python benchmarks/learning_value.py --minutes 1.5 --contender ours --set model.architecture=bert

Prints one JSON object per corpus and contender, then a summary per corpus.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

CONTENDERS = ("ours", "hf-bert", "hf-modernbert")


def base_config(dataset_path: str, minutes: float, preset: str, overrides: list[str]):
    from workbench.config import WorkbenchConfig

    config = WorkbenchConfig()
    config.data.dataset = dataset_path
    config.model.preset = preset
    config.train.max_minutes = minutes
    config.train.max_steps = 0
    config.train.checkpoint_every = 0
    config.train.log_every = 10
    return config.with_overrides(overrides) if overrides else config


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# --- ours ----------------------------------------------------------------------------------------------------

def run_ours(config, eval_every: float) -> dict:
    from workbench.train.trainer import Trainer

    config.train.eval_every_seconds = eval_every
    points, steps = [], []
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(config, Path(folder) / "run")

        def collect(event):
            if event.type == "eval":
                points.append({"seconds": round(event.elapsed, 1), "step": event.step, "mlm_loss": event.mlm_loss,
                               "mlm_accuracy": event.mlm_accuracy, "pair_accuracy": event.nsp_accuracy})
            elif event.type == "step":
                steps.append(event)

        trainer.subscribe(collect)
        result = trainer.run()
    tokens = steps[-1].tokens_seen if steps else 0
    return {"points": points, "steps": result.step, "tokens_per_second": tokens / max(1e-9, steps[-1].elapsed),
            "parameters": trainer.model.num_parameters()}


# --- the transformers reference loops ---------------------------------------------------------------------------

def run_transformers(kind: str, config, eval_every: float, masking_probability: float = 0.15) -> dict:
    import numpy as np
    import torch
    import transformers

    from workbench.data.batches import BatchStream
    from workbench.data.dataset import TokenizedDataset
    from workbench.train.evaluation import build_eval_set

    from workbench.train.allocator import keep_freed_memory_for_reuse

    from workbench.train.device import resolve_precision

    keep_freed_memory_for_reuse()                 # as our trainer does: the reference loop gains from it too
    bf16 = resolve_precision(config.train.precision, torch.device("cpu")) == "bf16"   # the same as ours
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    torch.manual_seed(config.train.seed)
    dataset = TokenizedDataset(config.data.dataset)
    vocab = dataset.vocabulary
    sizes = config.model.resolved(vocab_size=vocab.size)
    collator_law = config.with_overrides(["masking.selection=\"bernoulli\"", f"masking.probability={masking_probability}",
                                          "masking.mask_fraction=0.8", "masking.random_fraction=0.1",
                                          "masking.strategy=\"token\"", "masking.min_predictions_per_seq=0",
                                          f"masking.max_predictions_per_seq={config.data.max_seq_length}"])
    stream = BatchStream(dataset, collator_law, config.train.batch_size, config.train.seed, "train")
    eval_set = build_eval_set(dataset, config, sequences=32 * config.train.eval_batches)
    if kind == "hf-bert":
        hf = transformers.BertConfig(vocab_size=vocab.size, hidden_size=sizes.hidden_size,
                                     num_hidden_layers=sizes.num_hidden_layers,
                                     num_attention_heads=sizes.num_attention_heads,
                                     intermediate_size=sizes.intermediate_size, pad_token_id=vocab.pad_id,
                                     max_position_embeddings=max(512, config.data.max_seq_length))
        model = transformers.BertForPreTraining(hf)
        lr = 1e-3
        nsp_head = None
    else:
        hf = transformers.ModernBertConfig(vocab_size=vocab.size, hidden_size=sizes.hidden_size,
                                           num_hidden_layers=sizes.num_hidden_layers,
                                           num_attention_heads=sizes.num_attention_heads,
                                           intermediate_size=sizes.intermediate_size, global_attn_every_n_layers=1,
                                           max_position_embeddings=max(512, config.data.max_seq_length),
                                           pad_token_id=vocab.pad_id, cls_token_id=vocab.cls_id,
                                           sep_token_id=vocab.sep_id, bos_token_id=vocab.cls_id,
                                           eos_token_id=vocab.sep_id, sparse_prediction=True)
        # the faster of the two here: sdpa in fp32; in bf16 on CPU its backward is slow and eager wins
        # (modernbert_step_profile.py --precision bf16: 46k against 39k tokens/s, tiny)
        hf._attn_implementation = "eager" if bf16 else "sdpa"
        model = transformers.ModernBertForMaskedLM(hf)
        nsp_head = torch.nn.Linear(sizes.hidden_size, 2)
        lr = 2e-3
    params = list(model.parameters()) + (list(nsp_head.parameters()) if nsp_head is not None else [])
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01, fused=True)

    def forward(batch, train: bool):
        ids = torch.from_numpy(batch.input_ids)
        mask = torch.from_numpy(batch.attention_mask)
        labels = torch.from_numpy(batch.mlm_labels)
        nsp = torch.from_numpy(batch.nsp_labels)
        if kind == "hf-bert":
            out = model(input_ids=ids, token_type_ids=torch.from_numpy(batch.token_type_ids), attention_mask=mask)
            selected = labels != -100
            logits = out.prediction_logits[selected]
            nsp_logits = out.seq_relationship_logits
        else:
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state    # (B, T, H)
            selected = labels != -100
            logits = model.decoder(model.head(hidden[selected]))                        # sparse prediction
            nsp_logits = nsp_head(hidden[:, 0])
        targets = labels[selected]
        mlm_loss = torch.nn.functional.cross_entropy(logits, targets)
        nsp_loss = torch.nn.functional.cross_entropy(nsp_logits, nsp)
        return mlm_loss, nsp_loss, logits, targets, nsp_logits, nsp

    def evaluate() -> dict:
        model.eval()
        totals = np.zeros(5)
        with torch.no_grad():
            for batch in eval_set.batches:                   # in fp32, as our trainer evaluates
                mlm_loss, _, logits, targets, nsp_logits, nsp = forward(batch, False)
                totals += [float(mlm_loss) * len(targets), float((logits.argmax(-1) == targets).sum()), len(targets),
                           float((nsp_logits.argmax(-1) == nsp).sum()), len(nsp)]
        model.train()
        return {"mlm_loss": totals[0] / totals[2], "mlm_accuracy": totals[1] / totals[2],
                "pair_accuracy": totals[3] / totals[4]}

    budget = 60.0 * config.train.max_minutes
    warmup = 0.06 * budget
    elapsed, step, tokens, next_eval = 0.0, 0, 0, eval_every
    points = []
    batches = stream.iterate(0, 0)
    model.train()
    while elapsed < budget:
        started = time.perf_counter()
        fraction = elapsed / budget
        scale = fraction / 0.06 if elapsed < warmup else max(0.0, (1.0 - fraction) / 0.94)
        for group in optimizer.param_groups:
            group["lr"] = lr * max(scale, 1e-3)
        _, _, batch = next(batches)
        with autocast:
            mlm_loss, nsp_loss, *_ = forward(batch, True)
        (mlm_loss + nsp_loss).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        tokens += int(batch.attention_mask.sum())
        elapsed += time.perf_counter() - started
        if elapsed >= next_eval or elapsed >= budget:
            points.append({"seconds": round(elapsed, 1), "step": step, **evaluate()})
            while next_eval <= elapsed:
                next_eval += eval_every
    return {"points": points, "steps": step, "tokens_per_second": tokens / max(elapsed, 1e-9),
            "parameters": sum(p.numel() for p in params)}


# --- driver -----------------------------------------------------------------------------------------------------

def one(args) -> None:
    """Run one contender on one corpus in this process; print its JSON."""
    from corpora import prepared

    from workbench.train.evaluation import build_eval_set

    dataset = prepared(args.corpus, args.max_seq_length)
    config = base_config(str(dataset.path), args.minutes, args.preset, args.set)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    if args.contender == "ours":
        result = run_ours(config, args.eval_every)
    else:
        result = run_transformers(args.contender, config, args.eval_every, args.loop_masking)
    eval_set = build_eval_set(dataset, config, sequences=32 * config.train.eval_batches)
    final = result["points"][-1] if result["points"] else {}
    print(json.dumps({
        "corpus": args.corpus, "contender": args.contender, "minutes": args.minutes, "preset": args.preset,
        "overrides": args.set, "loop_masking": args.loop_masking if args.contender != "ours" else None,
        "final": final, "floor_mlm_loss": eval_set.floor_loss,
        "floor_mlm_accuracy": eval_set.floor_accuracy, "chance_pair_accuracy": eval_set.chance_pair_accuracy,
        "below_floor_nats": eval_set.floor_loss - final.get("mlm_loss", math.nan),
        "accuracy_vs_floor": final.get("mlm_accuracy", math.nan) / max(eval_set.floor_accuracy, 1e-9),
        "eval_sequences": eval_set.sequences, "steps": result["steps"],
        "tokens_per_second": round(result["tokens_per_second"]), "parameters": result["parameters"],
        "peak_rss_mb": round(peak_rss_mb()), "wall_seconds": round(time.perf_counter() - started),
        "curve": result["points"],
    }), flush=True)


def main() -> None:
    from workbench.train.allocator import restart_with_huge_pages

    restart_with_huge_pages()       # as the program starts: malloc on huge pages where glibc and the kernel allow
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", help="sample, debian, manpages, python (repeatable; default all)")
    parser.add_argument("--contender", action="append", choices=CONTENDERS, help="default: all three")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--eval-every", type=float, default=30.0, help="seconds of training between evaluations")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], help="override our config (SECTION.KEY=VALUE)")
    parser.add_argument("--loop-masking", type=float, default=0.15,
                        help="masking rate of the transformers loops (default 0.15, the collator's; ModernBERT "
                             "was trained with 0.3)")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        args.corpus, args.contender = args.corpus[0], args.contender[0]
        one(args)
        return
    from corpora import CORPORA

    for corpus in args.corpus or CORPORA:
        results = []
        for contender in args.contender or CONTENDERS:
            command = [sys.executable, __file__, "--one", "--corpus", corpus, "--contender", contender,
                       "--minutes", str(args.minutes), "--eval-every", str(args.eval_every), "--preset", args.preset,
                       "--max-seq-length", str(args.max_seq_length), "--threads", str(args.threads),
                       "--loop-masking", str(args.loop_masking)]
            for override in args.set:
                command += ["--set", override]
            done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
            if done.returncode != 0:
                print(json.dumps({"corpus": corpus, "contender": contender, "error": done.stderr[-2000:]}), flush=True)
                continue
            line = done.stdout.strip().splitlines()[-1]
            print(line, flush=True)
            results.append(json.loads(line))
        if results:
            print(json.dumps({"summary": corpus, "floor_mlm_loss": round(results[0]["floor_mlm_loss"], 3),
                              "floor_mlm_accuracy": round(results[0]["floor_mlm_accuracy"], 4),
                              "rows": {r["contender"]: {k: round(v, 4) for k, v in r["final"].items()
                                                       if isinstance(v, float)} | {"steps": r["steps"]}
                                       for r in results}}), flush=True)


if __name__ == "__main__":
    main()
