"""Preparing a multi-gigabyte corpus: throughput against raw ``tokenizers``, flat memory, tokenizer training
with and without the sample. Prints JSON.

    python benchmarks/big_prepare.py [--gigabytes 2.2] [--skip-whole]

The corpus is ``benchmarks/big_corpus.py``'s (JSONL, plain and zstd). Each measurement runs in a fresh
process whose peak RSS (VmHWM) is read from ``/proc``; for ``prepare`` the parent also reads the child's
resident memory when it reports 10%, 50% and 100% of the corpus tokenized (flat memory shows as three
close numbers). In order:

1. tokenizer training on the default sample (``tokenizer.sample_mb``): ours, then ``tokenizers``'
   ``WordPieceTrainer`` on the same sampled text (the trainer we replaced; not reproducible);
2. tokenizer training on the whole corpus (ours; ``--skip-whole`` leaves it out);
3. ``prepare`` of the plain and the zstd file with the tokenizer of 1 (tokenizer training excluded, as
   the comparison asks), alternating with
4. raw ``tokenizers``: read the same plain file, ``encode_batch_fast`` each 1 MB of record texts, count ids.

``--workers`` measures instead whether processes beat ``tokenizers``' own threads: the sentences of the
first ``--workers-mb`` of the corpus, encoded by ``SentenceEncoder`` in one process with ``tokenizers``'
threads on all cores, against one single-threaded process per core each encoding its share of the batches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from big_corpus import build  # noqa: E402

PEAK = "[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')][0] / 1024"

TRAIN = """
import json, sys, time
from workbench.config import WorkbenchConfig
from workbench.data.corpus import list_corpus_files
from workbench.data.prepare import _train_on_corpus
config = WorkbenchConfig()
config.tokenizer.vocab_size = 30522
config.tokenizer.sample_mb = int(sys.argv[2])
files = list_corpus_files([sys.argv[1]])
started = time.perf_counter()
tokenizer, training = _train_on_corpus(files, config, lambda *a: None, lambda: False, 0)
tokenizer.save(sys.argv[3])
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": PEAK, "training": training}))
""".replace("PEAK", PEAK)

TRAIN_THEIRS = """
import json, sys, time
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
from workbench.config import WorkbenchConfig
from workbench.data.corpus import list_corpus_files
from workbench.data.tokenizer import SPECIAL_TOKENS
from workbench.data.tokenizer_sample import plan_for, sampled_texts
config = WorkbenchConfig()
files = list_corpus_files([sys.argv[1]])
started = time.perf_counter()
tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
trainer = trainers.WordPieceTrainer(vocab_size=30522, min_frequency=2, limit_alphabet=1000,
                                    special_tokens=list(SPECIAL_TOKENS), show_progress=False)
tokenizer.train_from_iterator(sampled_texts(files, config.data, plan_for(files, int(sys.argv[2]))), trainer=trainer)
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": PEAK}))
""".replace("PEAK", PEAK)

PREPARE = """
import json, sys, time
from workbench.config import WorkbenchConfig
from workbench.data.prepare import prepare_dataset
config = WorkbenchConfig()
config.tokenizer.path = sys.argv[2]
marks = [0.1, 0.5]
def progress(stage, done, total):
    if stage == "tokenize" and marks and total and done >= marks[0] * total:
        print("progress", marks.pop(0), flush=True)
        sys.stdin.readline()  # the parent has read our memory
started = time.perf_counter()
result = prepare_dataset([sys.argv[1]], sys.argv[3], config, progress=progress)
print("progress", 1.0, flush=True)
sys.stdin.readline()
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": PEAK,
                  "tokens": result.dataset.num_tokens}))
""".replace("PEAK", PEAK)

RAW = """
import json, os, sys, time
from tokenizers import Tokenizer
tokenizer = Tokenizer.from_file(sys.argv[2])
started = time.perf_counter()
batch, size, tokens = [], 0, 0
with open(sys.argv[1], encoding="utf-8") as handle:
    for line in handle:
        text = json.loads(line)["text"]
        batch.append(text)
        size += len(text)
        if size >= 1 << 20:
            tokens += sum(len(e.ids) for e in tokenizer.encode_batch_fast(batch, add_special_tokens=False))
            batch, size = [], 0
if batch:
    tokens += sum(len(e.ids) for e in tokenizer.encode_batch_fast(batch, add_special_tokens=False))
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": PEAK, "tokens": tokens}))
""".replace("PEAK", PEAK)


WORKERS = """
import json, os, sys, time
from tokenizers import Tokenizer
import numpy as np
from workbench.config import DataConfig
from workbench.data.corpus import read_corpus
from workbench.data.sentence_encoding import SentenceEncoder
from workbench.data.wordpiece_training import batched_by_chars
corpus, tokenizer_path, share, shares = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sentences = (s for document in read_corpus([corpus], DataConfig()) for s in document.sentences)
batches = list(batched_by_chars(sentences, 1 << 20))  # as prepare batches them
mine = batches[share::shares]
encoder = SentenceEncoder(Tokenizer.from_file(tokenizer_path))
print("ready", flush=True)
sys.stdin.readline()
started = time.perf_counter()
tokens = sum(int(encoder.encode(b, np.uint16)[0].sum()) for b in mine)
print(json.dumps({"seconds": time.perf_counter() - started, "tokens": tokens}))
"""


def encode_workers(corpus: Path, tokenizer: Path, megabytes: int, work: Path) -> dict:
    """Encoding the same sentences: one process with tokenizers' threads vs one single-threaded process per core."""
    part = work / "part.jsonl"
    with open(corpus, "rb") as source, open(part, "wb") as out:
        for line in source:
            out.write(line)
            if out.tell() >= megabytes * 1e6:
                break
    cores = os.cpu_count() or 1
    results = {}
    for name, processes, threads in (("threads", 1, cores), ("processes", cores, 1)):
        env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "true"}
        children = [subprocess.Popen([sys.executable, "-c", WORKERS, str(part), str(tokenizer), str(i), str(processes)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                    for i in range(processes)]
        for child in children:  # all have read their sentences: start together
            assert child.stdout.readline().startswith("ready")
        started = time.perf_counter()
        for child in children:
            child.stdin.write("\n")
            child.stdin.flush()
        outs = [json.loads(child.stdout.readline()) for child in children]
        wall = time.perf_counter() - started
        for child in children:
            child.wait()
        results[name] = {"processes": processes, "threads_each": threads, "seconds": round(wall, 2),
                         "tokens": sum(o["tokens"] for o in outs),
                         "mb_per_s": round(part.stat().st_size / 1e6 / wall, 2)}
    return results


def cpu_seconds(pid_times_before: os.times_result) -> float:
    after = os.times()
    return (after.children_user - pid_times_before.children_user) + (after.children_system
                                                                       - pid_times_before.children_system)


def run_json(code: str, *args: str) -> dict:
    before = os.times()
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    out["cpu_seconds"] = round(cpu_seconds(before), 1)
    return out


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_prepare(corpus: Path, tokenizer: Path, out: Path) -> dict:
    before = os.times()
    child = subprocess.Popen([sys.executable, "-c", PREPARE, str(corpus), str(tokenizer), str(out)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    rss_at = {}
    assert child.stdout is not None and child.stdin is not None
    for line in child.stdout:
        if line.startswith("progress"):
            rss_at[f"{float(line.split()[1]):.0%}"] = round(rss_mb(child.pid), 1)
            child.stdin.write("\n")
            child.stdin.flush()
        else:
            result = json.loads(line)
    if child.wait() != 0:
        raise SystemExit("prepare failed")
    result["rss_mb_at"] = rss_at
    result["cpu_seconds"] = round(cpu_seconds(before), 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=2.2)
    parser.add_argument("--skip-whole", action="store_true", help="leave out training on the whole corpus")
    parser.add_argument("--workers", action="store_true", help="only: processes against tokenizers' threads")
    parser.add_argument("--workers-mb", type=int, default=200)
    args = parser.parse_args()
    corpus = build(args.gigabytes)
    plain, packed = Path(corpus["plain"]), Path(corpus["zstd"])
    if args.workers:
        work = Path(tempfile.mkdtemp(prefix="wb-big-"))
        try:
            tokenizer = work / "tokenizer.json"
            run_json(TRAIN, str(plain), "64", str(tokenizer))
            print(json.dumps(encode_workers(plain, tokenizer, args.workers_mb, work), indent=1))
        finally:
            subprocess.run(["rm", "-rf", str(work)], check=False)
        return
    size_mb = plain.stat().st_size / 1e6
    from workbench.config import TokenizerConfig

    sample_mb = TokenizerConfig().sample_mb
    results: dict = {"corpus": corpus, "cpus": os.cpu_count()}
    work = Path(tempfile.mkdtemp(prefix="wb-big-"))
    try:
        tokenizer = work / "tokenizer.json"
        results["train_sample_ours"] = run_json(TRAIN, str(plain), str(sample_mb), str(tokenizer))
        results["train_sample_tokenizers"] = run_json(TRAIN_THEIRS, str(plain), str(sample_mb))
        if not args.skip_whole:
            results["train_whole_ours"] = run_json(TRAIN, str(plain), "0", str(work / "whole.json"))
        for name, path in (("plain", plain), ("zstd", packed)):
            out = work / f"dataset-{name}"
            prepared = run_prepare(path, tokenizer, out)
            prepared["mb_per_s"] = round(size_mb / prepared["seconds"], 2)
            results[f"prepare_{name}"] = prepared
            subprocess.run(["rm", "-rf", str(out)], check=True)
            if name == "plain":
                raw = run_json(RAW, str(plain), str(tokenizer))
                raw["mb_per_s"] = round(size_mb / raw["seconds"], 2)
                results["raw_tokenizers_encode"] = raw
        results["prepare_vs_raw"] = round(results["prepare_plain"]["mb_per_s"]
                                          / results["raw_tokenizers_encode"]["mb_per_s"], 3)
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
