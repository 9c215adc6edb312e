"""A run's control endpoint: a Unix socket only its owner can use, served by one thread of the run.

The thread multiplexes any number of clients with non-blocking sockets, so a client that stalls,
floods, disconnects mid-line or sends a 100 MB line costs that client its connection or its
request, never the trainer a wait. Requests are checked by `protocol` and handed to a handler
that only queues work for the trainer; replies and answers go back through per-client buffers.

Whatever a client sends, it gets an error reply or its own disconnect: an exception while
reading, parsing, checking or answering one request is caught there, and one while serving a
client drops that client only. Connections that send nothing, or half a line, are dropped after
`LINE_TIMEOUT`, and when every slot is taken the longest-idle client makes room for a new one,
so idle connections cannot lock the run's owner out. If the thread ends all the same, `alive`
turns false and `error` says why; the run's service notices and starts a new endpoint.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import selectors
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .protocol import MAX_LINE, ProtocolError, Request, encode, parse_request

SOCKET_NAME = "control.sock"
# sun_path holds 108 bytes on Linux and 104 on macOS, the terminating NUL included
MAX_SOCKET_PATH = 100
MAX_CLIENTS = 64
MAX_OUTBOX = 1 << 20  # bytes waiting for a client that does not read; beyond it, the client goes
RATE = 100.0  # requests a second a client may keep up (a burst of twice that is allowed)
# seconds a new connection may take to send its first whole request, and a started line to end
LINE_TIMEOUT = 10.0
# serving rounds in a row that fail before the thread gives up, for its supervisor to start anew
MAX_ROUND_FAILURES = 20

# client ids stay unique across endpoints of one process, so that an answer queued for a client
# of an endpoint that has since been restarted cannot reach a newcomer that got the same number
_CLIENT_IDS = itertools.count(1)

Handler = Callable[[Request, int], dict[str, Any]]


def socket_path_for(run_dir: Path) -> tuple[Path, Path | None]:
    """Where the socket goes, and a private directory made for it when the run path is too long.

    `runs/<id>/control.sock` when its absolute path fits in sun_path; otherwise a fresh 0700
    directory under $XDG_RUNTIME_DIR (or the temp directory), which the caller removes at the end.
    """
    path = run_dir.resolve() / SOCKET_NAME
    if len(os.fsencode(path)) <= MAX_SOCKET_PATH:
        return path, None
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    if not os.path.isdir(base) or len(os.fsencode(base)) > MAX_SOCKET_PATH - 40:
        base = "/tmp"
    private = Path(tempfile.mkdtemp(prefix="rnn-wb-", dir=base))  # mkdtemp makes it 0700
    return private / SOCKET_NAME, private


def peer_uid(sock: socket.socket) -> int | None:
    """The user id of the process at the other end, where the platform tells it."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None  # the socket's 0600 mode is then the only gate
    creds = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[1]


class _Client:
    __slots__ = ("sock", "inbox", "outbox", "skipping", "tokens", "stamp", "active", "served",
                 "waiting_since")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.skipping = False  # inside a line that was too long, until its newline
        self.tokens = 2 * RATE
        self.stamp = time.monotonic()
        self.active = self.stamp  # the last time it sent a whole request (or connected)
        self.served = False  # it has sent a whole request
        # since when the endpoint waits for it to finish a line: from the start for a new
        # connection, which owes its first request, and from the first byte of every later line
        self.waiting_since: float | None = self.stamp

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(2 * RATE, self.tokens + (now - self.stamp) * RATE)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class ControlEndpoint:
    """Serves request lines on a Unix socket in a daemon thread; `send` may be called from any thread."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._clients: dict[int, _Client] = {}
        self._outgoing: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self.error = ""  # why the serving thread ended, when it ended on its own

    @property
    def alive(self) -> bool:
        """True while the serving thread runs (after `start`, until `close` or a failure)."""
        return self._thread is not None and self._thread.is_alive()

    # -- lifetime -----------------------------------------------------------------------------------
    def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a socket left by a process that was killed
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        # owner-only before anyone can connect: connections are accepted only after listen()
        os.chmod(self.path, 0o600)
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, "listen")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="rnn-workbench-control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving, close every client and remove the socket file."""
        self._closing = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with contextlib.suppress(OSError):
            self.path.unlink()

    @property
    def clients(self) -> int:
        return len(self._clients)

    def send(self, client: int, message: dict[str, Any]) -> None:
        """Queue a line for one client (dropped if it has gone)."""
        with self._lock:
            self._outgoing.append((client, encode(message)))
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):  # the pipe is full: a wake-up is pending anyway
            self._wake_w.send(b"\0")

    # -- the serving thread -------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:  # noqa: BLE001 - recorded for the supervisor, which restarts
            self.error = f"{type(exc).__name__}: {exc}"[:300]

    def _serve(self) -> None:
        failures = 0
        try:
            while not self._closing:
                try:
                    self._round()
                    failures = 0
                except Exception:
                    # a fault outside any one client (the selector, the wake-up pipe): try again,
                    # and give up only if it persists, so that a fresh endpoint takes over
                    failures += 1
                    if failures >= MAX_ROUND_FAILURES:
                        raise
                    time.sleep(0.05)
        finally:
            for cid in list(self._clients):
                self._drop(cid)
            for sock in (self._listener, self._wake_r, self._wake_w):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            self._selector.close()

    def _round(self) -> None:
        for key, mask in self._selector.select(timeout=1.0):
            if key.data == "listen":
                self._accept()
            elif key.data == "wake":
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
            else:
                self._service(key.data, mask)
        self._deliver()
        self._expire()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # out of file descriptors, say: those waiting stay in the backlog; make room for them
                self._evict_idlest("the run is out of connections")
                return
            try:
                self._admit(sock)
            except Exception:  # noqa: BLE001 - this connection only
                with contextlib.suppress(OSError):
                    sock.close()

    def _admit(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        try:
            uid = peer_uid(sock)
        except OSError:
            uid = None
        if uid is not None and uid != os.geteuid():
            with contextlib.suppress(OSError):
                sock.send(encode({"id": None, "ok": False,
                                  "error": "refused: only the user who owns this run can steer it"}))
            sock.close()
            return
        if len(self._clients) >= MAX_CLIENTS:
            self._evict_idlest(f"{MAX_CLIENTS} clients were connected and this one was idle longest")
        cid = next(_CLIENT_IDS)
        self._clients[cid] = _Client(sock)
        self._selector.register(sock, selectors.EVENT_READ, cid)

    def _evict_idlest(self, why: str) -> None:
        if not self._clients:
            return
        cid = min(self._clients, key=lambda c: self._clients[c].active)
        self._goodbye(cid, f"disconnected: {why}")

    def _goodbye(self, cid: int, error: str) -> None:
        """Drop a client, telling it why when its socket takes one more line."""
        client = self._clients.get(cid)
        if client is not None:
            with contextlib.suppress(OSError):
                client.sock.send(encode({"id": None, "ok": False, "error": error}))
        self._drop(cid)

    def _expire(self) -> None:
        """Drop clients that owe the end of a line (or their first request) for too long."""
        now = time.monotonic()
        for cid, client in list(self._clients.items()):
            if client.waiting_since is not None and now - client.waiting_since > LINE_TIMEOUT:
                what = "the request line was not finished" if client.inbox or client.skipping \
                    else "no request came"
                self._goodbye(cid, f"disconnected: {what} within {LINE_TIMEOUT:g} s")

    def _service(self, cid: int, mask: int) -> None:
        try:
            self._serve_client(cid, mask)
        except Exception as exc:  # noqa: BLE001 - a fault while serving one client costs it alone
            self._goodbye(cid, f"internal error: {type(exc).__name__}; disconnected")

    def _serve_client(self, cid: int, mask: int) -> None:
        client = self._clients.get(cid)
        if client is None:
            return
        if mask & selectors.EVENT_READ:
            try:
                data: bytes | None = client.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                data = b""
            if data == b"":  # closed by the client, or broken
                self._drop(cid)
                return
            if data:
                self._take(cid, client, data)
        self._flush(cid)  # the replies go out now, or once the socket can take them

    def _take(self, cid: int, client: _Client, data: bytes) -> None:
        """Split what arrived into lines and answer each complete one."""
        if client.skipping:
            end = data.find(b"\n")
            if end < 0:
                return
            client.skipping = False
            data = data[end + 1:]
        client.inbox += data
        while True:
            end = client.inbox.find(b"\n")
            if end < 0:
                break
            if end > MAX_LINE:
                del client.inbox[:end + 1]
                self._too_long(client)
                continue
            line = bytes(client.inbox[:end])
            del client.inbox[:end + 1]
            if not line.strip():
                continue
            client.active, client.served = time.monotonic(), True
            if not client.allow():
                # answering each line of a flood would keep this thread, and the GIL, busy
                self._queue(client, {"id": None, "ok": False, "error":
                                     f"too many requests (at most {RATE:.0f} a second); disconnected"})
                self._flush(cid)
                self._drop(cid)
                return
            self._answer(cid, line)
            if cid not in self._clients:
                return
        if len(client.inbox) > MAX_LINE:
            client.inbox.clear()
            client.skipping = True
            self._too_long(client)
        if client.inbox or client.skipping:
            if client.waiting_since is None:
                client.waiting_since = time.monotonic()  # a line has begun: it must end in time
        elif client.served:
            client.waiting_since = None  # between lines: a client that has been served may idle

    def _too_long(self, client: _Client) -> None:
        self._queue(client, {"id": None, "ok": False,
                             "error": f"request line longer than {MAX_LINE} bytes; skipped"})

    def _answer(self, cid: int, line: bytes) -> None:
        try:
            request = parse_request(line)
        except ProtocolError as exc:
            reply = {"id": None, "ok": False, "error": str(exc)}
        except Exception as exc:  # noqa: BLE001 - whatever the line holds, it gets a reply
            reply = {"id": None, "ok": False, "error": f"unreadable request ({type(exc).__name__})"}
        else:
            try:
                reply = {"id": request.id, **self.handler(request, cid)}
            except Exception as exc:  # a bug answering one request must not end the endpoint
                reply = {"id": request.id, "ok": False,
                         "error": f"internal error: {type(exc).__name__}: {str(exc)[:200]}"}
        client = self._clients.get(cid)
        if client is not None:
            self._queue(client, reply)

    def _queue(self, client: _Client, message: dict[str, Any]) -> None:
        client.outbox += encode(message)

    def _deliver(self) -> None:
        with self._lock:
            outgoing, self._outgoing = self._outgoing, []
        for cid, line in outgoing:
            client = self._clients.get(cid)
            if client is not None:
                client.outbox += line
        for cid in list(self._clients):
            self._flush(cid)

    def _flush(self, cid: int) -> None:
        client = self._clients.get(cid)
        if client is None:
            return
        if client.outbox:
            try:
                sent = client.sock.send(client.outbox)
                del client.outbox[:sent]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                self._drop(cid)
                return
        if len(client.outbox) > MAX_OUTBOX:
            self._drop(cid)  # it does not read its replies
            return
        self._watch(cid)

    def _watch(self, cid: int) -> None:
        client = self._clients.get(cid)
        if client is None:
            return
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbox else 0)
        with contextlib.suppress(KeyError, ValueError):
            if self._selector.get_key(client.sock).events != mask:
                self._selector.modify(client.sock, mask, cid)

    def _drop(self, cid: int) -> None:
        client = self._clients.pop(cid, None)
        if client is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.sock)
        with contextlib.suppress(OSError):
            client.sock.close()
