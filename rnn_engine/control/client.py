"""A client of a run's control endpoint, for `workbench ctl` and the workbench app."""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..rundir.liveness import endpoint_note, run_state, stop_hint
from .protocol import request_line


class RunUnavailable(ConnectionError):
    """The run cannot be reached: not live, no endpoint, or not answering. The message says which."""


class RunClient:
    """One connection to a live run. `call` waits for a reply; `send` + `listen` suit a UI."""

    def __init__(self, socket_path: str, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(socket_path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            self._sock.close()
            raise RunUnavailable(f"nothing answers at {socket_path} ({exc.strerror})") from None
        except OSError as exc:
            self._sock.close()
            raise RunUnavailable(f"cannot connect to {socket_path} ({exc.strerror or exc})") from None
        self._ids = itertools.count(1)
        self._send_lock = threading.Lock()
        self._buffer = b""
        self._listener: threading.Thread | None = None
        self._closed = False

    @classmethod
    def connect(cls, run_dir: str | Path, timeout: float = 10.0) -> RunClient:
        """A client for the run in `run_dir`; RunUnavailable when it is not live or has no endpoint."""
        state = run_state(Path(run_dir))
        if not state.live:
            why = f" ({state.reason})" if state.reason else ""
            raise RunUnavailable(f"{Path(run_dir).name} is {state.state}{why}, not a live run")
        name = Path(run_dir).name
        path = state.record.get("socket")
        if not path:
            if state.record.get("socket_error"):
                raise RunUnavailable(f"{name} trains on, but has {endpoint_note(state.record)}")
            raise RunUnavailable(f"{name}: it has not opened its control endpoint yet")
        try:
            return cls(path, timeout)
        except RunUnavailable as exc:
            # the endpoint may have failed a moment ago: its process still answers to a signal
            raise RunUnavailable(f"{name}: {exc}; if it stays so, {stop_hint(state.record)}") from None

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def __enter__(self) -> RunClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests -----------------------------------------------------------------------------------
    def send(self, cmd: str, args: dict[str, Any] | None = None) -> int:
        """Send a request; returns its id, which the reply (and any answer) carries."""
        rid = next(self._ids)
        try:
            with self._send_lock:
                self._sock.sendall(request_line(cmd, args, rid))
        except OSError as exc:
            raise RunUnavailable(f"the run closed the connection ({exc.strerror or exc})") from None
        return rid

    def call(self, cmd: str, args: dict[str, Any] | None = None, answer: bool = False,
             answer_timeout: float | None = None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Send and wait for the reply, and with `answer` for the event that answers it.

        RunUnavailable when no reply comes within the timeout or the connection ends.
        """
        rid = self.send(cmd, args)
        reply = self._wait_for(lambda m: m.get("id") == rid and "ok" in m, self.timeout)
        event = None
        if answer and reply.get("ok"):
            limit = answer_timeout if answer_timeout is not None else max(self.timeout, 60.0)
            event = self._wait_for(lambda m: m.get("id") == rid and "event" in m, limit).get("event")
        return reply, event

    def _wait_for(self, match: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunUnavailable(f"no answer within {timeout:g} s")
            try:
                message = self.read(left)
            except RunUnavailable:  # read names what was left of the wait; the caller asked for all of it
                raise RunUnavailable(f"no answer within {timeout:g} s") from None
            if message is None:
                raise RunUnavailable("the run closed the connection")
            if match(message):
                return message
            if message.get("id") is None and message.get("ok") is False:
                # an error about the connection itself (refused, too many requests, ...)
                raise RunUnavailable(message.get("error", "refused"))

    def read(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message, or None when the connection has ended; raises on timeout."""
        self._sock.settimeout(timeout)
        while b"\n" not in self._buffer:
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                raise RunUnavailable(f"no answer within {timeout:g} s") from None
            except OSError:
                return None
            if not data:
                return None
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            return {"id": None, "ok": False, "error": "unreadable reply"}
        return message if isinstance(message, dict) else {}

    def listen(self, on_message: Callable[[dict[str, Any]], None],
               on_close: Callable[[], None] | None = None) -> None:
        """Hand every message to `on_message` from a thread of its own until the connection ends."""

        def loop() -> None:
            while not self._closed:
                try:
                    message = self.read(1.0)
                except RunUnavailable:
                    continue  # just quiet
                if message is None:
                    break
                on_message(message)
            if on_close is not None and not self._closed:
                on_close()

        self._listener = threading.Thread(target=loop, name="rnn-workbench-client", daemon=True)
        self._listener.start()
