"""``train``, ``export``, ``fill-mask`` and ``nsp``: headless training and using its results."""

from __future__ import annotations

import argparse
import json
import sys
import time

from workbench.commands.common import UsageError, config_from_args, duration
from workbench.commands.history import open_repository


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
            minutes = event.config.get("train", {}).get("max_minutes", 0)
            budget = " or ".join(([f"{event.max_steps} steps"] if event.max_steps else []) +
                                 ([f"{minutes:g} minutes"] if minutes else []))
            return (f"run {event.run_dir}: {event.num_parameters / 1e6:.2f}M parameters on {event.device}, "
                    f"{event.precision}{procs}, {budget}{resumed}")
        if kind == "step":
            now = time.monotonic()
            if now - self.last < self.every and event.step != self.max_steps:
                return ""
            self.last = now
            of = f"/{self.max_steps}" if self.max_steps else f" ({event.progress:4.0%})"
            pairs = event.nsp_loss is not None             # None: no pair task (nsp.objective = "none")
            return (f"step {event.step:>6}{of}  loss {event.loss:.4f}" +
                    (f" (mlm {event.mlm_loss:.3f} nsp {event.nsp_loss:.3f})" if pairs else "") +
                    f"  mlm acc {event.mlm_accuracy:.3f}" + (f"  nsp acc {event.nsp_accuracy:.3f}" if pairs else "") +
                    f"  lr {event.lr:.2e}  {event.tokens_per_second:,.0f} tok/s  ETA {duration(event.eta_seconds)}")
        if kind == "eval":
            pair_part = f"  nsp acc {event.nsp_accuracy:.3f}" if event.nsp_accuracy is not None else ""
            return (f"eval at step {event.step}: mlm loss {event.mlm_loss:.4f}  mlm acc {event.mlm_accuracy:.3f}  "
                    f"perplexity {event.perplexity:.1f}{pair_part}  ({event.sequences} held-out sequences)")
        if kind == "checkpoint":
            return f"checkpoint {event.path} ({event.size_bytes / 1e6:.1f} MB)"
        if kind == "state":
            return f"{event.state} at step {event.step}"
        if kind == "notice":
            return f"note: {event.message}"
        if kind == "finished":
            return (f"{event.status}: {event.reason}; {event.step} steps in {duration(event.elapsed)}; "
                    f"last checkpoint {event.last_checkpoint or 'none'}")
        if kind == "failed":
            return f"failed at step {event.step}: {event.reason}"
        return ""


def cmd_train(args: argparse.Namespace) -> int:
    import os
    import signal

    from workbench.services.run_launch import find_resume_target, launch_run
    from workbench.train.control import TrainingControl

    recording = not args.no_db and int(os.environ.get("RANK", "0")) == 0  # under DDP rank 0 records
    repository = open_repository(args) if recording else None
    target = find_resume_target(args.resume, repository) if args.resume else None
    if args.dataset:
        args.overrides.append(f"data.dataset={json.dumps(args.dataset)}")
    config = config_from_args(args, base=target.config() if target else None)
    control = TrainingControl()
    launched = launch_run(config, repository, out=args.out, resume=target, control=control)
    launched.trainer.subscribe(EventPrinter(args.json))
    if launched.run_id is not None and not args.json:
        print(f"recording as run {launched.run_id} in {repository.url}")

    def on_signal(signum, frame):  # first Ctrl-C or SIGTERM: stop cleanly with a checkpoint; a second Ctrl-C aborts
        signal.signal(signal.SIGINT, signal.default_int_handler)
        name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        control.stop(f"interrupted ({name})")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = launched.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    unrecorded = getattr(launched.recorder, "failure", "")
    if unrecorded:       # the last line and the exit status agree with the database, which missed the end
        print(f"error: the run {result.status} at step {result.step}, but the run database {repository.url} "
              f"could not record it ({unrecorded}): it lists run {launched.run_id} as interrupted; once it can "
              f"be written, `train --resume {launched.run_dir}` continues from the last checkpoint", file=sys.stderr)
        return 2
    if result.status == "failed":
        print(f"error: training failed: {result.reason}", file=sys.stderr)
        return 1
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.interop.huggingface import export_checkpoint

    import json

    out = export_checkpoint(args.source, args.out)
    classes = json.loads((out / "config.json").read_text(encoding="utf-8")).get("architectures") or ["?"]
    print(f"exported {args.source} to {out} (loads as transformers' {', '.join(classes)})")
    return 0


def cmd_fill_mask(args: argparse.Namespace) -> int:
    from workbench.interop.huggingface import load_for_inference
    from workbench.model.probe import fill_mask

    if "[MASK]" not in args.text:
        raise UsageError("fill-mask: the text must contain [MASK]")
    if not 1 <= args.top_k <= 1000:
        raise UsageError(f"fill-mask: --top-k must be in [1, 1000], got {args.top_k}")
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


def cmd_nsp(args: argparse.Namespace) -> int:
    from workbench.interop.huggingface import load_for_inference
    from workbench.model.probe import nsp_probability

    model, tokenizer, config = load_for_inference(args.checkpoint)
    if config is not None and not config.nsp.pair_task:
        raise UsageError(f"nsp: {args.checkpoint} was trained without a pair task (nsp.objective = none); its NSP "
                         f"head never learned")
    probability = nsp_probability(model, tokenizer, args.first, args.second)
    if args.json:
        print(json.dumps({"is_next_probability": probability}))
    else:
        print(f"P(IsNext) = {probability:.4f}  -> {'IsNext' if probability >= 0.5 else 'NotNext'}")
    return 0
