"""``prepare`` and ``inspect``: corpus to dataset, and what masking and pairing really produce."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from workbench.commands.common import ProgressPrinter, UsageError, config_from_args


def cmd_prepare(args: argparse.Namespace) -> int:
    from workbench.data.prepare import prepare_dataset

    if args.tokenizer and args.vocab_size:
        raise UsageError("prepare: give either --tokenizer or --vocab-size, not both")
    if args.lowercase is not None and args.tokenizer:
        if Path(args.tokenizer).suffix == ".json":
            raise UsageError(f"prepare: --{'lowercase' if args.lowercase else 'cased'} does not apply to "
                             f"{args.tokenizer}: a tokenizer.json carries its own normaliser")
        setattr(args, "tokenizer.loaded_case", "lowercase" if args.lowercase else "cased")
    elif args.lowercase is not None:
        setattr(args, "tokenizer.lowercase", args.lowercase)
        setattr(args, "tokenizer.strip_accents", args.lowercase)
    setattr(args, "tokenizer.path", str(Path(args.tokenizer)) if args.tokenizer else None)
    setattr(args, "tokenizer.vocab_size", args.vocab_size)
    config = config_from_args(args)
    corpus = list(args.corpus)
    progress = ProgressPrinter(enabled=None if not args.json else False)
    if args.sample:
        from workbench.data.sample import sample_corpus_path

        corpus.append(str(sample_corpus_path(progress=lambda done, total: progress("sample", done, total))))
    if not corpus:
        raise UsageError("prepare: name corpus files or folders, or use --sample")
    try:
        result = prepare_dataset(corpus, args.out, config, progress=progress)
    finally:
        progress.close()
    dataset = result.dataset
    stats = dataset.stats
    if args.json:
        print(json.dumps({"dataset": str(dataset.path), "reused": result.reused, "resumed_at": result.resumed_at,
                          "seconds": result.seconds,
                          "fingerprint": dataset.fingerprint, "counts": dataset.manifest["counts"],
                          "stats": stats}, indent=1))
        return 0
    _print_dataset_summary(dataset, stats)
    if result.reused:
        print(f"\nup to date: {dataset.path} already holds this corpus and tokenizer "
              f"(fingerprint {dataset.fingerprint[:12]}); nothing to do")
    else:
        mb = dataset.manifest["counts"]["bytes"] / 1e6
        if result.resumed_at is not None:
            print(f"\nresumed an interrupted prepare that had done {result.resumed_at:.0%} of the corpus")
        print(f"\nwrote {dataset.path} in {result.seconds:.1f} s ({mb / max(result.seconds, 1e-9):.1f} MB/s)")
    return 0


def _print_dataset_summary(dataset, stats: dict) -> None:
    c = dataset.manifest["counts"]
    tok = dataset.manifest["tokenizer"]
    print(f"dataset     {dataset.path}")
    print(f"documents   {c['documents']:,}")
    print(f"sentences   {c['sentences']:,}")
    print(f"tokens      {c['tokens']:,}   ({c['characters']:,} characters, {c['bytes'] / 1e6:.1f} MB)")
    print(f"tokenizer   WordPiece, {tok['vocab_size']:,} tokens, {'lowercase' if tok['lowercase'] else 'cased'}; "
          f"[UNK] share {stats['unknown_token_share']:.3%}")
    from workbench.data.tokenizer_sample import describe_training

    print(f"            {describe_training(dataset.manifest)}")
    for name, label in (("sentence_tokens", "tokens / sentence"), ("document_sentences", "sentences / doc"),
                        ("document_tokens", "tokens / doc")):
        s = stats[name]
        print(f"{label:<18} mean {s['mean']:.1f}  p50 {s['p50']}  p90 {s['p90']}  p99 {s['p99']}  max {s['max']}"
              f"{'+' if s.get('capped') else ''}")
    from workbench.data.diagnostics import Diagnostics

    lines = Diagnostics.from_dict(stats["diagnostics"]).lines()
    if lines:
        print("findings:")
        for line in lines:
            print(f"  - {line}")


# --- inspect -------------------------------------------------------------------------

def cmd_inspect(args: argparse.Namespace) -> int:
    from workbench.data.inspection import realised_statistics, render_example, training_examples
    from workbench.data.dataset import TokenizedDataset

    config = config_from_args(args)
    path = args.dataset or config.data.dataset
    if not path:
        raise UsageError("inspect: name a dataset directory (or set data.dataset in --config)")
    dataset = TokenizedDataset(path)
    if getattr(args, "data.max_seq_length") is None and not args.config:
        # Without an explicit choice, inspect at the length the dataset was prepared for.
        config.data.max_seq_length = int(dataset.manifest["config"]["data"]["max_seq_length"])
    for flag, value, low, high in (("--samples", args.samples, 1, 10**7), ("--batch-size", args.batch_size, 1, 65536),
                                   ("--seed", args.seed, 0, 2**63 - 1), ("--show", args.show, 0, 10**4)):
        if not low <= value <= high:
            raise UsageError(f"inspect: {flag} must be in [{low}, {high:,}], got {value}")
    vocab = dataset.vocabulary
    shown: list[str] = []
    color = sys.stdout.isatty() and not args.json and os.environ.get("NO_COLOR") is None

    def batches():
        for batch in training_examples(dataset, config, args.samples, args.seed, args.batch_size):
            for row in range(min(len(batch), args.show - len(shown))):
                shown.append(render_example(batch, row, vocab, color))
            yield batch

    stats = realised_statistics(batches(), vocab, config)
    if args.json:
        stats["examples"] = shown
        print(json.dumps(stats, indent=1))
        return 0
    _print_realised(stats, dataset)
    if shown:
        print("\nexamples   [MASK:original]  [original->random]  [=kept]   segment B in cyan" if color else
              "\nexamples   [MASK:original]  [original->random]  [=kept]")
        for i, text in enumerate(shown, 1):
            print(f"\n#{i} {text}")
    return 0


def _print_realised(s: dict, dataset) -> None:
    c = s["configured"]
    print(f"{s['samples']:,} training examples from {dataset.path} "
          f"({c['selection']} selection, {c['strategy']} units, {c['objective']}, max length {c['max_seq_length']})")
    print(f"{'':<28}{'realised':>10}{'configured':>12}")
    rows = [
        ("selected / non-special", s["selected_fraction"], c["probability"]),
        ("  of which [MASK]", s["mask_fraction"], c["mask_fraction"]),
        ("  of which random", s["random_fraction"], c["random_fraction"]),
        ("  of which kept", s["keep_fraction"], c["keep_fraction"]),
        ("IsNext pairs", s["is_next_fraction"], c["is_next_fraction"]),
    ]
    for label, realised, configured in rows:
        print(f"{label:<28}{realised:>10.4f}{configured:>12.4f}")
    print(f"{'selected per sequence':<28}{s['mean_selected_per_sequence']:>10.2f}"
          f"{'  (cap ' + str(c['max_predictions_per_seq'] or 'none') + ')':>12}")
    if c["final_probability"]:
        print(f"{'':<28}(the run's first examples: the rate falls to {c['final_probability']:g} by its end)")
    print(f"{'sequences with none':<28}{s['zero_selected_sequences']:>10}")
    print(f"{'special tokens selected':<28}{s['special_selected']:>10}")
    print(f"{'random drew a special':<28}{s['random_hit_special']:>10}")
    p = s["length_percentiles"]
    print(f"{'length (tokens)':<28}{s['mean_length']:>10.1f}   p10 {p['p10']}  p50 {p['p50']}  p90 {p['p90']}  "
          f"max {s['max_length']}")
    print(f"{'padding share':<28}{s['padding_fraction']:>10.4f}")
    print(f"{'pairs truncated':<28}{s['truncated_fraction']:>10.4f}")
