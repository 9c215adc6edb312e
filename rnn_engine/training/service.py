"""What a training process serves beside its run directory: the control endpoint and live.json.

The trainer hands every event to `observe` (state, step, best metric, answers to route) and
never waits on a client: requests only queue work on `Controls`, which the trainer reads between
batches, and answers go out through the endpoint's own thread.

The endpoint is supervised: should its thread ever end while the run is alive, the service
records it (a ControlEndpointFailed event, `socket_error` and its time in live.json, a line on
stderr) and serves a fresh endpoint on the same socket, up to `ENDPOINT_RESTARTS` times. After
that the run trains on without one, and live.json says how to stop it with a signal.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..control.controls import Controls
from ..control.endpoint import ControlEndpoint, socket_path_for
from ..control.protocol import Request, check_changes
from ..events import (
    Checked,
    Classified,
    ControlEndpointFailed,
    DeviceSwitched,
    EpochFinished,
    Evaluated,
    EvaluationProgress,
    Event,
    Inspected,
    RunFailed,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    Sampled,
    StepFinished,
)
from ..rundir.liveness import HEARTBEAT, LivenessWriter
from ..rundir.liveness import stop_hint as record_stop_hint
from .resources import ResourceMeter

ENDPOINT_RESTARTS = 5  # fresh endpoints a run starts after failures before it goes on without one
SUPERVISE_EVERY = 0.5  # seconds between looks at the endpoint's thread


def stop_signal() -> str:
    """The signal that stops this process cleanly (at a batch, saving), or '' when none is handled."""
    handler = signal.getsignal(signal.SIGTERM)
    return "SIGTERM" if callable(handler) else ""


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def _error(message: str, **fields: Any) -> dict[str, Any]:
    return {"ok": False, "error": message, **fields}


class RunService:
    """The run's endpoint and liveness record, fed by the trainer's events."""

    def __init__(self, run_dir: Path, run_id: str, task: str, controls: Controls,
                 config: Callable[[], RunConfig], device: str = "cpu",
                 heartbeat: float = HEARTBEAT, world_size: int = 1,
                 record: Callable[[Event], None] | None = None) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.record = record  # where an event the service itself reports goes (the run's log)
        self.task = task
        self.controls = controls
        self.config = config
        self.device = device
        self.world_size = world_size
        self.state = "starting"
        self.step = 0
        self._private_dir: Path | None = None
        self._waiting: dict[str, tuple[int, Any]] = {}  # request token -> (client, its id)
        self._counter = 0
        self.endpoint: ControlEndpoint | None = None
        self.endpoint_failures = 0
        self._endpoint_lock = threading.Lock()
        self._closed = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.liveness = LivenessWriter(
            run_dir, {"run_id": run_id, "task": task, "step": 0, "device": device, "socket": None,
                      "world_size": world_size},
            ResourceMeter(lambda: self.device), heartbeat)

    def start(self) -> None:
        socket_error = ""
        try:
            path, self._private_dir = socket_path_for(self.run_dir)
            endpoint = ControlEndpoint(path, self.handle)
            endpoint.start()
            self.endpoint = endpoint
        except OSError as exc:
            # the run still trains and logs; it just cannot be steered from outside
            socket_error = f"control endpoint unavailable: {exc.strerror or exc}"
        self.liveness.update(socket=str(self.endpoint.path) if self.endpoint else None,
                             socket_error=socket_error, stop_signal=stop_signal())
        self.liveness.start()
        if self.endpoint is not None:
            self._supervisor = threading.Thread(target=self._supervise, name="rnn-workbench-supervisor",
                                                daemon=True)
            self._supervisor.start()

    def close(self, state: str, reason: str = "") -> None:
        """The final record, then no more endpoint; its socket (and private directory) removed."""
        self.state = state
        self._closed.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        self.liveness.close(state=state, reason=reason, step=self.step, socket=None, activity="")
        with self._endpoint_lock:
            if self.endpoint is not None:
                self.endpoint.close()
        if self._private_dir is not None:
            shutil.rmtree(self._private_dir, ignore_errors=True)

    # -- supervision of the endpoint ------------------------------------------------------------
    def _supervise(self) -> None:
        while not self._closed.wait(SUPERVISE_EVERY):
            endpoint = self.endpoint
            if endpoint is not None and not endpoint.alive:
                try:
                    self._endpoint_failed(endpoint)
                except Exception as exc:  # noqa: BLE001 - the supervisor itself must go on
                    print(f"workbench: run {self.run_id}: supervising the control endpoint failed "
                          f"({type(exc).__name__}: {exc})", file=sys.stderr, flush=True)

    def _endpoint_failed(self, old: ControlEndpoint) -> None:
        """Record why the endpoint's thread ended and, while restarts are left, serve a new one."""
        error = old.error or "its thread ended"
        with self._endpoint_lock:
            if self._closed.is_set():
                return
            self.endpoint_failures += 1
            fresh: ControlEndpoint | None = None
            if self.endpoint_failures <= ENDPOINT_RESTARTS:
                try:
                    fresh = ControlEndpoint(old.path, self.handle)
                    fresh.start()
                except OSError as exc:
                    fresh = None
                    error += f"; a new endpoint could not start ({exc.strerror or exc})"
            self.endpoint = fresh
        self.liveness.update(write=True, socket=str(fresh.path) if fresh else None, socket_error=error,
                             socket_error_at=time.time(), endpoint_failures=self.endpoint_failures)
        if self.record is not None:
            self.record(ControlEndpointFailed(self.step, error, self.endpoint_failures, fresh is not None))
        if fresh is not None:
            what = (f"started again ({self.endpoint_failures} of {ENDPOINT_RESTARTS} restarts used); "
                    "clients reconnect")
        else:
            what = f"not started again: the run trains on without one; {self.stop_hint()}"
        print(f"workbench: run {self.run_id}: the control endpoint failed ({error}); {what}",
              file=sys.stderr, flush=True)

    def stop_hint(self) -> str:
        """How to stop this run without its endpoint."""
        live = self.liveness
        return record_stop_hint({"pid": live.get("pid"), "stop_signal": live.get("stop_signal")})

    def note(self, activity: str) -> None:
        """A word on what the process is doing before training (loading, building kernels)."""
        self.liveness.update(write=True, activity=activity)

    # -- events from the trainer ----------------------------------------------------------------
    def observe(self, event: Event) -> None:
        if isinstance(event, StepFinished):
            self.step = event.step
            self.liveness.update(step=event.step, items_per_s=round(event.items_per_s, 1))
            return
        if isinstance(event, (Sampled, Classified, Inspected, Checked)) and event.request:
            self._answer(event)
        if isinstance(event, RunStarted):
            self.device = event.device
            self._set_state("running", device=event.device, activity="", parameters=event.parameters)
        elif isinstance(event, RunPaused):
            self._set_state("paused", reason=event.reason)
        elif isinstance(event, RunResumed):
            self._set_state("running", reason="")
        elif isinstance(event, DeviceSwitched):
            self.device = event.device
            self.liveness.update(write=True, device=event.device)
        elif isinstance(event, EvaluationProgress):
            done = event.done / max(event.total, 1)
            self.liveness.update(activity=f"evaluating {'(full) ' if event.full else ''}{done:.0%}")
        elif isinstance(event, (Evaluated, EpochFinished)):
            self._best(event)
        elif isinstance(event, (RunFinished, RunFailed)):
            self.step = event.step

    def _set_state(self, state: str, **fields: Any) -> None:
        self.state = state
        self.liveness.update(write=True, state=state, step=self.step, **fields)

    def _best(self, event: Evaluated | EpochFinished) -> None:
        # the best so far, for `workbench runs`: lowest validation loss, or highest accuracy
        fields: dict[str, Any] = {"activity": ""}
        if math.isfinite(event.val_loss) and event.val_loss < self.liveness.get("best_val_loss", math.inf):
            fields["best_val_loss"] = event.val_loss
        acc = event.val_accuracy
        if acc is not None and acc > self.liveness.get("best_accuracy", -1.0):
            fields["best_accuracy"] = acc
        self.liveness.update(write=True, **fields)

    def _answer(self, event: Sampled | Classified | Inspected | Checked) -> None:
        asker = self._waiting.pop(event.request, None)
        if asker is not None and self.endpoint is not None:
            client, rid = asker
            self.endpoint.send(client, {"id": rid, "event": event.to_dict()})

    # -- requests from clients (the endpoint's thread) ------------------------------------------
    def handle(self, request: Request, client: int) -> dict[str, Any]:
        cmd, args = request.cmd, request.args
        if cmd == "status":
            return _ok(**self.status())
        if cmd == "devices":
            from .devices import available_devices

            return _ok(devices=available_devices())
        if self.state not in ("starting", "running", "paused"):
            return _error(f"the run is {self.state}")
        ctl = self.controls
        if cmd == "pause":
            ctl.pause()
        elif cmd == "resume":
            ctl.resume()
        elif cmd == "step":
            if not ctl.paused:
                return _error("the run is not paused: pause it first, then step")
            ctl.step_once()
        elif cmd == "stop":
            ctl.stop()
        elif cmd == "apply":
            changes, errors = check_changes(args["changes"], self.config())
            if errors:
                return _error("; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)
            ctl.apply(**changes)
            return _ok(applied=changes)
        elif cmd == "sample":
            if self.task != "charlm":
                return _error("this run is a name classifier: use classify")
            cfg = self.config()
            token = self._token(client, request.id)
            ctl.request_sample(args.get("prime", ""), args.get("temperature", cfg.temperature),
                               args.get("length", cfg.sample_length or 300), args.get("top_k", cfg.top_k),
                               request=token)
            return _ok(pending=token)
        elif cmd == "classify":
            if self.task != "names":
                return _error("this run is a language model: use sample")
            token = self._token(client, request.id)
            ctl.request_classify(args["names"], args["top_k"], request=token, replaces=f"{client}:")
            return _ok(pending=token)
        elif cmd == "inspect":
            token = self._token(client, request.id)
            ctl.request_inspect(args["text"], args["units"], request=token, replaces=f"{client}:")
            return _ok(pending=token)
        elif cmd == "check":
            token = self._token(client, request.id)
            ctl.request_check(request=token)
            return _ok(pending=token)
        elif cmd == "device":
            from ..errors import DeviceError
            from .devices import resolve_device

            if self.world_size > 1:
                return _error(f"a job of {self.world_size} ranks stays on its devices; to move it, stop "
                              "it and resume it on others")
            try:
                resolve_device(args["name"])
            except DeviceError as exc:
                return _error(str(exc))
            ctl.switch_device(args["name"])
        elif cmd == "evaluate":
            ctl.request_evaluate(args["full"])
        return _ok()

    def _token(self, client: int, rid: Any) -> str:
        self._counter += 1
        token = f"{client}:{self._counter}"
        # an asker that never collects its answers must not grow this without bound
        while len(self._waiting) >= 1000:
            self._waiting.pop(next(iter(self._waiting)))
        self._waiting[token] = (client, rid)
        return token

    def status(self) -> dict[str, Any]:
        config = None
        with contextlib.suppress(Exception):
            config = self.config().to_dict()
        return {"state": self.state, "step": self.step, "task": self.task, "device": self.device,
                "world_size": self.world_size, "paused": self.controls.paused,
                "pid": self.liveness.get("pid"), "endpoint_failures": self.endpoint_failures,
                "run_id": self.liveness.get("run_id"), "config": config}
