"""Ways to run a Trainer for an interactive caller: in a thread, or in a child process.

Both expose `controls` (pause, resume, stop, live hyperparameters, device, queries) and
`run(sink) -> summary`, and deliver the same events, so a UI can use either. The child process
keeps training off the UI's interpreter, so the GIL never makes the two wait on each other.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .config import RunConfig
from .controls import Controls, check_live
from .events import Event, RunPaused, RunResumed, Sink

NICENESS = 5  # added to the trainer process's nice value


class TrainingFailed(RuntimeError):
    """The run could not start or stopped with an error; the message is one line for the user."""


class _Runner:
    """What both runners are given: the run's config, where runs go, and a checkpoint to resume."""

    def __init__(self, config: RunConfig, runs_dir: str | os.PathLike = "runs",
                 resume: str | None = None) -> None:
        self.config = config
        self.runs_dir = Path(runs_dir)
        self.resume = resume


class ThreadRunner(_Runner):
    """Runs the Trainer in the calling thread (a UI worker thread); cheapest to start."""

    def __init__(self, config: RunConfig, runs_dir: str | os.PathLike = "runs",
                 resume: str | None = None) -> None:
        super().__init__(config, runs_dir, resume)
        self.controls = Controls()

    def run(self, sink: Sink) -> dict[str, Any]:
        from .trainer import Trainer, error_message

        try:
            trainer = Trainer(self.config, sink=sink, controls=self.controls, runs_dir=self.runs_dir,
                              resume=self.resume)
            return trainer.run()
        except Exception as exc:
            raise TrainingFailed(error_message(exc)) from exc


class ProcessControls:
    """The Controls interface, forwarding every request to the trainer's process."""

    def __init__(self, commands: Any) -> None:
        self._commands = commands
        self._paused = False
        self._stopped = False

    def _send(self, *command: Any) -> None:
        self._commands.put(command)

    def pause(self) -> None:
        self._paused = True
        self._send("pause")

    def resume(self) -> None:
        self._paused = False
        self._send("resume")

    def toggle_pause(self) -> bool:
        (self.resume if self._paused else self.pause)()
        return self._paused

    def step_once(self) -> None:
        self._send("step_once")

    def stop(self) -> None:
        self._stopped = True
        self._send("stop")

    def apply(self, **changes: Any) -> None:
        check_live(changes)
        self._send("apply", changes)

    def switch_device(self, device: str) -> None:
        self._send("switch_device", device)

    def request_sample(self, prime: str = "", temperature: float = 0.8, length: int = 300,
                       top_k: int = 0) -> None:
        self._send("request_sample", prime, temperature, length, top_k)

    def request_classify(self, names: list[str], top_k: int = 5) -> None:
        self._send("request_classify", list(names), top_k)

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def stopped(self) -> bool:
        return self._stopped

    def observe(self, event: Event) -> None:
        """Follow pauses the trainer decides on itself (a NaN loss, a failed device switch)."""
        if isinstance(event, RunPaused):
            self._paused = True
        elif isinstance(event, RunResumed):
            self._paused = False


def _serve_commands(commands: Any, controls: Controls, parent: int) -> None:
    """In the child: turn queued commands into Controls calls; stop if the parent goes away."""
    while True:
        try:
            command = commands.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:
                controls.stop()
                return
            continue
        name, *args = command
        if name == "close":
            return
        if name == "apply":
            controls.apply(**args[0])
        else:
            getattr(controls, name)(*args)


def _child_main(config: dict, runs_dir: str, resume: str | None, commands: Any, events: Any,
                parent: int) -> None:
    from .trainer import Trainer, error_message

    controls = Controls()
    # the UI process needs little CPU but needs it at once; on a machine whose cores the trainer
    # keeps busy, a lower priority here is what keeps key presses answered quickly
    with contextlib.suppress(OSError, AttributeError):
        os.nice(NICENESS)
    # a hang-up or Ctrl-C reaches the whole process group: stop at a batch boundary and save
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, lambda *_: controls.stop())
    threading.Thread(target=_serve_commands, args=(commands, controls, parent), daemon=True).start()
    try:
        trainer = Trainer(RunConfig.from_dict(config), sink=events.put, controls=controls,
                          runs_dir=runs_dir, resume=resume)
        summary = trainer.run()
    except Exception as exc:
        events.put(("failed", error_message(exc)))
        return
    events.put(("done", summary))


@contextlib.contextmanager
def _real_stderr() -> Iterator[None]:
    """Let multiprocessing start its helpers even while a UI has replaced sys.stderr.

    The resource tracker (started by the first queue) is handed sys.stderr's file descriptor; a
    UI that captures stderr with an object whose fileno() is -1 makes that fail with
    'bad value(s) in fds_to_keep'.
    """
    saved = sys.stderr
    try:
        if _fileno(saved) < 0:
            sys.stderr = sys.__stderr__
        yield
    finally:
        sys.stderr = saved


def _fileno(stream: Any) -> int:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return -1


class ProcessRunner(_Runner):
    """Runs the Trainer in a spawned child process; events come back over a queue."""

    def __init__(self, config: RunConfig, runs_dir: str | os.PathLike = "runs",
                 resume: str | None = None) -> None:
        super().__init__(config, runs_dir, resume)
        # spawn, not fork: the parent has threads (the UI), and CUDA must start fresh in the child
        self._ctx = mp.get_context("spawn")
        with _real_stderr():
            self._commands = self._ctx.Queue()
            self._events = self._ctx.Queue()
        self.controls = ProcessControls(self._commands)
        self.process: Any = None

    def run(self, sink: Sink) -> dict[str, Any]:
        self.process = self._ctx.Process(
            target=_child_main, name="rnn-workbench-trainer", daemon=True,
            args=(self.config.to_dict(), str(self.runs_dir), self.resume, self._commands,
                  self._events, os.getpid()))
        with _real_stderr():
            self.process.start()
        try:
            while True:
                try:
                    item = self._events.get(timeout=0.5)
                except queue.Empty:
                    if not self.process.is_alive():
                        raise TrainingFailed(
                            f"the training process ended unexpectedly (exit code {self.process.exitcode})"
                        ) from None
                    continue
                if isinstance(item, Event):
                    self.controls.observe(item)
                    sink(item)
                elif item[0] == "done":
                    return item[1]
                else:
                    raise TrainingFailed(item[1])
        finally:
            self._commands.put(("close",))
            self.process.join(timeout=30)
