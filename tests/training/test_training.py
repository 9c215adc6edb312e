"""Engine behaviour: learning, events in order, controls, NaN protection, checkpoints."""

from __future__ import annotations

import json
import os
import pickle
import threading
import time
import warnings

import pytest
import torch

from rnn_engine import CheckpointError, Controls, RunConfig, Trainer
from rnn_engine.config import ConfigError, default_config
from rnn_engine.events import (
    CheckpointSaved,
    EpochFinished,
    GradientsMeasured,
    HyperparametersApplied,
    RunFinished,
    RunPaused,
    RunResumed,
    RunStarted,
    StepFinished,
)
from rnn_engine.model import checkpoint as ckpt_io
from rnn_engine.model.sampling import classify, generate, generate_lines

from ..conftest import workbench


def tiny_lm(corpus, **kw):
    base = dict(task="charlm", data=str(corpus), hidden_size=48, seq_len=24, batch_size=8,
                lr=1e-2, time_budget=0.0, epochs=3, sample_length=40, seed=7, device="cpu", precision="fp32")
    base.update(kw)
    return RunConfig(**base)


def test_char_lm_overfits_tiny_text(tiny_corpus, tmp_path):
    events = []
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=12), sink=events.append, runs_dir=tmp_path)
    summary = trainer.run()
    first = next(e for e in events if isinstance(e, StepFinished)).loss
    assert first > 2.5  # about ln(vocab) at the start
    assert summary["train_loss"] < 0.6
    assert summary["val_loss"] < 0.8
    g = torch.Generator().manual_seed(0)
    text = generate(trainer.model, trainer.vocab, 60, "the ", 0.5, 0, g)
    assert text.startswith("the ") and " sat on the " in text


def test_events_arrive_in_order_and_are_logged(tiny_corpus, tmp_path):
    events = []
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=2), sink=events.append, runs_dir=tmp_path,
                      diag_every=5)
    trainer.run()
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunFinished
    steps = [e.step for e in events if isinstance(e, StepFinished)]
    assert steps == list(range(1, len(steps) + 1))
    epoch_idx = [i for i, k in enumerate(kinds) if k is EpochFinished]
    assert len(epoch_idx) == 2
    assert kinds[epoch_idx[0] + 1] is CheckpointSaved
    epoch = events[epoch_idx[0]]
    assert epoch.sample and epoch.val_loss > 0
    grads = [e for e in events if isinstance(e, GradientsMeasured)]
    assert grads and len(grads[0].per_timestep) == 24
    assert set(grads[0].per_layer) == {"layer 0", "head"}
    # vanishing: the last step's loss depends far more on the last states than on the first
    assert grads[0].per_timestep[-1] > grads[0].per_timestep[0]
    records = [json.loads(line) for line in (trainer.run_dir / "events.jsonl").read_text().splitlines()]
    # the log holds every event in order, with steps less than 0.25 s apart rolled into one record
    assert [r["event"] for r in records if r["event"] != "StepFinished"] == \
        [type(e).__name__ for e in events if not isinstance(e, StepFinished)]
    logged = [r for r in records if r["event"] == "StepFinished"]
    assert sum(r["span"] for r in logged) == len(steps) and logged[-1]["step"] == steps[-1]
    assert len(logged) < len(steps)  # this tiny model takes far less than 0.25 s a step
    assert json.loads((trainer.run_dir / "config.json").read_text())["hidden_size"] == 48


def test_classifier_separates_two_synthetic_languages(names_dir, tmp_path):
    cfg = default_config("names", data=str(names_dir), hidden_size=32, epochs=25, batch_size=8,
                         lr=1e-2, device="cpu", dropout=0.0, precision="fp32")
    trainer = Trainer(cfg, runs_dir=tmp_path)
    summary = trainer.run()
    assert summary["test_accuracy"] == 1.0
    results = classify(trainer.model, trainer.vocab, trainer.labels, ["Dmitrov", "Macdonaldson"], 2)
    assert [r[0][0] for r in results] == ["Ruslandic", "Scotlandic"]
    assert all(abs(sum(p for _, p in r) - 1.0) < 1e-6 for r in results)


def test_pause_single_step_live_update_and_stop(tiny_corpus, tmp_path):
    controls = Controls()
    events = []
    steps_seen = threading.Event()

    def sink(e):
        events.append(e)
        if isinstance(e, StepFinished) and e.step == 3:
            controls.pause()
            steps_seen.set()

    trainer = Trainer(tiny_lm(tiny_corpus, epochs=50), sink=sink, runs_dir=tmp_path, controls=controls)
    worker = threading.Thread(target=trainer.run, daemon=True)
    worker.start()
    assert steps_seen.wait(30)
    paused = next(e for e in _wait_for(events, RunPaused))
    assert paused.step == 3
    controls.step_once()
    _wait_until(lambda: any(isinstance(e, StepFinished) and e.step == 4 for e in events))
    controls.apply(lr=1e-4, clip=1.0)
    controls.resume()
    _wait_until(lambda: any(isinstance(e, HyperparametersApplied) for e in events))
    controls.stop()
    worker.join(30)
    assert not worker.is_alive()
    applied = next(e for e in events if isinstance(e, HyperparametersApplied))
    assert applied.changes == {"lr": 1e-4, "clip": 1.0}
    assert any(isinstance(e, RunResumed) for e in events)
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "stopped"
    assert (trainer.run_dir / "last.pt").exists()
    with pytest.raises(ValueError, match="cannot change mid-run"):
        controls.apply(hidden_size=10)


class FakeClock:
    """Run time that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_single_steps_keep_one_pause_and_do_not_spend_the_time_budget(tiny_corpus, tmp_path):
    controls = Controls()
    events = []
    clock = FakeClock()

    def sink(e):
        events.append(e)
        if isinstance(e, StepFinished) and e.step <= 2:
            clock.now += 5.0  # a training step that takes 5 s of run time
            if e.step == 2:
                controls.pause()

    trainer = Trainer(tiny_lm(tiny_corpus, epochs=50), sink=sink, runs_dir=tmp_path, controls=controls)
    trainer.clock = clock
    worker = threading.Thread(target=trainer.run, daemon=True)
    worker.start()
    waiting = lambda: trainer._pause_clock is not None  # noqa: E731 - the trainer is idle in its pause
    _wait_until(lambda: any(isinstance(e, RunPaused) for e in events) and waiting())
    for step in (3, 4, 5):
        clock.now += 100.0  # paused time between single steps
        controls.step_once()
        _wait_until(lambda step=step: any(isinstance(e, StepFinished) and e.step == step for e in events)
                    and waiting())
    clock.now += 100.0
    elapsed = trainer.elapsed()
    controls.stop()
    worker.join(30)
    # the two timed steps count; 400 s spent paused, single steps included, do not
    assert elapsed == pytest.approx(10.0)
    assert sum(isinstance(e, RunPaused) for e in events) == 1
    assert not any(isinstance(e, RunResumed) for e in events)


def test_a_run_ends_when_its_time_budget_is_spent_and_a_resumed_run_counts_the_whole_run(tiny_corpus,
                                                                                         tmp_path):
    def timed(trainer: Trainer, per_step: float) -> Trainer:
        clock = FakeClock()
        trainer.clock = clock
        trainer.sink = lambda e: isinstance(e, StepFinished) and setattr(clock, "now", clock.now + per_step)
        return trainer

    first = timed(Trainer(tiny_lm(tiny_corpus, epochs=0, time_budget=10.0), runs_dir=tmp_path, run_id="a"),
                  3.0)
    summary = first.run()
    # 3 s a step: after step 4 the 10 s are spent (12 s), and the run ends there, completed
    assert (summary["reason"], summary["steps"], summary["elapsed"]) == ("completed", 4, 12.0)
    resumed = timed(Trainer(tiny_lm(tiny_corpus, epochs=0, time_budget=20.0), runs_dir=tmp_path, run_id="b",
                            resume=first.run_dir / "last.pt"), 3.0)
    again = resumed.run()
    # the budget counts the whole run: 12 s were spent already, so 3 more steps reach 21 s
    assert (again["steps"], again["elapsed"]) == (7, 21.0)
    spent = timed(Trainer(tiny_lm(tiny_corpus, epochs=0, time_budget=10.0), runs_dir=tmp_path, run_id="c",
                          resume=resumed.run_dir / "last.pt"), 3.0)
    assert spent.run()["steps"] == 7  # a budget already spent trains nothing more


def test_invalid_live_change_is_rejected_without_pausing(tiny_corpus, tmp_path):
    from rnn_engine.events import HyperparametersRejected

    controls = Controls()
    controls.apply(lr=-1.0, clip=2.0)  # queued before the first batch
    events = []
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1), sink=events.append, runs_dir=tmp_path,
                      controls=controls)
    trainer.run()
    rejected = [e for e in events if isinstance(e, HyperparametersRejected)]
    assert len(rejected) == 1 and set(rejected[0].errors) == {"lr"}
    assert next(e for e in events if isinstance(e, HyperparametersApplied)).changes == {"clip": 2.0}
    assert not any(isinstance(e, RunPaused) for e in events)
    assert trainer.config.lr == 1e-2


def _wait_for(events, kind):
    _wait_until(lambda: any(isinstance(e, kind) for e in events))
    return (e for e in events if isinstance(e, kind))


def _wait_until(cond, timeout=30.0):
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if cond():
            return
        done.wait(0.01)
    raise AssertionError("condition not reached")


def _poisoned_run(tiny_corpus, tmp_path) -> tuple[Trainer, Controls, list, threading.Thread]:
    """A run whose weights turn NaN inside epoch 2 (after a checkpoint), running until it pauses."""
    controls = Controls()
    events = []
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=3), sink=events.append, runs_dir=tmp_path,
                      controls=controls)
    original_step = trainer.train_step
    calls = {"n": 0}

    def poisoned(batch):
        calls["n"] += 1
        if calls["n"] == trainer.batches_per_epoch() + 3:
            with torch.no_grad():
                trainer.model.head.bias.fill_(float("nan"))
        return original_step(batch)

    trainer.train_step = poisoned
    worker = threading.Thread(target=trainer.run, daemon=True)
    worker.start()
    _wait_until(lambda: any(isinstance(e, RunPaused) for e in events))
    return trainer, controls, events, worker


def test_nan_loss_pauses_and_keeps_last_checkpoint(tiny_corpus, tmp_path):
    trainer, controls, events, worker = _poisoned_run(tiny_corpus, tmp_path)
    pause = next(e for e in events if isinstance(e, RunPaused))
    assert "non-finite loss" in pause.reason and f"step {pause.step + 1}" in pause.reason
    saved = ckpt_io.load(trainer.run_dir / "last.pt")
    assert all(torch.isfinite(v).all() for v in saved.model_state.values())
    assert saved.epoch == 1
    controls.apply(lr=1e-3)
    controls.resume()  # weights come back from the last good checkpoint
    worker.join(60)
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.reason == "completed"
    assert torch.isfinite(torch.tensor(finished.summary["val_loss"]))


def test_checkpoint_round_trip_gives_same_samples(tiny_corpus, tmp_path):
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1), runs_dir=tmp_path)
    trainer.run()
    loaded = ckpt_io.load(trainer.run_dir)
    model = loaded.build_model()
    a = generate(trainer.model, trainer.vocab, 80, "the", 1.0, 0, torch.Generator().manual_seed(5))
    b = generate(model, loaded.vocab, 80, "the", 1.0, 0, torch.Generator().manual_seed(5))
    assert a == b
    assert loaded.step == trainer.step and loaded.config.hidden_size == 48
    assert not list(trainer.run_dir.glob(".*.tmp"))


def test_a_run_resumed_mid_epoch_trains_what_an_uninterrupted_run_does(tiny_corpus, tmp_path):
    config = tiny_lm(tiny_corpus, epochs=2, lr_schedule="constant", sample_length=0, eval_interval=0)
    whole, rest = [], []
    Trainer(config, runs_dir=tmp_path, run_id="whole", sink=whole.append).run()
    half = Trainer(config.updated(max_steps=5), runs_dir=tmp_path, run_id="half")
    assert half.run()["steps"] == 5 and half.batches_per_epoch() > 5  # stopped inside epoch 1
    resumed = Trainer(config, runs_dir=tmp_path, run_id="rest", resume=half.run_dir / "last.pt",
                      sink=rest.append)
    assert (resumed.epoch, resumed.window) == (0, 5) and resumed._state is not None  # the carried state too
    resumed.run()
    losses = lambda events: {e.step: e.loss for e in events if isinstance(e, StepFinished)}  # noqa: E731
    a, b = losses(whole), losses(rest)
    assert min(b) == 6 and max(b) == max(a) == 2 * half.batches_per_epoch()
    for step in b:  # the same batches from the same state and weights: the same numbers
        assert b[step] == pytest.approx(a[step], rel=1e-6, abs=1e-7), step
    for (name, p), q in zip(ckpt_io.load(tmp_path / "whole").model_state.items(),
                            ckpt_io.load(tmp_path / "rest").model_state.values()):
        torch.testing.assert_close(q, p, rtol=1e-5, atol=1e-6, msg=name)


def test_best_pt_holds_the_weights_of_the_best_evaluation(tiny_corpus, tmp_path):
    controls = Controls()
    events = []

    def sink(e):
        events.append(e)
        if isinstance(e, EpochFinished) and e.epoch == 3:
            controls.apply(lr=3.0)  # epoch 4 trains far too fast, and its validation loss gets worse

    trainer = Trainer(tiny_lm(tiny_corpus, epochs=4, lr_schedule="constant"), runs_dir=tmp_path, sink=sink,
                      controls=controls)
    trainer.run()
    epochs = [e for e in events if isinstance(e, EpochFinished)]
    best = min(epochs, key=lambda e: e.val_loss)
    assert epochs[-1].val_loss > best.val_loss and best.epoch < 4
    saved = ckpt_io.load(trainer.run_dir / "best.pt")
    assert (saved.step, saved.epoch) == (best.step, best.epoch) and saved.best_val_loss == best.val_loss
    assert ckpt_io.load(trainer.run_dir / "last.pt").step == epochs[-1].step
    # and its weights are the ones that scored that loss
    again = Trainer(tiny_lm(tiny_corpus), runs_dir=tmp_path / "again", resume=trainer.run_dir / "best.pt",
                    serve=False)
    assert again.evaluate()["val_loss"] == pytest.approx(best.val_loss, rel=1e-6)


def test_resume_continues_from_checkpoint(tiny_corpus, tmp_path):
    first = Trainer(tiny_lm(tiny_corpus, epochs=1), runs_dir=tmp_path)
    first.run()
    resumed = Trainer(tiny_lm(tiny_corpus, epochs=2), runs_dir=tmp_path, resume=first.run_dir / "last.pt")
    assert resumed.step == first.step and resumed.epoch == 1
    summary = resumed.run()
    assert summary["steps"] == 2 * first.step


def test_adam_is_fused_and_resume_takes_an_unfused_checkpoints_moments(tiny_corpus, tmp_path):
    first = Trainer(tiny_lm(tiny_corpus, epochs=1), runs_dir=tmp_path)
    first.run()
    fused_on_cpu = torch.__version__ >= "2.4"  # the torch release that added the CPU kernel
    assert bool(first.optimizer.param_groups[0]["fused"]) == fused_on_cpu
    # a checkpoint written by the per-tensor Adam (older versions of the workbench, older torch)
    path = first.run_dir / "last.pt"
    payload = torch.load(path, weights_only=True)
    for group in payload["optimizer"]["param_groups"]:
        group["fused"] = None
    torch.save(payload, path)
    resumed = Trainer(tiny_lm(tiny_corpus, epochs=2), runs_dir=tmp_path / "again", resume=path)
    assert bool(resumed.optimizer.param_groups[0]["fused"]) == fused_on_cpu
    saved = payload["optimizer"]["state"][0]["exp_avg_sq"]
    torch.testing.assert_close(next(iter(resumed.optimizer.state.values()))["exp_avg_sq"], saved)
    assert resumed.run()["steps"] == 2 * first.step


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned-by-checkpoint",))


def test_malicious_pickle_is_refused_without_running(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pt"
    torch.save({"format": ckpt_io.FORMAT, "model": _Exploit()}, bad)
    with pytest.raises(CheckpointError, match="refused"):
        ckpt_io.load(bad)
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(_Exploit()))  # pickle protocol 4 or 5, not torch.save's 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the refusal is the whole message: no warning from torch beside it
        with pytest.raises(CheckpointError, match="refused"):
            ckpt_io.load(plain)
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_truncated_checkpoint_is_a_clear_error(tiny_corpus, tmp_path):
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1), runs_dir=tmp_path)
    trainer.run()
    data = (trainer.run_dir / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        ckpt_io.load(cut)


def test_invalid_config_names_fields(tiny_corpus, tmp_path):
    with pytest.raises(ConfigError) as err:
        Trainer(tiny_lm(tiny_corpus, lr=-1.0, hidden_size=0, cell="tcn"), runs_dir=tmp_path)
    assert set(err.value.errors) == {"lr", "hidden_size", "cell"}
    with pytest.raises(ConfigError) as err:
        RunConfig.from_strings({"lr": "fast", "dropout": "nan", "batch_size": "1e9"})
    assert set(err.value.errors) == {"lr", "dropout", "batch_size"}


def test_out_of_memory_skips_the_batch_and_pauses(tiny_corpus, tmp_path):
    from rnn_engine.training.trainer import OUT_OF_MEMORY

    controls = Controls()
    events = []
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1), sink=events.append, runs_dir=tmp_path,
                      controls=controls)
    original = trainer.model.forward
    calls = {"n": 0}

    def forward(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OUT_OF_MEMORY("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(*args, **kw)

    trainer.model.forward = forward
    worker = threading.Thread(target=trainer.run, daemon=True)
    worker.start()
    _wait_until(lambda: any(isinstance(e, RunPaused) for e in events))
    pause = next(e for e in events if isinstance(e, RunPaused))
    assert f"out of memory on cpu at step {pause.step + 1}" in pause.reason
    assert "batch skipped" in pause.reason
    controls.resume()
    worker.join(60)
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "completed"
    assert events[-1].summary["steps"] == trainer.batches_per_epoch() - 1


def test_periodic_evaluation_sample_and_checkpoint_on_a_time_cadence(tiny_corpus, tmp_path):
    from rnn_engine.events import Evaluated, Sampled

    events = []
    # one epoch is ~13 short batches; a 1 ms cadence evaluates after nearly every one
    trainer = Trainer(tiny_lm(tiny_corpus, epochs=1, eval_interval=0.001), sink=events.append,
                      runs_dir=tmp_path)
    trainer.run()
    periodic = [e for e in events if isinstance(e, Evaluated)]
    samples = [e for e in events if isinstance(e, Sampled) and e.reason == "periodic"]
    saves = [e for e in events if isinstance(e, CheckpointSaved) and e.reason == "periodic"]
    assert len(periodic) >= 2 and len(samples) == len(periodic) == len(saves)
    assert all(len(s.text) == 40 for s in samples)
    assert [e.step for e in periodic] == sorted({e.step for e in periodic})


def test_routine_evaluation_reads_a_fixed_subset_and_full_is_asked_for(tmp_path):
    from rnn_engine.events import Evaluated, EvaluationProgress

    corpus = tmp_path / "long.txt"
    corpus.write_text("".join(f"line {i}: the quick brown fox.\n" for i in range(6000)))
    events = []
    controls = Controls()
    trainer = Trainer(tiny_lm(corpus, epochs=1, val_chars=2000, eval_interval=0), sink=events.append,
                      runs_dir=tmp_path, controls=controls)
    routine = trainer.evaluate()
    assert routine["items"] == 2000 and not routine["full"]
    assert trainer.evaluate()["val_loss"] == routine["val_loss"]  # the same windows each time
    ticks = iter(range(0, 10_000))
    real_monotonic = time.monotonic
    try:
        time.monotonic = lambda: float(next(ticks))  # every batch looks a second long: progress shows
        controls.request_evaluate(full=True)
        assert trainer._between_batches() == "go"
    finally:
        time.monotonic = real_monotonic
    full = next(e for e in events if isinstance(e, Evaluated))
    assert full.full and full.items >= len(trainer.task.data.val) - trainer.config.batch_size
    # the full evaluation reported how far it had got (a slow routine one may have too)
    progress = [e for e in events if isinstance(e, EvaluationProgress) and e.full]
    assert progress and all(0 < p.done < p.total == full.items for p in progress)


def test_stop_during_a_nan_pause_saves_the_good_weights(tiny_corpus, tmp_path):
    trainer, controls, events, worker = _poisoned_run(tiny_corpus, tmp_path)
    controls.stop()
    worker.join(60)
    saved = ckpt_io.load(trainer.run_dir / "last.pt")
    assert all(torch.isfinite(v).all() for v in saved.model_state.values())
    assert isinstance(events[-1], RunFinished) and events[-1].reason == "stopped"


def test_balance_weights_each_language_by_its_inverse_frequency(names_dir, tmp_path):
    (names_dir / "Rare.txt").write_text("Zyx\nQwop\n", encoding="utf-8")
    cfg = default_config("names", data=str(names_dir), hidden_size=16, epochs=1, batch_size=8, device="cpu",
                         balance=True, precision="fp32")
    events = []
    trainer = Trainer(cfg, runs_dir=tmp_path, sink=events.append)
    counts = trainer.task.data.class_counts()
    weights = trainer.task.class_weights
    rare = trainer.labels.index("Rare")
    # weight x count is the same for every language: each one adds up to the same share of the loss
    shares = [float(weights[i]) * counts[i] for i in range(len(trainer.labels))]
    assert max(shares) == pytest.approx(min(shares))
    assert weights[rare] > weights[trainer.labels.index("Ruslandic")]
    plain = Trainer(cfg.updated(balance=False), runs_dir=tmp_path, run_id="plain")
    batch = next(trainer.task.epoch_batches(cfg, 0, 0))
    with torch.no_grad():
        losses = [t.task.forward(t.model, batch, None, cfg, t.device, t.dtype, t._autocast).loss.item()
                  for t in (trainer, plain)]
    assert losses[0] != pytest.approx(losses[1])  # the same weights and batch: the weights are in the loss
    summary = trainer.run()
    epoch = next(e for e in events if isinstance(e, EpochFinished))
    # the summary's figures are the test split's confusion matrix read two ways
    confusion = torch.tensor(epoch.confusion)
    per_language = [confusion[i, i] / confusion[i].sum() for i in range(len(confusion)) if confusion[i].sum()]
    assert summary["test_accuracy"] == pytest.approx(float(confusion.trace() / confusion.sum()))
    assert summary["balanced_accuracy"] == pytest.approx(float(sum(per_language) / len(per_language)))
    # the classifier's "sample": held-out names with the model's top guess, one per language
    rows = epoch.sample.splitlines()
    assert len(rows) == 3 and all("→" in row and ("✓" in row or "✗" in row) for row in rows)


def test_lines_are_sampled_whole_and_new_ones_marked(tmp_path):
    corpus = tmp_path / "words.txt"
    corpus.write_text("\n".join(["anna", "bob", "cecil", "dora", "emil"] * 40) + "\n", encoding="utf-8")
    trainer = Trainer(tiny_lm(corpus, epochs=2, seq_len=12, batch_size=4), runs_dir=tmp_path, run_id="w")
    trainer.run()
    g = torch.Generator().manual_seed(0)
    assert len(generate_lines(trainer.model, trainer.vocab, 7, generator=g)) == 7
    r = workbench("sample", str(trainer.run_dir), "--lines", "6", "--seed", "1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 6 and all(line[:2] in ("+ ", "  ") for line in lines)
    seen = {"anna", "bob", "cecil", "dora", "emil"}
    assert all((line[2:].strip() not in seen) == line.startswith("+") for line in lines)
    assert "lines are not in the training text" in r.stderr
