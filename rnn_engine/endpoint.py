"""A run's control endpoint: a Unix socket only its owner can use, served by one thread of the run.

The thread multiplexes any number of clients with non-blocking sockets, so a client that stalls,
floods, disconnects mid-line or sends a 100 MB line costs that client its connection or its
request, never the trainer a wait. Requests are checked by `protocol` and handed to a handler
that only queues work for the trainer; replies and answers go back through per-client buffers.
"""

from __future__ import annotations

import contextlib
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
    __slots__ = ("sock", "inbox", "outbox", "skipping", "tokens", "stamp")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()
        self.skipping = False  # inside a line that was too long, until its newline
        self.tokens = 2 * RATE
        self.stamp = time.monotonic()

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
        self._next_id = 1
        self._outgoing: list[tuple[int, bytes]] = []
        self._lock = threading.Lock()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()

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
        self._thread = threading.Thread(target=self._serve, name="rnn-workbench-control", daemon=True)
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
    def _serve(self) -> None:
        try:
            while not self._closing:
                for key, mask in self._selector.select(timeout=1.0):
                    if key.data == "listen":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        self._service(key.data, mask)
                self._deliver()
        finally:
            for cid in list(self._clients):
                self._drop(cid)
            for sock in (self._listener, self._wake_r, self._wake_w):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()
            self._selector.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            try:
                uid = peer_uid(sock)
            except OSError:
                uid = None
            refusal = None
            if uid is not None and uid != os.geteuid():
                refusal = "refused: only the user who owns this run can steer it"
            elif len(self._clients) >= MAX_CLIENTS:
                refusal = f"refused: {MAX_CLIENTS} clients are connected already"
            if refusal:
                with contextlib.suppress(OSError):
                    sock.send(encode({"id": None, "ok": False, "error": refusal}))
                sock.close()
                continue
            cid = self._next_id
            self._next_id += 1
            self._clients[cid] = _Client(sock)
            self._selector.register(sock, selectors.EVENT_READ, cid)

    def _service(self, cid: int, mask: int) -> None:
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
            if not client.allow():
                # answering each line of a flood would keep this thread, and the GIL, busy
                self._queue(client, {"id": None, "ok": False, "error":
                                     f"too many requests (at most {RATE:.0f} a second); disconnected"})
                self._flush(cid)
                self._drop(cid)
                return
            self._answer(cid, line)
        if len(client.inbox) > MAX_LINE:
            client.inbox.clear()
            client.skipping = True
            self._too_long(client)

    def _too_long(self, client: _Client) -> None:
        self._queue(client, {"id": None, "ok": False,
                             "error": f"request line longer than {MAX_LINE} bytes; skipped"})

    def _answer(self, cid: int, line: bytes) -> None:
        try:
            request = parse_request(line)
        except ProtocolError as exc:
            reply = {"id": None, "ok": False, "error": str(exc)}
        else:
            try:
                reply = {"id": request.id, **self.handler(request, cid)}
            except Exception as exc:  # a bug answering one request must not end the endpoint
                reply = {"id": request.id, "ok": False,
                         "error": f"internal error: {type(exc).__name__}: {exc}"}
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
