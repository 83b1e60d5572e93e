"""``sweep``: queue and run a sweep (settings with lists of values or ranges, and seeds); manage the queue."""

from __future__ import annotations

import argparse
import json
import signal

from workbench.commands.common import UsageError
from workbench.commands.history import add_db_option, open_repository
from workbench.store.statuses import WAITING, ItemStatus, SweepStatus


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep", help="run a sweep: one run per combination of settings and seed, queued in the run database",
        description="Queue the runs of a sweep file (see workbench/sweeps.py: base, seeds, [set], [grid], [random]) "
                    "and run them one after another (or N at a time with --parallel N), each recorded as a normal "
                    "run tagged sweep:ID. The queue "
                    "lives in the database: a killed sweep continues with `sweep --resume ID`, resuming the "
                    "interrupted run from its checkpoint. Ctrl-C stops the run in progress with a checkpoint and "
                    "pauses the sweep.")
    p.add_argument("file", nargs="?", metavar="SWEEP.toml", help="the sweep to queue and run")
    p.add_argument("--example", metavar="NAME", help="queue a built-in sweep over --base (masking-rate, pair-task, "
                                                    "masking-units, model-size)")
    p.add_argument("--base", metavar="CONFIG.toml", help="the run config a built-in --example varies")
    p.add_argument("--dataset", metavar="DIR", help="prepared dataset for every run (replaces data.dataset)")
    p.add_argument("--queue-only", action="store_true", help="queue the sweep without running it")
    p.add_argument("--yes", action="store_true", help="queue a sweep of more than 200 runs (asked otherwise)")
    p.add_argument("--parallel", type=int, metavar="N", default=1,
                   help="run N runs at once, each in a worker process on its own device (default devices: every "
                        "CUDA GPU, else the CPU, whose cores the workers share)")
    p.add_argument("--devices", metavar="LIST", help="devices for --parallel, comma-separated (cuda:0,cuda:1; cpu)")
    p.add_argument("--worker-device", help=argparse.SUPPRESS)      # set by --parallel for its workers
    p.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    p.add_argument("--worker-parent", type=int, help=argparse.SUPPRESS)   # the pid whose death stops the worker
    p.add_argument("--list", action="store_true", help="list the sweeps and their progress")
    p.add_argument("--show", type=int, metavar="ID", help="the runs of sweep ID, in queue order")
    p.add_argument("--resume", type=int, metavar="ID", help="run what is left of sweep ID")
    p.add_argument("--pause", type=int, metavar="ID", help="pause sweep ID after the run in progress")
    p.add_argument("--cancel", type=int, metavar="ID", help="cancel sweep ID's waiting runs")
    p.add_argument("--move", nargs=3, type=int, metavar=("ID", "ITEM", "POSITION"),
                   help="put waiting run ITEM of sweep ID at POSITION (0 = next)")
    p.add_argument("--json", action="store_true", help="print --list / --show as JSON")
    add_db_option(p)
    p.set_defaults(handler=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    actions = [a for a in ("file", "example", "list", "show", "resume", "pause", "cancel", "move")
               if getattr(args, a) not in (None, False)]
    if len(actions) != 1:
        raise UsageError("sweep: give one of SWEEP.toml, --example, --list, --show, --resume, --pause, --cancel, "
                         "--move")
    repository = open_repository(args)
    if args.list:
        return _list(repository, args.json)
    if args.show is not None:
        return _show(repository, args.show, args.json)
    if args.pause is not None:
        repository.sweeps.set_status(args.pause, SweepStatus.PAUSED)
        print(f"sweep {args.pause} paused: the run in progress finishes, no new one starts")
        return 0
    if args.cancel is not None:
        repository.sweeps.set_status(args.cancel, SweepStatus.CANCELLED)
        print(f"sweep {args.cancel} cancelled")
        return 0
    if args.move is not None:
        sweep_id, item_id, position = args.move
        repository.sweeps.move_item(sweep_id, item_id, position)
        return _show(repository, sweep_id, False)
    if not 1 <= args.parallel <= 64:
        raise UsageError(f"sweep --parallel must be in [1, 64], got {args.parallel}")
    devices = [d.strip() for d in args.devices.split(",") if d.strip()] if args.devices else None
    if args.devices is not None and not devices:
        raise UsageError("sweep --devices: give devices such as cuda:0,cuda:1 or cpu")
    if args.resume is not None:
        sweep_id = args.resume
    else:
        sweep_id = queue_sweep(repository, args)
        if args.queue_only:
            return 0
    if args.worker_device:
        from workbench.services.sweep_runner import Worker

        _die_with_parent(args.worker_parent)
        return _run(repository, sweep_id, args.dataset, Worker(args.worker_device, args.worker_threads or 0))
    if args.parallel > 1 or devices:
        return _run_parallel(repository, sweep_id, args, devices)
    return _run(repository, sweep_id, args.dataset)


def queue_sweep(repository, args) -> int:
    from workbench.config import load_config
    from workbench.sweeps import EXAMPLES, LargeSweep, load_sweep, sweep_from_dict

    if args.example:
        if args.example not in EXAMPLES:
            raise UsageError(f"sweep --example: no example {args.example!r}; there are {', '.join(EXAMPLES)}")
        base = load_config(args.base) if args.base else None
        spec = sweep_from_dict(EXAMPLES[args.example], source=f"example {args.example}", base=base,
                               confirmed=args.yes)
    else:
        try:
            spec = load_sweep(args.file, confirmed=args.yes)
        except LargeSweep as exc:
            raise UsageError(f"{exc} with --yes") from None
    runs = spec.runs
    sweep_id = repository.sweeps.create(spec.name, spec.to_dict(), spec.swept,
                                        [(run.label, run.config.to_dict()) for run in runs])
    print(f"queued sweep {sweep_id} ({spec.name}): {len(runs)} runs varying {', '.join(spec.swept) or 'nothing'}")
    return sweep_id


def _run_parallel(repository, sweep_id: int, args, devices: list[str] | None) -> int:
    """``--parallel N``: recover the sweep once, then N worker processes (this command, with the worker's
    device) claim its runs until none is left; their lines are printed prefixed by their device."""
    import os
    import subprocess
    import sys
    import threading

    from workbench.services.sweep_runner import plan_workers, start_sweep
    start_sweep(repository, sweep_id)
    workers = plan_workers(args.parallel, devices)
    print(f"sweep {sweep_id}: {len(workers)} workers: " + ", ".join(f"{w.device} ({w.threads} threads)"
                                                                   for w in workers), flush=True)
    env = {**os.environ, "WORKBENCH_DB": repository.engine.url.render_as_string(hide_password=False)}
    children = []
    for number, worker in enumerate(workers, 1):
        command = [sys.executable, "-m", "workbench", "sweep", "--resume", str(sweep_id),
                   "--worker-device", worker.device, "--worker-threads", str(worker.threads),
                   "--worker-parent", str(os.getpid())]
        if args.dataset:
            command += ["--dataset", args.dataset]
        children.append((f"[{number}:{worker.device}] ", subprocess.Popen(   # own session: signals come from here
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            start_new_session=True)))
    lock = threading.Lock()

    def relay(prefix, child):
        for line in child.stdout:
            with lock:
                print(prefix + line, end="", flush=True)

    relays = [threading.Thread(target=relay, args=child, daemon=True) for child in children]
    for thread in relays:
        thread.start()

    def forward(signum, frame):          # Ctrl-C or TERM: each worker stops its run with a checkpoint and pauses
        for _, child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [child.wait() for _, child in children]
        for thread in relays:
            thread.join(timeout=5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    repository.sweeps.settle(sweep_id)       # every worker has exited: the status follows the items
    _say_how_it_ended(repository, sweep_id)
    failed = [code for code in codes if code]
    if failed:
        print(f"sweep {sweep_id}: {len(failed)} of {len(codes)} workers failed (exit {failed[0]})", file=sys.stderr)
    return 1 if failed else 0


def _run(repository, sweep_id: int, dataset: str | None, worker=None) -> int:
    from workbench.commands.training import EventPrinter
    from workbench.services.sweep_runner import run_sweep
    from workbench.train.control import TrainingControl

    control = TrainingControl()
    printer = EventPrinter(False)

    def on_signal(signum, frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        control.stop("the sweep was interrupted")

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = run_sweep(repository, sweep_id, dataset, control=control,
                           on_launch=lambda launched: launched.trainer.subscribe(printer), worker=worker)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if worker is not None:
        print(f"sweep {sweep_id}: this worker has no run left to take (the sweep is {status})")
        return 0
    _say_how_it_ended(repository, sweep_id)
    return 0


def _die_with_parent(parent: int | None) -> None:
    """A ``--parallel`` worker stops its run with a checkpoint (as on SIGTERM) when the sweep process that
    started it dies, even by SIGKILL: no worker trains on unseen. Linux signals it at once
    (PR_SET_PDEATHSIG); elsewhere a thread notices within a second that it was handed to another parent."""
    import ctypes
    import os
    import sys
    import threading
    import time

    if parent is None:
        return
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)     # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:                      # it died before the line above
        raise SystemExit(0)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _say_how_it_ended(repository, sweep_id: int) -> None:
    """One line: how the sweep stands, from its items (never "done" while runs still train elsewhere)."""
    sweep = repository.sweeps.get(sweep_id)
    elsewhere = [item.run_id for item in sweep.items if item.status == ItemStatus.RUNNING]
    waiting = sum(item.status in WAITING for item in sweep.items)
    ids = " ".join(str(item.run_id) for item in sweep.items if item.run_id)
    if elsewhere:
        print(f"sweep {sweep_id}: {sweep.status}; {len(elsewhere)} of its runs still train in another process "
              f"(runs {' '.join(str(i) for i in elsewhere if i) or 'starting'}): they finish there")
    elif waiting and sweep.status != SweepStatus.CANCELLED:
        print(f"sweep {sweep_id}: {sweep.status}; {waiting} runs left: pretrain-workbench sweep --resume {sweep_id}")
    else:
        print(f"sweep {sweep_id}: {sweep.status}; compare its runs: pretrain-workbench compare {ids} --group")


def _list(repository, as_json: bool) -> int:
    rows = []
    for sweep in repository.sweeps.list_all():
        counts: dict[str, int] = {}
        for item in sweep.items:
            counts[item.status] = counts.get(item.status, 0) + 1
        rows.append({"id": sweep.id, "name": sweep.name, "status": sweep.status, "runs": len(sweep.items),
                     "by_status": counts, "swept": sweep.swept})
    if as_json:
        print(json.dumps(rows, indent=1))
        return 0
    if not rows:
        print("no sweeps yet: pretrain-workbench sweep SWEEP.toml (or --example masking-rate)")
    for row in rows:
        progress = ", ".join(f"{n} {status}" for status, n in sorted(row["by_status"].items()))
        print(f"{row['id']:>4}  {row['status']:<10} {row['name']}  ({progress}; varies {', '.join(row['swept'])})")
    return 0


def _show(repository, sweep_id: int, as_json: bool) -> int:
    sweep = repository.sweeps.get(sweep_id)
    items = [{"item": i.id, "position": i.position, "label": i.label, "status": i.status, "run": i.run_id}
             for i in sorted(sweep.items, key=lambda i: i.position)]
    if as_json:
        print(json.dumps({"id": sweep.id, "name": sweep.name, "status": sweep.status, "items": items}, indent=1))
        return 0
    print(f"sweep {sweep.id} ({sweep.name}): {sweep.status}")
    for i in items:
        print(f"  item {i['item']:>4}  {i['status']:<11} run {i['run'] or '-':>5}  {i['label']}")
    return 0
