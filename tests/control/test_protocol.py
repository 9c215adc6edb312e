"""The control endpoint under good and bad clients: a real trainer in a thread, real sockets."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import threading

import pytest

from rnn_engine import Controls, RunConfig, Trainer
from rnn_engine.control.client import RunClient, RunUnavailable
from rnn_engine.control.endpoint import MAX_SOCKET_PATH
from rnn_engine.control.protocol import MAX_LINE, ProtocolError, check_changes, parse_request
from rnn_engine.events import HyperparametersApplied, Inspected, RunPaused, Sampled, StepFinished
from rnn_engine.rundir.liveness import read_record, run_state

from ..conftest import wait_until


def tiny_lm(corpus, **kw):
    base = dict(task="charlm", data=str(corpus), hidden_size=24, num_layers=1, seq_len=16, batch_size=4,
                lr=1e-2, time_budget=0.0, epochs=100_000, sample_length=20, seed=3, device="cpu",
                precision="fp32")
    base.update(kw)
    return RunConfig(**base)


@pytest.fixture
def live_run(tiny_corpus, tmp_path):
    """A trainer serving its endpoint from a thread of this process; stopped at teardown."""
    events: list = []
    controls = Controls()
    trainer = Trainer(tiny_lm(tiny_corpus), sink=events.append, runs_dir=tmp_path / "runs",
                      controls=controls, run_id="live")
    worker = threading.Thread(target=trainer.run, daemon=True)
    worker.start()
    wait_until(lambda: run_state(trainer.run_dir).state == "running" and trainer.step > 2, 60, "training")
    try:
        yield trainer, events
    finally:
        controls.stop()
        worker.join(60)
    assert not worker.is_alive()


def steps_go_on(trainer: Trainer, more: int = 3) -> None:
    start = trainer.step
    wait_until(lambda: trainer.step >= start + more, 30, "the run to keep stepping")


def raw(trainer: Trainer) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(read_record(trainer.run_dir)["socket"])
    return sock


def replies(sock: socket.socket, count: int) -> list[dict]:
    data = b""
    while data.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [json.loads(line) for line in data.splitlines()[:count]]


# -- parsing, without a socket -------------------------------------------------------------------
@pytest.mark.parametrize("line,needle", [
    (b"pause", "not a JSON object"),
    (b"[1, 2]", "a request is a JSON object"),
    (b'{"cmd": "explode"}', "unknown command 'explode'"),
    (b'{"cmd": "pause", "args": 3}', "args must be a JSON object"),
    (b'{"cmd": "sample", "args": {"temperature": "hot"}}', "temperature: 'hot' is not a number"),
    (b'{"cmd": "sample", "args": {"length": 0}}', "length must be between 1"),
    (b'{"cmd": "sample", "args": {"prime": 7}}', "prime must be a string"),
    (b'{"cmd": "sample", "args": {"colour": "red"}}', "unknown argument 'colour'"),
    (b'{"cmd": "classify", "args": {"names": []}}', "names must be a list of 1 to"),
    (b'{"cmd": "device", "args": {"name": "tpu"}}', "must be cpu, cuda, cuda:N, mps or auto"),
    (b'{"cmd": "apply", "args": {}}', "give at least one field"),
    (b'{"cmd": "apply", "args": {"changes": {"lr": [1]}}}', "values must be numbers"),
    (b'{"cmd": "evaluate", "args": {"full": "yes"}}', "full must be true or false"),
    (b'{"cmd": "inspect", "args": {"text": ""}}', "text must be a non-empty string"),
    (b'{"cmd": "inspect", "args": {"text": "a", "units": [[0, -1]]}}', "unit must be between"),
    (b'\xff\xfe', "not a JSON object"),
])
def test_malformed_requests_are_refused_with_the_reason(line, needle):
    with pytest.raises(ProtocolError, match=needle):
        parse_request(line)


def test_requests_parse_to_typed_arguments():
    r = parse_request(b'{"id": 4, "cmd": "sample", "args": {"prime": "ROMEO:", "temperature": 0.5, '
                      b'"top_k": 3}}')
    assert (r.id, r.cmd, r.args) == (4, "sample", {"prime": "ROMEO:", "temperature": 0.5, "top_k": 3})
    assert parse_request(b'{"cmd": "classify", "args": {"names": "Smith"}}').args == \
        {"names": ["Smith"], "top_k": 3}
    assert parse_request(b'{"cmd": "apply", "args": {"changes": {"lr": "1e-3"}}}').args == \
        {"changes": {"lr": "1e-3"}}


def test_live_changes_are_parsed_and_checked_against_the_run():
    changes, errors = check_changes({"lr": "1e-3", "clip": 2, "hidden_size": 9, "colour": 1, "top_k": -1},
                                    RunConfig())
    assert changes == {"lr": 1e-3, "clip": 2.0, "top_k": -1}
    assert set(errors) == {"hidden_size", "colour", "top_k"}
    assert "cannot change mid-run" in errors["hidden_size"] and "must be >= 0" in errors["top_k"]


# -- a live run ----------------------------------------------------------------------------------
def test_commands_are_acknowledged_and_honoured(live_run):
    trainer, events = live_run
    with RunClient.connect(trainer.run_dir) as client:
        assert client.call("pause")[0]["ok"]
        wait_until(lambda: any(isinstance(e, RunPaused) for e in events), 30, "pause")
        reply, event = client.call("sample", {"prime": "the ", "length": 12}, answer=True)
        assert reply["ok"] and event["event"] == "Sampled" and event["text"].startswith("the ")
        assert event["step"] == trainer.step  # answered while paused: no step in between
        assert client.call("status")[0]["state"] == "paused"
        step = trainer.step
        assert client.call("step")[0]["ok"]
        wait_until(lambda: trainer.step == step + 1, 30, "one step")
        reply, _ = client.call("apply", {"changes": {"lr": "0.002", "clip": 1}})
        assert reply == {"id": reply["id"], "ok": True, "applied": {"lr": 0.002, "clip": 1.0}}
        assert client.call("resume")[0]["ok"]
        wait_until(lambda: any(isinstance(e, HyperparametersApplied) for e in events), 30, "apply")
        steps_go_on(trainer)
        step_reply, _ = client.call("step")
        assert not step_reply["ok"] and "not paused" in step_reply["error"]
        assert "is a language model" in client.call("classify", {"names": ["Smith"]})[0]["error"]
        refused = client.call("apply", {"changes": {"lr": -1, "hidden_size": 3}})[0]
        assert set(refused["errors"]) == {"lr", "hidden_size"}
    assert trainer.config.lr == 0.002  # the refused change left the run as it was


def test_bad_clients_get_errors_and_the_run_goes_on(live_run):
    trainer, events = live_run
    with contextlib.closing(raw(trainer)) as sock:
        sock.sendall(b'nonsense\n{"cmd": "reboot"}\n'
                     b'{"id": 9, "cmd": "apply", "args": {"changes": {"lr": "x"}}}\n')
        got = replies(sock, 3)
        assert [r["ok"] for r in got] == [False, False, False]
        assert "not a JSON object" in got[0]["error"] and "unknown command" in got[1]["error"]
        assert got[2]["id"] == 9 and "'x' is not a number" in got[2]["error"]
        # a line longer than the limit is refused and skipped; the connection still works after it
        sock.sendall(b"x" * (MAX_LINE + 10) + b'\n{"id": 2, "cmd": "status"}\n')
        got = replies(sock, 2)
        assert "longer than" in got[0]["error"] and got[1]["ok"] and got[1]["state"] == "running"
    steps_go_on(trainer)

    # 100 MB in one line from a client that does not read: costs the trainer no wait
    with contextlib.closing(raw(trainer)) as big:
        chunk = b"y" * (1 << 20)
        before = trainer.step
        for _ in range(100):
            big.sendall(chunk)
    assert trainer.step > before
    steps_go_on(trainer)

    # half a line, then gone
    with contextlib.closing(raw(trainer)) as half:
        half.sendall(b'{"cmd": "sto')
    # a flood of requests: answered up to a limit, then the client is disconnected
    with contextlib.closing(raw(trainer)) as flood:
        with contextlib.suppress(OSError):  # the endpoint may close it while we are still sending
            flood.sendall(b'{"cmd": "status"}\n' * 5000)
        lines = b""
        while True:
            try:
                chunk = flood.recv(1 << 16)
            except OSError:
                break
            if not chunk:
                break
            lines += chunk
    assert b"too many requests" in lines
    steps_go_on(trainer)
    assert not trainer.controls.stopped and not trainer.controls.paused
    with RunClient.connect(trainer.run_dir) as client:  # and a well-behaved client is served
        assert client.call("status")[0]["state"] == "running"


def test_many_clients_at_once_and_one_killed_mid_request(live_run):
    trainer, _ = live_run
    clients = [RunClient.connect(trainer.run_dir) for _ in range(10)]
    try:
        for c in clients:
            assert c.call("status")[0]["ok"]
        clients[3]._sock.close()  # gone without a word
        assert all(c.call("status")[0]["ok"] for i, c in enumerate(clients) if i != 3)
    finally:
        for c in clients:
            c.close()
    steps_go_on(trainer)


def test_socket_is_owner_only_and_gone_after_the_run(tiny_corpus, tmp_path):
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1), runs_dir=tmp_path / "runs", run_id="short")
    seen = {}

    def look(event):
        if isinstance(event, StepFinished) and not seen:
            path = read_record(trainer.run_dir)["socket"]
            seen["path"], seen["mode"] = path, stat.S_IMODE(os.stat(path).st_mode)

    trainer.sink = look
    trainer.run()
    assert seen["path"] == str((trainer.run_dir / "control.sock").resolve())
    assert seen["mode"] == 0o600
    assert not (trainer.run_dir / "control.sock").exists()
    assert read_record(trainer.run_dir)["state"] == "finished"


def test_a_deep_runs_directory_gets_a_private_socket_directory(tiny_corpus, tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1), runs_dir=deep, run_id="deep")
    seen = {}

    def look(event):
        if isinstance(event, StepFinished) and not seen:
            path = read_record(trainer.run_dir)["socket"]
            seen["path"] = path
            seen["mode"] = stat.S_IMODE(os.stat(path).st_mode)
            seen["dir_mode"] = stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode)
            with RunClient(path) as client:
                seen["state"] = client.call("status")[0]["state"]

    trainer.sink = look
    trainer.run()
    assert len(os.fsencode(trainer.run_dir.resolve() / "control.sock")) > MAX_SOCKET_PATH
    assert len(os.fsencode(seen["path"])) <= MAX_SOCKET_PATH
    assert (seen["mode"], seen["dir_mode"], seen["state"]) == (0o600, 0o700, "running")
    assert not os.path.exists(os.path.dirname(seen["path"]))  # removed with the run


def test_a_finished_run_is_not_reachable(tiny_corpus, tmp_path):
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1), runs_dir=tmp_path, run_id="done")
    trainer.run()
    with pytest.raises(RunUnavailable, match="finished, not a live run"):
        RunClient.connect(trainer.run_dir)


def test_sample_answers_reach_the_asker_only(live_run):
    trainer, events = live_run
    with RunClient.connect(trainer.run_dir) as asker, RunClient.connect(trainer.run_dir) as other:
        reply, event = asker.call("sample", {"length": 5}, answer=True)
        assert event["request"] == reply["pending"]
        # the endpoint hands out an answer, to whichever clients get it, in the round that
        # delivers it to the asker; had `other` been sent one, it would come before the reply
        # to a request `other` makes only now
        rid = other.send("status")
        first = other.read(10)
        assert first["id"] == rid and "event" not in first
    wait_until(lambda: any(isinstance(e, Sampled) and e.request == reply["pending"] for e in events), 10,
               "the Sampled event in the sink")
    steps_go_on(trainer)  # and the run goes on after both left


def test_inspect_answers_the_asker_and_stays_out_of_the_log(live_run):
    trainer, events = live_run
    text = "the cat sat on the mat. " * 4
    with RunClient.connect(trainer.run_dir) as client:
        reply, event = client.call("inspect", {"text": text, "units": [[0, 5]]}, answer=True)
        result = event["result"]
        assert reply["ok"] and event["event"] == "Inspected" and result["text"] == text
        assert len(result["ranked"]) == 24 and "0:5" in result["activations"]
        assert len(result["gradient"]) == len(text) and result["gradient"][-1] is None
        with pytest.raises(RunUnavailable, match=r"\[layer, unit\] pairs"):
            client.call("inspect", {"text": "x", "units": [[0]]})
    # the trainer answers the asker, then hands the event to its sink: wait for the sink to see it
    wait_until(lambda: any(isinstance(e, Inspected) for e in events), 10, "the Inspected event")
    steps_go_on(trainer)
    assert "Inspected" not in (trainer.run_dir / "events.jsonl").read_text()
