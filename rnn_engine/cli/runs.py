"""`workbench runs` and `workbench ctl`: listing runs and steering a live one from a shell or script."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from ..analysis.check import describe_check
from ..control.protocol import COMMANDS
from ..rundir.layout import RunDir
from ..rundir.runs import resources
from .parsing import CliError

CTL_TIMEOUT = 10.0  # seconds to wait for a run to acknowledge a command


def add_parsers(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """The `runs`, `wait` and `ctl` subcommands, on the main parser's subparsers."""
    w = sub.add_parser("wait", help="block until runs end; exit 0 when every one finished, 1 when one failed",
                       description="Wait until every run given has ended, printing each as it does. Exit "
                                   "status 0 when all finished or were stopped or pruned, 1 when one failed "
                                   "or died, 2 when a run is not found or --timeout passed first.")
    w.add_argument("runs", nargs="+", metavar="RUN", help="run directory, run id (or its start) under "
                   "--runs-dir, or 'latest'")
    w.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")
    w.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (default: "
                   "wait as long as it takes)")
    w.add_argument("--json", action="store_true", help="print one JSON line: each run's final state")
    w.set_defaults(func=wait_for_runs)
    r = sub.add_parser("runs", help="list runs: task, shape, step, best metric, state, pid, CPU and memory")
    r.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")
    r.add_argument("--json", action="store_true", help="print a JSON list, one object per run")
    r.set_defaults(func=list_runs)

    c = sub.add_parser("ctl", help="send a command to a live run (pause, resume, step, stop, apply, ...)",
                       description="Send a command to a live run; exit 0 when it acknowledged the "
                                   "command, 2 when it is not live, refused it, or did not answer "
                                   f"within {CTL_TIMEOUT:.0f} s.")
    c.set_defaults(func=control)
    c.add_argument("run", help="run directory, run id (or its start) under --runs-dir, or 'latest'")
    common = parser_class(add_help=False)
    common.add_argument("--runs-dir", default="runs", help="where runs are (default runs)")
    common.add_argument("--json", action="store_true", help="print the reply as JSON")
    common.add_argument("--timeout", type=float, default=CTL_TIMEOUT,
                        help=f"seconds to wait for the acknowledgement (default {CTL_TIMEOUT:.0f})")
    cs = c.add_subparsers(dest="ctl_command", metavar="COMMAND", required=True, parser_class=parser_class)
    for name in ("pause", "resume", "step", "status", "devices", "check"):
        cs.add_parser(name, parents=[common], help=COMMANDS[name])
    stop = cs.add_parser("stop", parents=[common], help=COMMANDS["stop"])
    stop.add_argument("--wait", action="store_true", help="wait until the run has saved and ended")
    apply = cs.add_parser("apply", parents=[common], help="change live hyperparameters, e.g. lr=1e-3 clip=1")
    apply.add_argument("changes", nargs="+", metavar="FIELD=VALUE")
    sample = cs.add_parser("sample", parents=[common], help="generate text with the run's current model")
    sample.add_argument("--prime", help="text the model reads before it writes")
    sample.add_argument("--temperature", type=float)
    sample.add_argument("--top-k", type=int)
    sample.add_argument("--length", type=int)
    classify = cs.add_parser("classify", parents=[common], help="top languages for names, by the live model")
    classify.add_argument("names", nargs="+", metavar="NAME")
    classify.add_argument("--top-k", type=int, default=3)
    device = cs.add_parser("device", parents=[common],
                           help="move the run to another device at the next batch")
    device.add_argument("name", help="cpu, cuda, cuda:N or mps")
    evaluate = cs.add_parser("evaluate", parents=[common],
                             help="evaluate now (the routine subset, or --full)")
    evaluate.add_argument("--full", action="store_true", help="the whole validation split, not the subset")


def list_runs(args: argparse.Namespace, argv: list[str]) -> int:
    from ..rundir.runs import scan_runs

    runs = scan_runs(args.runs_dir)
    if args.json:
        print(json.dumps([r.to_dict() for r in runs]))
        return 0
    if not runs:
        print(f"no runs in {args.runs_dir}")
        return 0
    header = ("RUN", "TASK", "MODEL", "SHAPE", "STEP", "BEST", "STATE", "PID", "RESOURCES")
    rows = [(r.run_id, r.task, r.cell, r.shape + (f" on {r.world_size} ranks" if r.world_size > 1 else ""),
             str(r.step), r.best, r.state,
             str(r.pid) if r.pid else "", resources(r)) for r in runs]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    print("  ".join(cell.ljust(w) for cell, w in zip(header, widths)).rstrip())
    for run, row in zip(runs, rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        for note in (run.endpoint, run.path_notice, run.trial_note):
            if note:
                print(f"  ↳ {note}")
    return 0


# -- workbench wait -------------------------------------------------------------------------------
ENDED_WELL = ("finished", "stopped", "pruned")  # what `wait` counts as success


def wait_for_runs(args: argparse.Namespace, argv: list[str]) -> int:
    from ..rundir.liveness import run_state
    from ..rundir.runs import RunNotFound, resolve_run

    try:
        dirs = list(dict.fromkeys(resolve_run(spec, args.runs_dir) for spec in args.runs))
    except RunNotFound as exc:
        raise CliError(f"wait: {exc}") from None
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    ended: dict[str, str] = {}
    while True:
        for run_dir in dirs:
            if run_dir.name in ended:
                continue
            state = run_state(run_dir)
            if not state.live:
                ended[run_dir.name] = state.state
                if not args.json:
                    why = f" ({state.reason})" if state.reason and state.state not in ENDED_WELL else ""
                    print(f"{run_dir.name}: {state.state}{why}", flush=True)
        if len(ended) == len(dirs):
            break
        if deadline is not None and time.monotonic() >= deadline:
            waiting = ", ".join(d.name for d in dirs if d.name not in ended)
            raise CliError(f"wait: still running after {args.timeout:g} s: {waiting}")
        time.sleep(0.5)
    if args.json:
        print(json.dumps(ended))
    return 0 if all(state in ENDED_WELL for state in ended.values()) else 1


# -- workbench ctl --------------------------------------------------------------------------------
def _request_args(args: argparse.Namespace) -> dict[str, Any]:
    cmd = args.ctl_command
    if cmd == "apply":
        changes = {}
        for pair in args.changes:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                raise CliError(f"ctl apply: {pair!r} is not FIELD=VALUE (e.g. lr=1e-3)")
            changes[name.strip().replace("-", "_")] = value.strip()
        return {"changes": changes}
    if cmd == "sample":
        return {k: v for k, v in (("prime", args.prime), ("temperature", args.temperature),
                                  ("top_k", args.top_k), ("length", args.length)) if v is not None}
    if cmd == "classify":
        return {"names": args.names, "top_k": args.top_k}
    if cmd == "device":
        return {"name": args.name}
    if cmd == "evaluate":
        return {"full": args.full}
    return {}


def control(args: argparse.Namespace, argv: list[str]) -> int:
    """Send one command to a run and say what it answered."""
    from ..control.client import RunClient, RunUnavailable
    from ..rundir.liveness import process_alive, run_state
    from ..rundir.runs import RunNotFound, resolve_run

    cmd = args.ctl_command
    try:
        run_dir = resolve_run(args.run, args.runs_dir)
    except RunNotFound as exc:
        raise CliError(f"ctl: {exc}") from None
    request = _request_args(args)
    try:
        with RunClient.connect(run_dir, timeout=args.timeout) as client:
            reply, event = client.call(cmd, request, answer=cmd in ("sample", "classify", "check"))
    except RunUnavailable as exc:
        raise CliError(f"ctl {cmd}: {exc}") from None
    if not reply.get("ok"):
        raise CliError(f"ctl {cmd}: refused: {reply.get('error', 'no reason given')}")
    final = None
    if cmd == "stop" and args.wait:
        deadline = time.monotonic() + 600
        while (state := run_state(run_dir)).live and time.monotonic() < deadline:
            time.sleep(0.2)
        # the final record comes a moment before the process exits: wait for the process too
        while (alive := process_alive(state.record)) and time.monotonic() < deadline:
            time.sleep(0.05)
        final = state.state
        if state.live or alive:
            raise CliError(f"ctl stop: {run_dir.name} acknowledged but had not ended after 600 s")
    if args.json:
        print(json.dumps({"run": run_dir.name, "reply": reply, "event": event, "state": final}))
        return 0
    print(_describe(cmd, run_dir, reply, event, final))
    return 0


def _describe(cmd: str, run_dir: Path, reply: dict[str, Any], event: dict[str, Any] | None,
              final: str | None) -> str:
    name = run_dir.name
    if cmd == "sample" and event:
        return str(event.get("text", ""))
    if cmd == "classify" and event:
        return "\n".join(f"{n}: " + ", ".join(f"{lab} {p:.1%}" for lab, p in r)
                         for n, r in zip(event.get("names", []), event.get("results", [])))
    if cmd == "check" and event:
        return describe_check(event.get("report", {}))
    if cmd == "status":
        keys = ("run_id", "state", "step", "task", "device", "pid")
        return "\n".join(f"{k}: {reply.get(k)}" for k in keys)
    if cmd == "devices":
        return "\n".join(f"{d}: {'available' if not why else why}" for d, why in reply["devices"].items())
    if cmd == "apply":
        changes = ", ".join(f"{k}={v}" for k, v in reply.get("applied", {}).items())
        return f"{name}: {changes} at the next batch"
    if cmd == "stop" and final:
        return f"{name}: {final}; checkpoint {RunDir(run_dir).last}"
    what = {"pause": "pauses", "resume": "resumes", "step": "trains one batch", "stop": "stops and saves",
            "device": "moves", "evaluate": "evaluates"}.get(cmd, cmd)
    return f"{name}: {what} at the next batch boundary"


