"""What each task brings to the shared training loop: data, batches, loss, evaluation, epoch sample."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import RunConfig
from ..data.names import NamesData, bucket_names, bucketed_batches, pad_batch
from ..data.text import CharCorpus, StreamBatches
from ..model import checkpoint as ckpt_io
from ..model.networks import detach_state, state_to
from ..model.sampling import classify, generate
from .distributed import Alone, Dist


class EvaluationCancelled(Exception):
    """A requested full evaluation was cut short by a stop."""


@dataclass
class Forward:
    """One rank's forward pass over one batch, as the loop needs it."""

    loss: Tensor  # mean loss over this rank's items
    scaled: Tensor  # what backward() is called on
    items: int  # characters or names this rank trained on
    state: Any  # carried into the next batch (the language model's hidden state), else None
    probe: tuple[Tensor, Tensor, Tensor | None, Any]  # (x, y, lengths, start state) for ‖∂L/∂h_t‖


@dataclass
class EvalContext:
    """What an evaluation reads from the run: where the model is, and how to report or cancel."""

    device: torch.device
    dtype: torch.dtype
    dist: Dist | Alone  # the job, or one process on its own
    cancelled: Callable[[], bool]
    progress: Callable[[int, int], None]  # (items done, items in all)


Cast = Callable[[], AbstractContextManager[Any]]


class TextTask:
    """The character language model: a corpus read as parallel streams, truncated BPTT, val loss."""

    items_name = "chars"
    writes_text, classifies = True, False  # what a run of it is asked: samples, not names

    @staticmethod
    def carries_state(config: RunConfig) -> bool:
        """Whether the hidden state goes from one window to the next (stateful truncated BPTT)."""
        return config.carry_state

    def __init__(self, config: RunConfig, data: CharCorpus | None, resumed: ckpt_io.Checkpoint | None,
                 dist: Dist | Alone) -> None:
        corpus = data if data is not None else CharCorpus.from_file(config.data)
        if resumed is not None and resumed.vocab != corpus.vocab:
            _check_vocabulary(corpus, resumed)
            # encode this text with the checkpoint's vocabulary so ids keep their meaning (unknown where
            # it has no such character)
            remap = torch.tensor([resumed.vocab.stoi.get(c, 0) for c in corpus.vocab.itos])
            corpus = CharCorpus(resumed.vocab, remap[corpus.train.long()], remap[corpus.val.long()],
                                corpus.source)
        corpus.check_fits(config.batch_size, config.seq_len)
        self.data = corpus
        self.labels: list[str] = []  # a language model has no classes
        self.stream = StreamBatches(corpus.train, config.batch_size, config.seq_len)
        if dist.world > 1:
            # rank r reads streams r*B/N ... (r+1)*B/N-1 of exactly the streams one process would
            self.stream = self.stream.rows(dist.share(config.batch_size))

    def sizes(self) -> tuple[int, int]:
        """(training, validation) characters."""
        return len(self.data.train), len(self.data.val)

    def batches_per_epoch(self, config: RunConfig) -> int:
        return len(self.stream)

    def epoch_batches(self, config: RunConfig, epoch: int, start: int) -> Iterator[Any]:
        for i in range(start, len(self.stream)):
            yield self.stream.window(i)

    def forward(self, net: nn.Module, batch: Any, carried: Any, config: RunConfig, device: torch.device,
                dtype: torch.dtype, cast: Cast) -> Forward:
        x, y = batch
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        # the classic tutorials start every batch from zeros (carry_state no)
        start = None if carried is None or not config.carry_state else detach_state(carried)
        with cast():
            logits, state = net(x, start)
        state = state_to(state, dtype)  # torch.nn under bf16 autocast hands back bf16: carry fp32
        loss = F.cross_entropy(logits.to(dtype).reshape(-1, logits.shape[-1]), y.reshape(-1))
        return Forward(loss, loss, x.numel(), state, (x, y, None, start))

    def evaluate(self, model: nn.Module, config: RunConfig, full: bool, ctx: EvalContext) -> dict[str, Any]:
        """Loss on the routine subset of the validation split (`val_chars`), or on all of it."""
        val = self.data.val
        batch = max(1, min(config.batch_size, (len(val) - 1) // config.seq_len))
        streams = StreamBatches.spread(val, batch, config.seq_len, 0 if full else config.val_chars)
        whole = streams.tokens >= len(val) - batch
        if ctx.dist.world > 1:
            streams = streams.rows(ctx.dist.share(batch))  # each rank its streams; sums all-reduced
        total, count, state = 0.0, 0, None
        for x, y in (streams if streams.batch_size else ()):
            # under torchrun every rank must reach the all-reduce below: no cancelling there
            if full and ctx.dist.world == 1 and ctx.cancelled():
                raise EvaluationCancelled
            x, y = x.to(ctx.device), y.to(ctx.device)
            logits, state = model(x, state)
            total += float(F.cross_entropy(logits.to(ctx.dtype).reshape(-1, logits.shape[-1]), y.reshape(-1),
                                           reduction="sum"))
            count += y.numel()
            ctx.progress(count, streams.tokens)
        if ctx.dist.world > 1:
            total, count = ctx.dist.sum(torch.tensor([total, count], dtype=torch.float64)).tolist()
            count = int(count)
        return {"val_loss": total / max(count, 1), "items": count, "full": full or whole}

    def sample(self, model: nn.Module, config: RunConfig, seed: int) -> str:
        """Generated text for the samples pane ('' when samples are off)."""
        if config.sample_length <= 0:
            return ""
        g = torch.Generator().manual_seed(seed)
        return generate(model, self.data.vocab, config.sample_length, "", config.temperature, config.top_k, g)

    def summary(self, result: dict[str, Any], best: float, rate: float) -> dict[str, Any]:
        return {"val_loss": result["val_loss"], "best_val_loss": best, "val_chars": result["items"],
                "chars_per_s": round(rate, 1)}


class NamesTask:
    """The surname classifier: length-bucketed batches of names, a loss per name, test accuracy."""

    items_name = "names"
    writes_text, classifies = False, True  # what a run of it is asked: names, not samples

    @staticmethod
    def carries_state(config: RunConfig) -> bool:
        return False  # each name starts from a zero state

    def __init__(self, config: RunConfig, data: NamesData | None, resumed: ckpt_io.Checkpoint | None,
                 dist: Dist | Alone) -> None:
        names = data if data is not None else NamesData.from_dir(config.data, seed=config.seed,
                                                                   dedupe=config.dedupe)
        if resumed is not None:
            if resumed.labels != names.labels:
                raise ckpt_io.CheckpointError(
                    f"checkpoint languages {resumed.labels} differ from the data's {names.labels}")
            names.vocab = resumed.vocab
        self.data = names
        self.labels: list[str] = names.labels
        self.dist = dist
        # --balance: each language weighs the same in the loss, whatever its number of names
        counts = names.class_counts()
        present = [counts.get(i, 0) for i in range(len(self.labels))]
        self.class_weights = (torch.tensor([sum(present) / (len(present) * max(n, 1)) for n in present])
                              if config.balance else None)
        self.shown = _spread(names.test, 8)

    def sizes(self) -> tuple[int, int]:
        """(training, test) names."""
        return len(self.data.train), len(self.data.test)

    def batches_per_epoch(self, config: RunConfig) -> int:
        return math.ceil(len(self.data.train) / config.batch_size)

    def epoch_batches(self, config: RunConfig, epoch: int, start: int) -> Iterator[Any]:
        rng = random.Random(config.seed * 1000 + epoch)
        for group in bucket_names(self.data.train, config.batch_size, rng)[start:]:
            yield self._batch(group)

    def _batch(self, group: list[tuple[str, int]]) -> tuple[Tensor, Tensor, Tensor, float]:
        """(x, lengths, y, loss weight): this rank's part of one batch of names.

        DDP averages gradients over ranks, so a part of n_r of the batch's n names weighs
        world * n_r / n: the average is then the gradient of the whole batch's mean loss.
        A rank whose part is empty (a last batch smaller than the world) computes a weight-0 loss
        on one name, because every rank must take part in the all-reduce.
        """
        weight = 1.0
        if self.dist.world > 1:
            part = group[self.dist.share(len(group))]
            weight = self.dist.world * len(part) / len(group)
            group = part or group[:1]
        x, lengths = pad_batch([n for n, _ in group], self.data.vocab)
        return x, lengths, torch.tensor([label for _, label in group], dtype=torch.long), weight

    def forward(self, net: nn.Module, batch: Any, carried: Any, config: RunConfig, device: torch.device,
                dtype: torch.dtype, cast: Cast) -> Forward:
        x, lengths, y, weight = batch
        x, lengths, y = x.to(device), lengths.to(device), y.to(device)
        with cast():
            logits = net(x, lengths).to(dtype)
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        loss = F.cross_entropy(logits, y, weight=weights)
        items = y.numel() if weight > 0 else 0
        return Forward(loss, loss if weight == 1.0 else loss * weight, items, None, (x, y, lengths, None))

    def evaluate(self, model: nn.Module, config: RunConfig, full: bool, ctx: EvalContext) -> dict[str, Any]:
        """Loss, accuracy, balanced accuracy and the confusion matrix on the whole test split."""
        n = len(self.labels)
        confusion = torch.zeros(n, n, dtype=torch.long)
        total_loss, count = 0.0, 0
        test = self.data.test
        if ctx.dist.world > 1:
            test = test[ctx.dist.share(len(test))]  # each rank a part; the counts are all-reduced
        for x, lengths, y in bucketed_batches(test, 512, self.data.vocab, None):
            logits = model(x.to(ctx.device), lengths.to(ctx.device)).cpu().double()
            total_loss += float(F.cross_entropy(logits, y, reduction="sum"))
            count += len(y)
            pred = logits.argmax(-1)
            confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
        if ctx.dist.world > 1:
            confusion = ctx.dist.sum(confusion)
            total_loss, count = ctx.dist.sum(torch.tensor([total_loss, count], dtype=torch.float64)).tolist()
            count = int(count)
        correct = confusion.diag().sum().item()
        per_class = confusion.sum(1)
        recalls = [confusion[i, i].item() / per_class[i].item() for i in range(n) if per_class[i] > 0]
        return {
            "val_loss": total_loss / max(count, 1),
            "val_accuracy": correct / max(count, 1),
            "balanced_accuracy": sum(recalls) / max(len(recalls), 1),
            "confusion": confusion.tolist(),
            "labels": list(self.labels),
            "items": count,
            "full": True,  # the test split is small: always all of it
        }

    def sample(self, model: nn.Module, config: RunConfig, seed: int) -> str:
        """The same few test names after every epoch with the model's top guess: a classifier's sample."""
        names = [n for n, _ in self.shown]
        rows = []
        for (name, label), top in zip(self.shown, classify(model, self.data.vocab, self.labels, names, 1)):
            guess, p = top[0]
            mark = "✓" if guess == self.labels[label] else f"✗ (is {self.labels[label]})"
            rows.append(f"{name:<16} → {guess} {p:.0%} {mark}")
        return "\n".join(rows)

    def summary(self, result: dict[str, Any], best: float, rate: float) -> dict[str, Any]:
        return {"test_loss": result["val_loss"], "test_accuracy": result["val_accuracy"],
                "balanced_accuracy": result["balanced_accuracy"], "names_per_s": round(rate, 1)}


Task = TextTask | NamesTask

# a resumed model may meet a few characters it never saw (as its unknown symbol), not a foreign text
MAX_UNKNOWN = 0.01


def _check_vocabulary(corpus: CharCorpus, resumed: ckpt_io.Checkpoint) -> None:
    """DataError when too much of `corpus` is made of characters the checkpoint's model never saw."""
    known = torch.tensor([c in resumed.vocab.stoi for c in corpus.vocab.itos])
    ids = torch.cat([corpus.train, corpus.val]).long()
    unknown = float((~known[ids]).float().mean()) if len(ids) else 0.0
    if unknown > MAX_UNKNOWN:
        new = [c for c, k in zip(corpus.vocab.itos, known.tolist()) if not k][:8]
        raise ckpt_io.CheckpointError(
            f"{corpus.source}: {unknown:.0%} of its characters are not in the vocabulary of the checkpoint "
            f"being resumed ({len(resumed.vocab)} characters; new here: {' '.join(map(repr, new))}); "
            "resume on a text like the one it was trained on, or train a new model on this one")


def make_task(config: RunConfig, data: CharCorpus | NamesData | None, resumed: ckpt_io.Checkpoint | None,
              dist: Dist | Alone) -> Task:
    """The task object for `config.task`, its data loaded (or the given data used) and checked."""
    if config.task == "charlm":
        return TextTask(config, data if isinstance(data, CharCorpus) else None, resumed, dist)
    return NamesTask(config, data if isinstance(data, NamesData) else None, resumed, dist)


def _spread(items: list[tuple[str, int]], count: int) -> list[tuple[str, int]]:
    """One item from each of the `count` largest classes, so the shown names cover many languages."""
    by_class: dict[int, list[str]] = {}
    for name, label in items:
        by_class.setdefault(label, []).append(name)
    out: list[tuple[str, int]] = []
    for label in sorted(by_class, key=lambda k: -len(by_class[k]))[:count]:
        out.append((by_class[label][len(by_class[label]) // 2], label))
    return out
