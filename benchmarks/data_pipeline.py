"""Data pipeline benchmark: prepare throughput and batch construction speed. Prints JSON.

    python benchmarks/data_pipeline.py [--repeat 3] [--batches 200]

Measures, on the built-in sample corpus (repeated ``--repeat`` times):
  * ``prepare`` (read + tokenize + write, with a given tokenizer) in MB/s against raw
    ``tokenizers`` ``encode_batch`` on the same sentences already in memory;
  * peak memory of ``prepare`` for the corpus once and ``--repeat`` times (flat = streaming);
  * batch construction (pair plan + assembly + masking, 32 x 128) in sequences/s against
    ``transformers``' ``DataCollatorForLanguageModeling`` on the same pre-tokenized pairs;
  * the training step rate of a BERT ``mini`` (4 layers, 256 hidden) in ``transformers``,
    to show batch construction never limits training.
Needs the ``bench`` extra (transformers) for the comparisons.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path



def best_of(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_rss_of_prepare(corpus: Path, tokenizer: Path, out: Path) -> float:
    """Peak resident memory (MB) of a separate process preparing ``corpus``."""
    code = (
        "import sys\n"
        "from workbench.config import WorkbenchConfig\n"
        "from workbench.data.prepare import prepare_dataset\n"
        "c = WorkbenchConfig(); c.tokenizer.path = sys.argv[2]\n"
        "prepare_dataset([sys.argv[1]], sys.argv[3], c)\n"
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the (large) parent across exec.
        "print([int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(corpus), str(tokenizer), str(out)],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="copies of the sample corpus to prepare")
    parser.add_argument("--batches", type=int, default=200, help="batches of 32 x 128 to build")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    from workbench.config import WorkbenchConfig
    from workbench.data.batches import BatchStream
    from workbench.data.corpus import read_corpus
    from workbench.data.sample import sample_corpus_path
    from workbench.data.prepare import prepare_dataset

    work = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    results: dict = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()}}
    try:
        sample = sample_corpus_path()
        corpus = work / "corpus.txt"
        with open(corpus, "wb") as out:
            for _ in range(args.repeat):
                out.write(sample.read_bytes())
        megabytes = corpus.stat().st_size / 1e6

        # A tokenizer trained once, so that prepare measures reading + tokenizing + writing.
        config = WorkbenchConfig()
        t0 = time.perf_counter()
        trained = prepare_dataset([sample], work / "trained", config)
        results["prepare_with_tokenizer_training"] = {
            "megabytes": round(sample.stat().st_size / 1e6, 2), "seconds": round(time.perf_counter() - t0, 2)}
        tokenizer_path = trained.dataset.path / "tokenizer.json"
        config.tokenizer.path = str(tokenizer_path)

        def prepare_once():
            shutil.rmtree(work / "ds", ignore_errors=True)
            prepare_dataset([corpus], work / "ds", config)

        prepare_s = best_of(prepare_once)
        sentences = [s for d in read_corpus([corpus]) for s in d.sentences]
        tokenizer = trained.dataset.tokenizer
        batches = []
        current, chars = [], 0
        for s in sentences:  # the same batch size (about 1 MB of text) as prepare uses
            current.append(s)
            chars += len(s)
            if chars >= 1 << 20:
                batches.append(current)
                current, chars = [], 0
        batches.append(current)
        raw_s = best_of(lambda: [tokenizer.encode_batch(b, add_special_tokens=False) for b in batches])
        raw_ids_s = best_of(lambda: [[e.ids for e in tokenizer.encode_batch(b, add_special_tokens=False)] for b in batches])
        reuse_s = best_of(lambda: prepare_dataset([corpus], work / "ds", config))
        results["prepare"] = {
            "megabytes": round(megabytes, 2),
            "prepare_mb_per_s": round(megabytes / prepare_s, 2),
            "raw_encode_batch_mb_per_s": round(megabytes / raw_s, 2),
            "raw_encode_batch_with_ids_mb_per_s": round(megabytes / raw_ids_s, 2),
            "ratio_vs_raw_encode_batch": round(raw_s / prepare_s, 3),
            "prepare_again_seconds": round(reuse_s, 4),
        }
        results["prepare_peak_rss_mb"] = {
            "corpus_x1": round(peak_rss_of_prepare(sample, tokenizer_path, work / "m1"), 1),
            f"corpus_x{args.repeat}": round(peak_rss_of_prepare(corpus, tokenizer_path, work / "m3"), 1),
        }

        # Batch construction: pairs + assembly + masking, 32 x 128, through the training BatchStream.
        dataset = prepare_dataset([corpus], work / "ds", config).dataset
        config.data.max_seq_length = 128

        def build(strategy: str, selection: str):
            config.masking.strategy, config.masking.selection = strategy, selection
            stream = BatchStream(dataset, config, 32, seed=0)
            n = min(args.batches, stream.batches_per_epoch(0))
            start = time.perf_counter()
            stream.plan(0)
            plan_s = time.perf_counter() - start
            pairs_in_plan = len(stream.plan(0))
            start = time.perf_counter()
            out = [stream.batch(0, k) for k in range(n)]
            batch_s = time.perf_counter() - start
            # the plan is built once per epoch: charge each sequence its share of it
            per_seq = batch_s / (n * 32) + plan_s / pairs_in_plan
            return 1.0 / per_seq, out

        ours = {}
        for strategy in ("token", "whole_word", "span"):
            for selection in ("exact", "bernoulli"):
                rate, built = build(strategy, selection)
                ours[f"{strategy}/{selection}"] = round(rate)
        rate, built = build("token", "bernoulli")
        results["batch_construction_seq_per_s"] = ours

        try:
            import transformers
            from transformers import BertConfig, BertForPreTraining, DataCollatorForLanguageModeling, PreTrainedTokenizerFast
        except ImportError:
            results["transformers"] = "not installed: pip install -e '.[bench]'"
        else:
            transformers.logging.set_verbosity_error()
            hf_tok = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                             cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
            examples = []
            for b in built:
                for i in range(len(b)):
                    real = b.attention_mask[i].astype(bool)
                    examples.append({"input_ids": b.original_ids[i][real].tolist(),
                                     "token_type_ids": b.token_type_ids[i][real].tolist(),
                                     "next_sentence_label": int(b.nsp_labels[i])})
            chunks = [examples[k:k + 32] for k in range(0, len(examples), 32)]
            hf = {}
            for tensors in ("pt", "np"):
                collator = DataCollatorForLanguageModeling(hf_tok, mlm_probability=0.15, return_tensors=tensors)
                seconds = best_of(lambda: [collator(c) for c in chunks], runs=2)
                hf[tensors] = round(len(examples) / seconds)
            results["transformers_collator_seq_per_s"] = hf
            results["ratio_vs_transformers_collator_pt"] = round(ours["token/bernoulli"] / hf["pt"], 2)
            results["ratio_vs_transformers_collator_np"] = round(ours["token/bernoulli"] / hf["np"], 2)

            # Training step rate of transformers' BERT mini, batch 32 x 128 (fp32, CPU).
            mini = BertConfig(vocab_size=tokenizer.get_vocab_size(), hidden_size=256, num_hidden_layers=4,
                              num_attention_heads=4, intermediate_size=1024, max_position_embeddings=512)
            model = BertForPreTraining(mini)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
            b = built[0]
            feed = {"input_ids": torch.from_numpy(b.input_ids), "token_type_ids": torch.from_numpy(b.token_type_ids),
                    "attention_mask": torch.from_numpy(b.attention_mask), "labels": torch.from_numpy(b.mlm_labels),
                    "next_sentence_label": torch.from_numpy(b.nsp_labels)}

            def step():
                loss = model(**feed).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()

            step()
            steps = 5
            seconds = best_of(lambda: [step() for _ in range(steps)], runs=2) / steps
            results["transformers_mini_training"] = {"steps_per_s": round(1 / seconds, 2),
                                                     "seq_per_s": round(32 / seconds, 1)}
            results["batch_construction_vs_mini_training_rate"] = round(ours["token/exact"] / (32 / seconds), 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
