"""A run on disk, `runs/<id>/`: its event log, its liveness record, finding it, starting it. No torch.

Everything a viewer learns about a run comes from here and from its control socket (`control`):
`eventlog` reads events.jsonl as it grows, `liveness` tells running, paused, finished, stopped,
failed and dead apart (a reused pid is not mistaken for the run), `runs` finds runs by id, path or
`latest`, `launch` starts a training command in a session of its own, `comparison` reads curves for
the compare screen. None of it imports torch, so `workbench runs`, `ctl` and the TUI start fast.
"""

from __future__ import annotations

from .eventlog import EventLog, EventReader
from .launch import start_run, training_argv
from .liveness import RunState, endpoint_note, process_alive, read_record, run_state
from .runs import RunInfo, RunNotFound, new_run_id, resolve_model, resolve_run, scan_runs

__all__ = ["EventLog", "EventReader", "RunInfo", "RunNotFound", "RunState", "endpoint_note", "new_run_id",
           "process_alive", "read_record", "resolve_model", "resolve_run", "run_state", "scan_runs",
           "start_run", "training_argv"]
