"""The ``pretrain-workbench`` command line: headless access to the core.

Exit status: 0 on success; 2 with one line on stderr for anything the user
can fix (a bad path, corpus, option or config); 1 for an internal error,
whose traceback goes to a log file rather than the terminal.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

from workbench import __version__
from workbench.config import WorkbenchConfig, load_config, parse_assignment
from workbench.errors import WorkbenchError


class UsageError(WorkbenchError):
    """A bad command-line option."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of usage + error
        raise UsageError(f"{self.prog}: {message} (see --help)")


# --- progress ------------------------------------------------------------------

class ProgressPrinter:
    """A one-line progress bar on stderr, redrawn at most 10 times a second."""

    LABELS = {"train-tokenizer": "training tokenizer", "tokenize": "tokenizing", "sample": "building sample corpus"}

    def __init__(self, stream=None, enabled: bool | None = None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.last = 0.0
        self.started = time.perf_counter()
        self.stage = ""

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if stage != self.stage:
            if self.stage:
                self.stream.write("\n")
            self.stage, self.started = stage, now
        elif now - self.last < 0.1 and done < total:
            return
        self.last = now
        fraction = done / total if total else 1.0
        bar = "#" * int(fraction * 30)
        elapsed = now - self.started
        eta = f"{elapsed / fraction - elapsed:4.0f}s left" if 0 < fraction < 1 else f"{elapsed:4.1f}s     "
        self.stream.write(f"\r{self.LABELS.get(stage, stage):>22} [{bar:<30}] {fraction:6.1%} {eta}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.stage:
            self.stream.write("\n")
            self.stream.flush()
            self.stage = ""


# --- shared option handling ------------------------------------------------------

def _add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="TOML", help="read settings from this TOML file first")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting (repeatable), e.g. --set masking.probability=0.2")


def _add_masking_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("masking and pairing (override the config)")
    g.add_argument("--probability", type=float, dest="masking.probability")
    g.add_argument("--mask-fraction", type=float, dest="masking.mask_fraction")
    g.add_argument("--random-fraction", type=float, dest="masking.random_fraction")
    g.add_argument("--selection", choices=("exact", "bernoulli"), dest="masking.selection")
    g.add_argument("--strategy", choices=("token", "whole_word", "span"), dest="masking.strategy")
    g.add_argument("--whole-word", action="store_const", const="whole_word", dest="masking.strategy",
                   help="same as --strategy whole_word")
    g.add_argument("--span", action="store_const", const="span", dest="masking.strategy",
                   help="same as --strategy span")
    g.add_argument("--max-predictions", type=int, dest="masking.max_predictions_per_seq")
    g.add_argument("--min-predictions", type=int, dest="masking.min_predictions_per_seq")
    g.add_argument("--objective", choices=("nsp", "sop"), dest="nsp.objective")
    g.add_argument("--sop", action="store_const", const="sop", dest="nsp.objective", help="same as --objective sop")
    g.add_argument("--random-next-probability", type=float, dest="nsp.random_next_probability")
    g.add_argument("--short-seq-prob", type=float, dest="nsp.short_seq_prob")
    g.add_argument("--max-seq-length", type=int, dest="data.max_seq_length")


def _config_from_args(args: argparse.Namespace, base: WorkbenchConfig | None = None) -> WorkbenchConfig:
    """Config file, then --set, then the dedicated flags (each may be absent)."""
    config = load_config(args.config) if getattr(args, "config", None) else (base or WorkbenchConfig())
    raw = config.to_dict()
    for assignment in getattr(args, "overrides", []):
        key, value = parse_assignment(assignment)
        section, _, name = key.partition(".")
        raw.setdefault(section, {})[name] = value
    for key, value in vars(args).items():
        if "." in key and value is not None:
            section, _, name = key.partition(".")
            raw[section][name] = value
    return WorkbenchConfig.from_dict(raw, source="options")


# --- prepare -------------------------------------------------------------------------

def _cmd_prepare(args: argparse.Namespace) -> int:
    from workbench.data.store import prepare_dataset

    if args.tokenizer and args.vocab_size:
        raise UsageError("prepare: give either --tokenizer or --vocab-size, not both")
    if args.lowercase is not None:
        setattr(args, "tokenizer.lowercase", args.lowercase)
        setattr(args, "tokenizer.strip_accents", args.lowercase)
    setattr(args, "tokenizer.path", str(Path(args.tokenizer)) if args.tokenizer else None)
    setattr(args, "tokenizer.vocab_size", args.vocab_size)
    config = _config_from_args(args)
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
        print(json.dumps({"dataset": str(dataset.path), "reused": result.reused, "seconds": result.seconds,
                          "fingerprint": dataset.fingerprint, "counts": dataset.manifest["counts"],
                          "stats": stats}, indent=1))
        return 0
    _print_dataset_summary(dataset, stats)
    if result.reused:
        print(f"\nup to date: {dataset.path} already holds this corpus and tokenizer "
              f"(fingerprint {dataset.fingerprint[:12]}); nothing to do")
    else:
        mb = dataset.manifest["counts"]["bytes"] / 1e6
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

def _cmd_inspect(args: argparse.Namespace) -> int:
    from workbench.data.inspection import realised_statistics, render_example, training_examples
    from workbench.data.store import TokenizedDataset

    config = _config_from_args(args)
    path = args.dataset or config.data.dataset
    if not path:
        raise UsageError("inspect: name a dataset directory (or set data.dataset in --config)")
    dataset = TokenizedDataset(path)
    if getattr(args, "data.max_seq_length") is None and not args.config:
        # Without an explicit choice, inspect at the length the dataset was prepared for.
        config.data.max_seq_length = int(dataset.manifest["config"]["data"]["max_seq_length"])
    if args.samples < 1:
        raise UsageError("inspect: --samples must be >= 1")
    if args.batch_size < 1:
        raise UsageError("inspect: --batch-size must be >= 1")
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
          f"{'  (cap ' + str(c['max_predictions_per_seq']) + ')':>12}")
    print(f"{'sequences with none':<28}{s['zero_selected_sequences']:>10}")
    print(f"{'special tokens selected':<28}{s['special_selected']:>10}")
    print(f"{'random drew a special':<28}{s['random_hit_special']:>10}")
    p = s["length_percentiles"]
    print(f"{'length (tokens)':<28}{s['mean_length']:>10.1f}   p10 {p['p10']}  p50 {p['p50']}  p90 {p['p90']}  "
          f"max {s['max_length']}")
    print(f"{'padding share':<28}{s['padding_fraction']:>10.4f}")
    print(f"{'pairs truncated':<28}{s['truncated_fraction']:>10.4f}")


# --- train -------------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class EventPrinter:
    """Prints trainer events: JSON lines, or readable lines (step lines at most once a second)."""

    def __init__(self, as_json: bool, stream=None, every: float = 1.0):
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self.every = every
        self.last = 0.0
        self.max_steps = 0

    def __call__(self, event) -> None:
        if self.as_json:
            self.stream.write(json.dumps(event.to_dict()) + "\n")
            self.stream.flush()
            return
        line = self._line(event)
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()

    def _line(self, event) -> str:
        kind = event.type
        if kind == "started":
            self.max_steps = event.max_steps
            resumed = f", resuming at step {event.start_step}" if event.start_step else ""
            procs = f", {event.world_size} processes" if event.world_size > 1 else ""
            return (f"run {event.run_dir}: {event.num_parameters / 1e6:.2f}M parameters on {event.device}, "
                    f"{event.precision}{procs}, {event.max_steps} steps{resumed}")
        if kind == "step":
            now = time.monotonic()
            if now - self.last < self.every and event.step != self.max_steps:
                return ""
            self.last = now
            return (f"step {event.step:>6}/{self.max_steps}  loss {event.loss:.4f} (mlm {event.mlm_loss:.3f} "
                    f"nsp {event.nsp_loss:.3f})  mlm acc {event.mlm_accuracy:.3f}  nsp acc {event.nsp_accuracy:.3f}  "
                    f"lr {event.lr:.2e}  {event.tokens_per_second:,.0f} tok/s  ETA {_duration(event.eta_seconds)}")
        if kind == "eval":
            return (f"eval at step {event.step}: mlm loss {event.mlm_loss:.4f}  mlm acc {event.mlm_accuracy:.3f}  "
                    f"perplexity {event.perplexity:.1f}  nsp acc {event.nsp_accuracy:.3f}  ({event.sequences} held-out pairs)")
        if kind == "checkpoint":
            return f"checkpoint {event.path} ({event.size_bytes / 1e6:.1f} MB)"
        if kind == "state":
            return f"{event.state} at step {event.step}"
        if kind == "notice":
            return f"note: {event.message}"
        if kind == "finished":
            return (f"{event.status}: {event.reason}; {event.step} steps in {_duration(event.elapsed)}; "
                    f"last checkpoint {event.last_checkpoint or 'none'}")
        if kind == "failed":
            return f"failed at step {event.step}: {event.reason}"
        return ""


def _cmd_train(args: argparse.Namespace) -> int:
    import signal

    from workbench.train.checkpoint import checkpoint_config, find_checkpoint
    from workbench.train.control import TrainingControl
    from workbench.train.trainer import Trainer, default_run_dir

    base = None
    resume = None
    if args.resume:
        resume = find_checkpoint(args.resume)
        base = checkpoint_config(resume)
    if args.dataset:
        args.overrides.append(f"data.dataset={json.dumps(args.dataset)}")
    config = _config_from_args(args, base=base)
    if args.resume:
        run_dir = Path(args.out) if args.out else resume.parent.parent
    else:
        run_dir = Path(args.out) if args.out else default_run_dir(config)
        if (run_dir / "checkpoints").exists() and any((run_dir / "checkpoints").iterdir()):
            raise UsageError(f"train: {run_dir} already holds a run; continue it with --resume {run_dir} "
                             "or choose another --out")
    control = TrainingControl()
    trainer = Trainer(config, run_dir, resume_from=resume, control=control)
    trainer.subscribe(EventPrinter(args.json))

    def on_interrupt(signum, frame):  # first Ctrl-C: stop cleanly with a checkpoint; second: abort
        signal.signal(signal.SIGINT, signal.default_int_handler)
        control.stop("interrupted (Ctrl-C)")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = trainer.run()
    finally:
        signal.signal(signal.SIGINT, previous)
    if result.status == "failed":
        print(f"error: training failed: {result.reason}", file=sys.stderr)
        return 1
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from workbench.interop.huggingface import export_checkpoint

    out = export_checkpoint(args.source, args.out)
    print(f"exported {args.source} to {out} (transformers BertForPreTraining format)")
    return 0


def _cmd_fill_mask(args: argparse.Namespace) -> int:
    from workbench.interop.huggingface import load_for_inference
    from workbench.model.probe import fill_mask

    if "[MASK]" not in args.text:
        raise UsageError("fill-mask: the text must contain [MASK]")
    model, tokenizer, _ = load_for_inference(args.checkpoint)
    predictions = fill_mask(model, tokenizer, args.text, args.top_k)
    if args.json:
        print(json.dumps([{"position": p.position, "predictions": [{"token": t, "probability": pr}
                                                                      for t, pr in p.candidates]}
                          for p in predictions], indent=1))
        return 0
    for number, prediction in enumerate(predictions, 1):
        print(f"[MASK] #{number}:")
        for token, probability in prediction.candidates:
            print(f"  {probability:7.2%}  {token}")
    return 0


def _cmd_nsp(args: argparse.Namespace) -> int:
    from workbench.interop.huggingface import load_for_inference
    from workbench.model.probe import nsp_probability

    model, tokenizer, _ = load_for_inference(args.checkpoint)
    probability = nsp_probability(model, tokenizer, args.first, args.second)
    if args.json:
        print(json.dumps({"is_next_probability": probability}))
    else:
        print(f"P(IsNext) = {probability:.4f}  -> {'IsNext' if probability >= 0.5 else 'NotNext'}")
    return 0


# --- entry point -------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="pretrain-workbench",
                     description="Run and inspect BERT-style pre-training (MLM + NSP).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("prepare", help="read a corpus, train or load a tokenizer, write a tokenized dataset",
                       description="Read a corpus, train (or load) a WordPiece tokenizer and write a "
                                   "memory-mapped tokenized dataset directory.")
    p.add_argument("corpus", nargs="*", help="corpus files or folders (.txt .md .jsonl .csv)")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to write")
    p.add_argument("--sample", action="store_true", help="add the built-in sample corpus (Python's own documentation)")
    p.add_argument("--tokenizer", metavar="FILE", help="use this tokenizer.json or vocab.txt instead of training one")
    p.add_argument("--vocab-size", type=int, metavar="N", help="vocabulary size of the trained tokenizer")
    case = p.add_mutually_exclusive_group()
    case.add_argument("--lowercase", dest="lowercase", action="store_true", default=None, help="uncased (default)")
    case.add_argument("--cased", dest="lowercase", action="store_false", help="keep case and accents")
    p.add_argument("--max-seq-length", type=int, dest="data.max_seq_length")
    p.add_argument("--sentences", choices=("auto", "lines", "wrapped"), dest="data.sentences",
                   help="how lines become sentences (see the README)")
    p.add_argument("--text-field", dest="data.text_field", metavar="NAME", help="JSONL field / CSV column with the text")
    p.add_argument("--encoding-errors", choices=("strict", "replace"), dest="data.encoding_errors")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_config_options(p)
    p.set_defaults(run=_cmd_prepare)

    p = sub.add_parser("inspect", help="show realised masking and pairing statistics of a dataset",
                       description="Build training examples exactly as training will and report what "
                                   "masking and pairing really produce.")
    p.add_argument("dataset", metavar="DIR", nargs="?", help="dataset directory written by prepare "
                   "(default: data.dataset of --config)")
    p.add_argument("--samples", type=int, default=2000, metavar="N", help="examples to draw (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0; training with this seed sees the same examples)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size used to draw them (default 32)")
    p.add_argument("--show", type=int, default=0, metavar="K", help="print K examples with masked positions marked")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_masking_options(p)
    _add_config_options(p)
    p.set_defaults(run=_cmd_inspect)

    p = sub.add_parser("train", help="train a model headless from a TOML config and --set options",
                       description="Train BERT (MLM + NSP). Every setting has a default, so --set alone can "
                                   "describe a run. Under torchrun it trains with DistributedDataParallel.")
    p.add_argument("config", nargs="?", metavar="CONFIG.toml", help="config file (see resources/)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting (repeatable), e.g. --set train.max_steps=500")
    p.add_argument("--dataset", metavar="DIR", help="same as --set data.dataset=DIR")
    p.add_argument("--resume", metavar="PATH", help="continue a run from its latest checkpoint (run or checkpoint dir)")
    p.add_argument("--out", metavar="DIR", help="run directory (default: train.output_dir/train.name)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.set_defaults(run=_cmd_train)

    p = sub.add_parser("export", help="write a checkpoint as a Hugging Face transformers BERT directory")
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="run directory (latest checkpoint) or checkpoint")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(run=_cmd_export)

    p = sub.add_parser("fill-mask", help="top-k predictions for the [MASK] tokens of a text")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint, run or exported directory")
    p.add_argument("text", help='text with [MASK], e.g. "the cat sat on the [MASK] ."')
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_cmd_fill_mask)

    p = sub.add_parser("nsp", help="probability that sentence B follows sentence A")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint, run or exported directory")
    p.add_argument("first", metavar="A")
    p.add_argument("second", metavar="B")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=_cmd_nsp)
    return parser


def _log_path() -> Path:
    import platformdirs

    folder = Path(platformdirs.user_log_dir("pretrain-workbench", appauthor=False))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "errors.log"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if not getattr(args, "command", None):
            parser.print_help()
            return 0
        run: Callable[[argparse.Namespace], int] = args.run
        return run(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: keep the traceback out of the user's face
        try:
            log = _log_path()
            with open(log, "a", encoding="utf-8") as f:
                f.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pretrain-workbench {__version__} {sys.argv[1:]}\n")
                f.write(traceback.format_exc())
            where = f" (details in {log})"
        except OSError:
            where = ""
        logging.getLogger(__name__).debug("internal error", exc_info=True)
        print(f"internal error: {type(exc).__name__}: {exc}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
