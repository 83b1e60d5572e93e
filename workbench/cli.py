"""The ``pretrain-workbench`` command line: headless access to the core.

Exit status: 0 on success; 2 with one line on stderr for anything the user
can fix (a bad path, corpus, option, config or run id); 1 for an internal
error, whose traceback goes to a log file rather than the terminal, and for
a training run that failed. The commands themselves live in
``workbench.commands``; this module builds the parser and runs them.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from typing import Callable, Sequence

from workbench import __version__
from workbench.commands import data, finetuning, history, inspection, sweeping, training
from workbench.commands.common import Parser, add_config_options, add_masking_options, setting_option
from workbench.data.corpus import CORPUS_SUFFIXES
from workbench.errors import WorkbenchError
from workbench.store.statuses import STATUSES
from workbench.redaction import has_secret, scrub


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="pretrain-workbench",
                     description="Run and inspect BERT-style pre-training (MLM + NSP).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("prepare", help="read a corpus, train or load a tokenizer, write a tokenized dataset",
                       description="Read a corpus, train (or load) a WordPiece tokenizer and write a "
                                   "memory-mapped tokenized dataset directory.")
    p.add_argument("corpus", nargs="*", help=f"corpus files or folders ({' '.join(CORPUS_SUFFIXES)})")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset directory to write")
    p.add_argument("--sample", action="store_true", help="add the built-in sample corpus (Python's own documentation)")
    p.add_argument("--tokenizer", metavar="FILE", help="use this tokenizer.json or vocab.txt instead of training one")
    p.add_argument("--vocab-size", type=int, metavar="N", help="vocabulary size of the trained tokenizer")
    case = p.add_mutually_exclusive_group()
    case.add_argument("--lowercase", dest="lowercase", action="store_true", default=None, help="uncased (default)")
    case.add_argument("--cased", dest="lowercase", action="store_false", help="keep case and accents")
    setting_option(p, "--max-seq-length", "data.max_seq_length")
    setting_option(p, "--sentences", "data.sentences",
                   help="how lines become sentences (see the README)")
    p.add_argument("--text-field", dest="data.text_field", metavar="NAME", help="JSONL field / CSV column with the text")
    setting_option(p, "--encoding-errors", "data.encoding_errors")
    setting_option(p, "--tokenizer-sample-mb", "tokenizer.sample_mb")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_options(p)
    p.set_defaults(handler=data.cmd_prepare)

    p = sub.add_parser("inspect", help="a dataset's realised masking and pairing, or what a run's model learned "
                       "and when", description="DIR, a dataset: build training examples exactly as training will "
                       "and report what masking and pairing really produce. RUN, a run folder or run id: its "
                       "inspection snapshots (heads, surprisal, words, stages, embeddings, probes, syntax).")
    p.add_argument("dataset", metavar="DIR|RUN", nargs="?", help="dataset directory written by prepare "
                   "(default: data.dataset of --config), or a run folder or run id")
    p.add_argument("--samples", type=int, default=2000, metavar="N", help="examples to draw (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0; training with this seed sees the same examples)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size used to draw them (default 32)")
    p.add_argument("--show", type=int, default=0, metavar="K", help="print K examples with masked positions marked")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_masking_options(p)
    add_config_options(p)
    inspection.add_run_options(p)
    history.add_db_option(p)
    p.set_defaults(handler=inspection.cmd_inspect)

    p = sub.add_parser("train", help="train a model headless from a TOML config and --set options",
                       description="Train BERT (MLM + NSP). Every setting has a default, so --set alone can "
                                   "describe a run. Under torchrun it trains with DistributedDataParallel.")
    p.add_argument("config", nargs="?", metavar="CONFIG.toml", help="config file (`pretrain-workbench examples` lists the shipped ones)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting (repeatable), e.g. --set train.max_steps=500")
    p.add_argument("--dataset", metavar="DIR", help="same as --set data.dataset=DIR")
    p.add_argument("--resume", metavar="RUN", help="continue a run from its latest checkpoint: a run id from "
                   "`runs`, a run directory or a checkpoint directory")
    p.add_argument("--no-db", action="store_true", help="do not record the run in the run database")
    history.add_db_option(p)
    p.add_argument("--out", metavar="DIR", help="run directory (default: train.output_dir/train.name)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines")
    p.set_defaults(handler=training.cmd_train)

    p = sub.add_parser("export", help="write a checkpoint as a Hugging Face transformers BERT directory")
    p.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="run directory (latest checkpoint) or checkpoint")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(handler=training.cmd_export)

    p = sub.add_parser("fill-mask", help="top-k predictions for the [MASK] tokens of a text")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint, run or exported directory")
    p.add_argument("text", help='text with [MASK], e.g. "the cat sat on the [MASK] ."')
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=training.cmd_fill_mask)

    p = sub.add_parser("nsp", help="probability that sentence B follows sentence A")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint, run or exported directory")
    p.add_argument("first", metavar="A")
    p.add_argument("second", metavar="B")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=training.cmd_nsp)

    finetuning.add_parser(sub)
    sweeping.add_parser(sub)

    p = sub.add_parser("gui", help="open the workbench window (the default without a command)")
    history.add_db_option(p)
    p.add_argument("--self-test", type=int, metavar="STEPS", nargs="?", const=3,
                   help="check the window works here: open it on a temporary profile, prepare the sample, train "
                        "STEPS steps (default 3), quit; exit status 0 when all worked (your runs and settings are not touched)")
    p.set_defaults(handler=_cmd_gui)

    p = sub.add_parser("runs", help="list recorded runs; rename, tag, note or delete them",
                       description="List the runs of the run database, or change one with an action.")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.add_argument("--status", choices=STATUSES, help="only runs with this status")
    p.add_argument("--tag", help="only runs with this tag")
    history.add_db_option(p)
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    a = actions.add_parser("rename", help="rename a run")
    a.add_argument("run", metavar="RUN_ID")
    a.add_argument("name")
    history.add_db_option(a, in_action=True)
    a = actions.add_parser("tag", help="add tags to a run (or --remove them)")
    a.add_argument("run", metavar="RUN_ID")
    a.add_argument("tags", nargs="+", metavar="TAG")
    a.add_argument("--remove", action="store_true")
    history.add_db_option(a, in_action=True)
    a = actions.add_parser("note", help="set a run's notes")
    a.add_argument("run", metavar="RUN_ID")
    a.add_argument("text")
    history.add_db_option(a, in_action=True)
    a = actions.add_parser("delete", help="delete runs and their checkpoints on disk")
    a.add_argument("runs", nargs="+", metavar="RUN_ID")
    a.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    history.add_db_option(a, in_action=True)
    p.set_defaults(handler=history.cmd_runs)

    p = sub.add_parser("show", help="a run's config, status, checkpoints and metrics")
    p.add_argument("run", metavar="RUN_ID")
    p.add_argument("--json", action="store_true")
    p.add_argument("--metrics", action="store_true", help="include the metric series")
    p.add_argument("--csv", metavar="FILE", help="write the metric series to a CSV file (one row per step)")
    p.add_argument("--force", action="store_true", help="replace the --csv file if it exists")
    history.add_db_option(p)
    p.set_defaults(handler=history.cmd_show)

    p = sub.add_parser("compare", help="config differences and metrics side by side of two or more runs")
    p.add_argument("runs", nargs="+", metavar="RUN_ID")
    p.add_argument("--json", action="store_true")
    p.add_argument("--csv", metavar="FILE", help="write the aligned series of all runs to a CSV file")
    p.add_argument("--tidy-csv", metavar="FILE", help="write every point of every run as one tidy CSV: run, name, "
                   "the settings that differ, metric, step, value, wall_time")
    p.add_argument("--group", action="store_true", help="group runs that differ only in their seed (or name): "
                   "each group's final values as mean ± std over its runs")
    p.add_argument("--force", action="store_true", help="replace the --csv / --tidy-csv files if they exist")
    history.add_db_option(p)
    p.set_defaults(handler=history.cmd_compare)

    p = sub.add_parser("examples", help="list the example run configs shipped with the program, or print one",
                       description="The example configs ship inside the package: `pretrain-workbench examples "
                                   "tiny-sample > tiny-sample.toml` writes one to edit and pass to `train`.")
    p.add_argument("name", nargs="?", help="the example to print (default: list them)")
    p.set_defaults(handler=_cmd_examples)
    return parser


def _cmd_examples(args: argparse.Namespace) -> int:
    from workbench.packaged import example_config, example_names

    if args.name:
        sys.stdout.write(example_config(args.name))
    else:
        for name in example_names():
            first = example_config(name).splitlines()[0].lstrip("# ")
            print(f"{name:<16} {first}")
    return 0


def _cmd_gui(args: argparse.Namespace) -> int:
    import os

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("QT_QPA_PLATFORM")):
        raise WorkbenchError("no display to open the window on (DISPLAY is not set); run it in a desktop session, "
                             "or use the commands, which need none (pretrain-workbench --help)")
    try:
        from workbench.gui.app import run_app
    except ImportError as exc:  # the core works without Qt; the window does not
        raise WorkbenchError(f"the window needs PySide6 and pyqtgraph ({exc}); the commands work without them "
                             "(see pretrain-workbench --help)") from None
    if getattr(args, "self_test", None) is not None:
        if args.self_test < 1:
            raise WorkbenchError("--self-test: the number of steps must be at least 1")
        from workbench.gui.self_test import run_self_test

        return run_self_test(args.self_test)
    return run_app(db=getattr(args, "db", None))


def _warn_of_password_in_arguments(args: argparse.Namespace) -> None:
    """A password typed in ``--db`` is readable by every user of the machine (``ps``) and kept in the
    shell's history: say so once and name the ways that keep it out of sight."""
    db = getattr(args, "db", None)
    if db and has_secret(db):
        print("note: a password given with --db is visible to other users of this machine and stays in your "
              "shell history; put the URL in WORKBENCH_DB, or the password in ~/.pgpass (PostgreSQL)",
              file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        _warn_of_password_in_arguments(args)
        if not getattr(args, "command", None):
            return _cmd_gui(args)
        handler: Callable[[argparse.Namespace], int] = args.handler
        return handler(args)
    except WorkbenchError as exc:
        print(scrub(f"error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resumable = getattr(args, "command", None) == "prepare"
        print("interrupted" + ("; preparing the same corpus again goes on from where it stopped" if resumable
                               else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: keep the traceback out of the user's face
        try:
            from workbench.error_log import append_error

            where = f" (details in {append_error(traceback.format_exc())})"
        except OSError:
            where = ""
        logging.getLogger(__name__).debug("internal error", exc_info=True)
        print(scrub(f"internal error: {type(exc).__name__}: {exc}{where}"), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
