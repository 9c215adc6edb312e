"""runs/<id>/live.json: who runs the run and whether it still does, with its CPU, memory and GPU use.

The training process rewrites the record (atomically) at every state change and every few seconds
as a heartbeat. A reader then tells running, paused, finished, stopped and failed apart from
dead: a record that still says running while its process is gone (kill -9, the OOM killer, a
power cut). On the run's own host the process itself is checked (pid, its start time and the
boot, so a reused pid is not mistaken for the run); from another host, the heartbeat's age.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..events import final_state
from .eventlog import last_record
from .layout import EVENTS, RECORD

HEARTBEAT = 2.0  # seconds between heartbeats
STALE = 30.0  # a heartbeat this old, from a process we cannot look at, means the run is dead
ACTIVE = ("starting", "running", "paused")
FINAL = ("finished", "stopped", "pruned", "failed")


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), or None where there is no /proc.

    With the pid and the boot, it names one process: a pid reused later has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces; fields after it are plain
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def _proc_state(pid: int, task: int | None = None) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2:].split()[0]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


class LivenessWriter:
    """Keeps live.json current: `update` on state changes, and a heartbeat thread in between."""

    def __init__(self, run_dir: Path, fields: dict[str, Any],
                 meter: Callable[[], dict[str, Any]] | None = None, interval: float = HEARTBEAT) -> None:
        self.path = run_dir / RECORD
        self.interval = interval
        self.meter = meter  # readings each heartbeat adds (the process's CPU and memory), if any
        pid = os.getpid()
        self._record: dict[str, Any] = {
            "version": 1, "pid": pid, "host": socket.gethostname(), "uid": os.geteuid(),
            "boot_id": _boot_id(), "pid_start": process_start(pid), "started": time.time(),
            "state": "starting", **fields}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.write()
        self._thread = threading.Thread(target=self._beat, name="rnn-workbench-heartbeat", daemon=True)
        self._thread.start()

    def update(self, write: bool = False, **fields: Any) -> None:
        """Change fields; written now when `write` (a state change), else with the next heartbeat."""
        with self._lock:
            self._record.update(fields)
        if write:
            self.write()

    def get(self, key: str, default: Any = None) -> Any:
        return self._record.get(key, default)

    def write(self) -> None:
        with self._lock:
            self._record["heartbeat"] = time.time()
            data = json.dumps(self._record, separators=(",", ":"))
            tmp = self.path.with_name(f".{RECORD}.{os.getpid()}.tmp")
            try:
                tmp.write_text(data + "\n", encoding="utf-8")
                os.replace(tmp, self.path)  # readers never see half a record
            except OSError:
                pass  # a full disk must not end the run; the heartbeat tries again

    def close(self, **final: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.update(write=True, **final)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                resources = self.meter() if self.meter is not None else {}
            except Exception:  # noqa: BLE001 - keep beating without the readings
                resources = {}
            self.update(write=True, **resources)


@dataclass(frozen=True)
class RunState:
    """What a reader can tell about a run from its directory."""

    state: str  # starting, running, paused, finished, stopped, failed or dead
    record: dict[str, Any]  # live.json as read ({} when absent)
    reason: str = ""  # why dead, why failed

    @property
    def live(self) -> bool:
        return self.state in ACTIVE

    @property
    def pid(self) -> int | None:
        return self.record.get("pid") if self.live else None


def read_object(path: Path) -> dict[str, Any]:
    """A JSON object from a file; {} when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_record(run_dir: Path) -> dict[str, Any]:
    return read_object(run_dir / RECORD)


def process_alive(record: dict[str, Any]) -> bool | None:
    """True or False when this host can check the record's process, None when it cannot."""
    if record.get("host") != socket.gethostname():
        return None
    boot = record.get("boot_id")
    if boot and _boot_id() and boot != _boot_id():
        return False  # the machine restarted since
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process holds the pid now, or ours under another uid: check below
    started = record.get("pid_start")
    now_started = process_start(pid)
    if started is not None and now_started is not None and started != now_started:
        return False  # the pid was reused
    return not _exited(pid)


def _exited(pid: int) -> bool:
    """Whether the process has finished: its leader a zombie and no thread of it still running.

    The leader of a process whose other threads are still tearing down (OpenMP's, an endpoint's)
    already reads as a zombie, and its parent cannot collect it until they are gone: treating
    that as finished let `ctl stop --wait` return while the process was still there.
    """
    if _proc_state(pid) not in ("Z", "X", ""):  # "": collected since the caller's kill(pid, 0)
        return False
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return True
    return all(_proc_state(pid, int(t)) in ("Z", "X", "") for t in tasks if t.isdigit())


def stop_hint(record: dict[str, Any]) -> str:
    """How to stop a run without its control endpoint: the signal its process handles, if any."""
    pid = record.get("pid")
    if record.get("stop_signal"):
        return f"kill -TERM {pid} stops it at the next batch and saves"
    return f"kill {pid} ends it (its last checkpoint stays)"


def endpoint_note(record: dict[str, Any]) -> str:
    """'' while a live run's control endpoint has never failed; else what happened, and the way out."""
    error = record.get("socket_error")
    if not error:
        return ""
    at = record.get("socket_error_at")
    when = f" at {time.strftime('%H:%M:%S', time.localtime(at))}" if isinstance(at, (int, float)) else ""
    if record.get("socket"):
        failures = int(record.get("endpoint_failures") or 1)
        return (f"control endpoint restarted after {failures} failure{'s' * (failures != 1)} "
                f"(last{when}: {error})")
    return f"no control endpoint ({error}{when}); {stop_hint(record)}"


def run_state(run_dir: Path) -> RunState:
    """The run's state from live.json, its process, and the last line of events.jsonl."""
    record = read_record(run_dir)
    state = record.get("state")
    if state in FINAL:
        return RunState(state, record, record.get("reason", ""))
    if state in ACTIVE:
        alive = process_alive(record)
        if alive is None:
            age = time.time() - float(record.get("heartbeat", 0))
            if age <= STALE:
                return RunState(state, record)
            reason = f"no heartbeat for {age:.0f} s"
        elif alive:
            return RunState(state, record)
        else:
            reason = f"process {record.get('pid')} is gone without a final event"
    else:
        reason = "no process record"
    # the process is gone: the log says whether it got to the end
    last = last_record(run_dir / EVENTS)
    if last.get("event") == "RunFinished":
        ended = final_state(str(last.get("reason")))
        return RunState(ended, record)
    if last.get("event") == "RunFailed":
        return RunState("failed", record, str(last.get("error", "")))
    return RunState("dead", record, reason)
