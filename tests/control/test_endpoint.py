"""No request takes the control endpoint down: hostile input of every kind, and the supervisor behind it."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnn_engine import Controls, RunConfig, Trainer
from rnn_engine.config import LIVE_FIELDS, field_info
from rnn_engine.control import endpoint
from rnn_engine.control.client import RunClient
from rnn_engine.control.protocol import COMMANDS, MAX_LINE, ProtocolError, Request, encode, parse_request
from rnn_engine.rundir.liveness import read_record, run_state
from rnn_engine.training import service

from ..conftest import TINY_TEXT, wait_until, workbench

BASE = dict(task="charlm", hidden_size=24, num_layers=1, seq_len=16, batch_size=4, lr=1e-2, time_budget=0.0,
            epochs=100_000, sample_length=20, seed=3, device="cpu", precision="fp32", eval_interval=0.0)
# what every live setting is put back to after a hostile client changed it
RESTORE = {name: BASE.get(name, getattr(RunConfig(), name)) for name in LIVE_FIELDS}


class Live:
    """A trainer serving its endpoint from a thread of this process."""

    def __init__(self, trainer: Trainer, worker: threading.Thread) -> None:
        self.trainer, self.worker = trainer, worker

    @property
    def run_dir(self):
        return self.trainer.run_dir

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(read_record(self.run_dir)["socket"])
        return sock

    def still_serving_and_training(self) -> None:
        """The endpoint answers, every live setting is back as it was, and the run takes steps."""
        with RunClient.connect(self.run_dir) as client:
            assert client.call("resume")[0]["ok"]
            assert client.call("apply", {"changes": RESTORE})[0]["ok"]
            reply = client.call("status")[0]
            assert reply["ok"] and reply["state"] in ("running", "paused")
        start = self.trainer.step
        wait_until(lambda: self.trainer.step > start, 30, "the run to keep training")


def start_live(corpus, runs_dir, run_id: str = "live") -> Live:
    trainer = Trainer(RunConfig(data=str(corpus), **BASE), runs_dir=runs_dir, controls=Controls(),
                      run_id=run_id)
    worker = threading.Thread(target=trainer.run, daemon=True)
    worker.start()
    wait_until(lambda: run_state(trainer.run_dir).state == "running" and trainer.step > 2, 60, "training")
    return Live(trainer, worker)


def end_live(live: Live) -> None:
    live.trainer.controls.stop()
    live.worker.join(60)
    assert not live.worker.is_alive()


@pytest.fixture
def live(tiny_corpus, tmp_path):
    run = start_live(tiny_corpus, tmp_path / "runs")
    try:
        yield run
    finally:
        end_live(run)


@pytest.fixture(scope="module")
def shared_live(tmp_path_factory):
    """One run for the property tests, which send it hundreds of hostile clients."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "tiny.txt"
    corpus.write_text(TINY_TEXT, encoding="utf-8")
    run = start_live(corpus, root / "runs")
    try:
        yield run
    finally:
        end_live(run)


def read_lines(sock: socket.socket, count: int) -> list[dict]:
    """Up to `count` reply lines; fewer when the endpoint closes the connection first."""
    data = b""
    while data.count(b"\n") < count:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    return [json.loads(line) for line in data.splitlines()[:count]]


# -- what hostile clients send ------------------------------------------------------------------
leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
          | st.text(max_size=20))
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=25)
FIELDS = [name for name, *_ in field_info()]
ARG_NAMES = ["prime", "temperature", "top_k", "length", "names", "text", "units", "name", "full", "changes"]
typed = st.one_of(json_values, st.integers(-10**9, 10**9), st.text(max_size=60),
                  st.lists(st.lists(st.integers(-3, 40), max_size=3), max_size=4),
                  st.lists(st.text(max_size=12), max_size=5),
                  st.sampled_from(["cpu", "cuda", "cuda:3", "mps", "auto", "tpu", ""]))
changes = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), typed, max_size=4)
arguments = st.dictionaries(st.sampled_from(ARG_NAMES) | st.text(max_size=8), typed | changes, max_size=4)


def deep(depth: int, kind: str) -> bytes:
    """A request whose args nest `depth` levels deep (a few bytes a level, far under the size cap)."""
    if kind == "list":
        inner = b"[" * depth + b"]" * depth
    else:
        inner = b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"cmd": "status", "args": ' + inner + b"}"


def request_lines(commands: list[str]):
    """Whole request lines of every kind a client can send, each a line the endpoint must answer."""
    command = st.builds(lambda cmd, args, rid: json.dumps({"id": rid, "cmd": cmd, "args": args}).encode(),
                        st.sampled_from(commands), arguments | json_values, json_values)
    garbage = st.binary(max_size=300).map(lambda b: b.replace(b"\n", b" "))
    value = json_values.map(lambda v: json.dumps(v).encode())
    nested = st.builds(deep, st.integers(1, 200_000), st.sampled_from(["list", "dict"]))
    return st.one_of(command, garbage, value, nested).filter(lambda line: line.strip() != b"")


# -- the parser and the handler, without a socket -------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(line=st.binary(max_size=400) | request_lines(list(COMMANDS)))
def test_any_line_parses_to_a_request_or_a_protocol_error(line):
    try:
        request = parse_request(line)
    except ProtocolError as exc:
        assert str(exc)
        return
    assert isinstance(request, Request) and request.cmd in COMMANDS
    encode({"id": request.id, "ok": True})  # whatever id it carried can be echoed


class _Service(service.RunService):
    """A run's service with real Controls, but no trainer and no endpoint: handle() alone."""

    def __init__(self, tmp) -> None:
        super().__init__(tmp, "handled", "charlm", Controls(), lambda: RunConfig(data="x", **BASE))
        self.state = "running"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.sampled_from(list(COMMANDS)), args=arguments)
def test_every_command_with_any_arguments_gets_a_reply(cmd, args, tmp_path):
    svc = _Service(tmp_path)
    try:
        request = parse_request(json.dumps({"cmd": cmd, "args": args}))
    except ProtocolError:
        return
    reply = svc.handle(request, client=1)
    assert isinstance(reply["ok"], bool) and (reply["ok"] or reply["error"])
    json.loads(encode(reply))


# -- a live endpoint ------------------------------------------------------------------------------
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(request_lines([c for c in COMMANDS if c != "stop"]), min_size=1, max_size=3))
def test_hostile_request_lines_get_replies_and_the_run_trains_on(shared_live, lines):
    with contextlib.closing(shared_live.connect()) as sock:
        sock.sendall(b"\n".join(lines) + b"\n")
        replies = read_lines(sock, len(lines))
    assert len(replies) == len(lines)
    assert all(isinstance(r.get("ok"), bool) and (r["ok"] or r.get("error")) for r in replies)
    shared_live.still_serving_and_training()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=1, max_size=2000), how=st.sampled_from(["close", "half-close", "reset"]))
def test_partial_lines_and_abrupt_ends_cost_only_that_client(shared_live, data, how):
    sock = shared_live.connect()
    try:
        sock.sendall(data.replace(b"\n", b"") or b"x")  # never a whole line
        if how == "half-close":
            sock.shutdown(socket.SHUT_WR)
            read_lines(sock, 1)  # the end of a line that never ends: the endpoint lets it go
        elif how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    finally:
        sock.close()
    shared_live.still_serving_and_training()


# -- regressions: what took the endpoint down before ---------------------------------------------
@pytest.mark.parametrize("depth,kind", [(5_000, "list"), (100_000, "list"), (5_000, "dict")])
def test_deeply_nested_requests_get_an_error_and_the_endpoint_goes_on(live, depth, kind):
    # 10 KB of brackets once reached json's recursion limit; the RecursionError ended the serving
    # thread, every later connection was refused, and live.json still said "running"
    with contextlib.closing(live.connect()) as sock:
        sock.sendall(deep(depth, kind) + b"\n" + b'{"id": 2, "cmd": "status"}\n')
        nested, status = read_lines(sock, 2)
    assert not nested["ok"] and "nested too deeply" in nested["error"]
    assert status["ok"] and status["id"] == 2
    live.still_serving_and_training()
    assert live.trainer.service.endpoint_failures == 0


def test_a_half_closed_client_still_gets_its_reply(live):
    with contextlib.closing(live.connect()) as sock:
        sock.sendall(b'{"id": "h", "cmd": "status"}\n')
        sock.shutdown(socket.SHUT_WR)
        (reply,) = read_lines(sock, 1)
    assert reply["id"] == "h" and reply["ok"]


def test_a_slow_client_is_served_within_the_line_timeout(live):
    with contextlib.closing(live.connect()) as sock:
        for byte in b'{"id": 5, "cmd": "status"}\n':
            sock.send(bytes([byte]))
            time.sleep(0.01)
        (reply,) = read_lines(sock, 1)
    assert reply["id"] == 5 and reply["ok"]


def test_idle_and_half_line_clients_are_dropped_after_the_timeout(live, monkeypatch):
    monkeypatch.setattr(endpoint, "LINE_TIMEOUT", 0.5)
    silent, half = live.connect(), live.connect()
    try:
        half.sendall(b'{"cmd": "sta')
        (dropped,) = read_lines(silent, 1)
        (cut,) = read_lines(half, 1)
        assert dropped["error"] == "disconnected: no request came within 0.5 s"
        assert cut["error"] == "disconnected: the request line was not finished within 0.5 s"
        assert silent.recv(10) == b"" and half.recv(10) == b""  # and the connections are closed
    finally:
        silent.close()
        half.close()
    # a client that has been served may stay idle: it is not dropped by the timeout
    with RunClient.connect(live.run_dir) as client:
        assert client.call("status")[0]["ok"]
        time.sleep(1.2)
        assert client.call("status")[0]["ok"]


def test_a_pile_of_idle_connections_cannot_lock_the_owner_out(live):
    idle = []
    try:
        for _ in range(endpoint.MAX_CLIENTS + 8):  # more than the endpoint has room for
            client = RunClient.connect(live.run_dir)
            assert client.call("status")[0]["ok"]  # served once, then idle: not timed out
            idle.append(client)
        with RunClient.connect(live.run_dir) as owner:
            assert owner.call("status")[0]["ok"]
        assert live.trainer.service.endpoint.clients <= endpoint.MAX_CLIENTS
        # the longest idle made room, and each was told why
        for evicted in idle[:9]:
            goodbye = evicted.read(5)
            assert not goodbye["ok"] and "this one was idle longest" in goodbye["error"]
            assert evicted.read(5) is None  # then closed
    finally:
        for client in idle:
            client.close()
    live.still_serving_and_training()


def test_a_line_over_the_cap_is_refused_and_the_connection_still_works(live):
    with contextlib.closing(live.connect()) as sock:
        sock.sendall(b"[" * (MAX_LINE + 10) + b'\n{"id": 3, "cmd": "status"}\n')
        long, status = read_lines(sock, 2)
    assert "longer than" in long["error"] and status["id"] == 3 and status["ok"]


# -- the supervisor --------------------------------------------------------------------------------
class _ThreadKilled(BaseException):
    """Not an Exception: nothing on the request path catches it, so it ends the serving thread."""


def kill_serving_thread(live: Live) -> None:
    """Make the current endpoint's thread die on its next request, as an unforeseen fault would."""
    current = live.trainer.service.endpoint

    def fatal(request, client):
        raise _ThreadKilled("injected")

    current.handler = fatal
    with contextlib.closing(live.connect()) as sock:
        sock.sendall(b'{"cmd": "status"}\n')
        assert read_lines(sock, 1) == []  # the thread died with the connection open: it is closed
    wait_until(lambda: not current.alive, 10, "the serving thread to end")


def test_the_supervisor_restarts_a_dead_serving_thread_and_runs_reports_it(live, tmp_path):
    kill_serving_thread(live)
    wait_until(lambda: read_record(live.run_dir).get("endpoint_failures") == 1
               and read_record(live.run_dir).get("socket"), 10, "the supervisor's restart")
    record = read_record(live.run_dir)
    assert "_ThreadKilled: injected" in record["socket_error"] and record["socket_error_at"] > 0
    with RunClient.connect(live.run_dir) as client:
        status = client.call("status")[0]
    assert status["ok"] and status["endpoint_failures"] == 1
    log = [json.loads(x) for x in (live.run_dir / "events.jsonl").read_text().splitlines()]
    failed = [e for e in log if e["event"] == "ControlEndpointFailed"]
    assert len(failed) == 1 and failed[0]["restarted"] and failed[0]["failures"] == 1
    listed = workbench("runs", "--runs-dir", str(live.run_dir.parent), "--json")
    (info,) = json.loads(listed.stdout)
    assert info["state"] == "running" and "restarted after 1 failure" in info["endpoint"]
    table = workbench("runs", "--runs-dir", str(live.run_dir.parent)).stdout
    assert "↳ control endpoint restarted after 1 failure (last at" in table
    live.still_serving_and_training()


def test_once_the_restarts_are_used_up_runs_and_ctl_say_how_to_stop_the_run(live, monkeypatch):
    monkeypatch.setattr(service, "ENDPOINT_RESTARTS", 0)
    kill_serving_thread(live)
    wait_until(lambda: read_record(live.run_dir).get("socket_error")
               and not read_record(live.run_dir).get("socket"), 10, "the endpoint recorded as down")
    assert run_state(live.run_dir).state == "running"  # the run trains on
    start = live.trainer.step
    wait_until(lambda: live.trainer.step > start + 2, 30, "steps without an endpoint")
    pid = read_record(live.run_dir)["pid"]
    table = workbench("runs", "--runs-dir", str(live.run_dir.parent)).stdout
    assert "↳ no control endpoint (_ThreadKilled: injected at" in table and f"kill -TERM {pid}" in table
    ctl = workbench("ctl", str(live.run_dir), "pause")
    assert ctl.returncode == 2 and ctl.stderr.count("\n") == 1
    assert "trains on, but has no control endpoint" in ctl.stderr and f"kill -TERM {pid}" in ctl.stderr
    log = (live.run_dir / "events.jsonl").read_text()
    assert '"event":"ControlEndpointFailed"' in log and '"restarted":false' in log


async def test_the_app_shows_a_run_whose_endpoint_is_down(live, monkeypatch):
    from workbench.app import make_app

    monkeypatch.setattr(service, "ENDPOINT_RESTARTS", 0)
    kill_serving_thread(live)
    wait_until(lambda: not read_record(live.run_dir).get("socket"), 10, "the endpoint recorded as down")
    app = make_app(live.trainer.config, live.run_dir.parent, attach=live.run_dir)
    notes = []
    original = app.notify
    app.notify = lambda message, *a, **kw: notes.append(str(message)) or original(message, *a, **kw)
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + 30
        while "no control endpoint" not in app.query_one("#status").activity:
            assert time.monotonic() < deadline, "the status line never said so"
            await pilot.pause(0.05)
        activity = "\n".join(app.query_one("#activity").plain)
        pid = read_record(live.run_dir)["pid"]
        assert "no control endpoint (_ThreadKilled: injected" in activity and f"kill -TERM {pid}" in activity
        assert any("no control endpoint" in n for n in notes)
        await pilot.press("p")  # a command now says why it cannot go, and how to stop the run
        await pilot.pause()
        assert any("trains on, but has no control endpoint" in n for n in notes)
