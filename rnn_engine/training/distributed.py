"""Data-parallel training under torchrun: the process group, each rank's share, and rank 0's say.

torchrun (or `workbench train --nproc N`, which runs torch.distributed's own launcher) starts one
process per rank with RANK, WORLD_SIZE, LOCAL_RANK and a rendezvous in the environment. Every rank
builds the same model from the same seed, trains on its share of each batch under
DistributedDataParallel, and follows the decisions rank 0 broadcasts at every batch boundary:
rank 0 alone writes the log and checkpoints and serves the control endpoint.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..errors import DistributedError

TIMEOUT = 60.0  # seconds a rank waits in a collective before it gives up, with a message


def launched() -> bool:
    """True in a worker that torchrun started for a job of more than one rank."""
    return "RANK" in os.environ and int(os.environ.get("WORLD_SIZE", "1")) > 1


def restarted() -> bool:
    """True when torchrun's elastic agent has restarted this job after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


@dataclass
class Dist:
    """This rank's place in the job, and the few collectives the trainer needs."""

    rank: int
    world: int
    local_rank: int
    local_world: int
    backend: str

    @property
    def main(self) -> bool:
        return self.rank == 0

    @classmethod
    def start(cls, device: str) -> Dist:
        """Join the job's process group: gloo on the CPU, nccl on CUDA with one GPU per local rank."""
        world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        backend = "nccl" if cuda else "gloo"
        if cuda:
            torch.cuda.set_device(local)
        timeout = datetime.timedelta(seconds=float(os.environ.get("RNN_WORKBENCH_DIST_TIMEOUT", TIMEOUT)))
        attempt = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
        if attempt == 0:
            dist.init_process_group(backend, timeout=timeout)
        else:
            # torchrun's store outlives a restart with the failed attempt's addresses in it, so the
            # new ranks would dial processes that are gone (pytorch/pytorch#167288): a fresh prefix
            agent = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                                  is_master=not agent and rank == 0, timeout=timeout, multi_tenant=not agent)
            fresh = dist.PrefixStore(f"rnn-workbench/attempt-{attempt}", store)
            dist.init_process_group(backend, store=fresh, rank=rank, world_size=world, timeout=timeout)
        return cls(rank, world, local, local_world, backend)

    def device_name(self) -> str:
        """The device this rank trains on: its own GPU under nccl, else the CPU."""
        return f"cuda:{self.local_rank}" if self.backend == "nccl" else "cpu"

    def share(self, n: int) -> slice:
        """This rank's contiguous part of n items (the parts differ in size by at most one)."""
        start = self.rank * n // self.world
        return slice(start, (self.rank + 1) * n // self.world)

    # -- collectives, each turning a lost rank into one clear error ----------------------------------
    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        box = [obj]
        self._run(dist.broadcast_object_list, box, src=0)
        return box[0]

    def gather(self, values: Tensor) -> Tensor:
        """Every rank's 1-d `values`, stacked in rank order (world x k)."""
        out = [torch.empty_like(values) for _ in range(self.world)]
        self._run(dist.all_gather, out, values)
        return torch.stack(out)

    def gather_objects(self, obj: Any) -> list[Any]:
        out: list[Any] = [None] * self.world
        self._run(dist.all_gather_object, out, obj)
        return out

    def sum(self, values: Tensor) -> Tensor:
        """Element-wise sum over the ranks, in place."""
        self._run(dist.all_reduce, values)
        return values

    def _run(self, op: Any, *args: Any, **kw: Any) -> None:
        try:
            op(*args, **kw)
        except (RuntimeError, dist.DistError) as exc:
            raise self.lost(exc) from None

    def wrap(self, model: nn.Module, device: torch.device, seed: int) -> nn.Module:
        """DDP around `model` (it averages the gradients), with this rank's own dropout masks."""
        from torch.nn.parallel import DistributedDataParallel

        torch.manual_seed(seed + 7919 * self.rank)
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    def lost_contact(self, exc: BaseException) -> DistributedError | None:
        """The job's error for an exception a collective raised (a rank gone), or None for any other."""
        if not collective_failure(exc):
            return None
        return exc if isinstance(exc, DistributedError) else self.lost(exc)

    def lost(self, exc: BaseException) -> DistributedError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        # gloo starts its messages with the source file and line: not for users
        first = re.sub(r"^\[[^\]]*\]\s*", "", first)[:160]
        return DistributedError(f"rank {self.rank} of {self.world}: lost contact with the other ranks "
                                f"({first})")

    def close(self, wait: bool = True) -> None:
        """Leave the job; with `wait`, only once every rank has finished (rank 0 ends last, saving).

        A rank that tears its gloo connections down while another still uses them can abort
        ("terminate called without an active exception"), so a finished job meets at a barrier
        first. After a failure there is nobody to wait for.
        """
        if not dist.is_initialized():
            return
        if wait:
            try:
                dist.barrier()
            except (RuntimeError, dist.DistError):
                pass  # another rank is already gone: leave all the same
        dist.destroy_process_group()


class Alone:
    """A run of one process, through the same interface as a rank of a torchrun job (`Dist`).

    The trainer speaks to both alike: broadcast returns its input, gather a one-row stack, each
    share is everything, and nothing is ever lost; so its loop reads the same with one process or
    many.
    """

    rank, world, local_rank, local_world, backend = 0, 1, 0, 1, ""
    main = True

    def __init__(self, device: str) -> None:
        self.device = device

    def device_name(self) -> str:
        return self.device

    def share(self, n: int) -> slice:
        return slice(0, n)

    def broadcast(self, obj: Any) -> Any:
        return obj

    def gather(self, values: Tensor) -> Tensor:
        return values[None]

    def gather_objects(self, obj: Any) -> list[Any]:
        return [obj]

    def sum(self, values: Tensor) -> Tensor:
        return values

    def wrap(self, model: nn.Module, device: torch.device, seed: int) -> nn.Module:
        return model

    def lost_contact(self, exc: BaseException) -> DistributedError | None:
        return None

    def close(self, wait: bool = True) -> None:
        pass


def collective_failure(exc: BaseException) -> bool:
    """Whether an error raised inside a step (DDP's gradient all-reduce) came from the process group."""
    if isinstance(exc, (DistributedError, dist.DistError)):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        mark in text for mark in ("gloo", "Gloo", "NCCL", "Connection closed", "Connection reset",
                                  "ProcessGroup", "Socket Timeout", "timed out"))


def elastic_marker(runs_dir: str | os.PathLike) -> Path | None:
    """Where rank 0 notes its run id, so that torchrun's restarts of this job find the same run."""
    job = os.environ.get("TORCHELASTIC_RUN_ID", "")
    if not job or "/" in job or job.startswith("."):
        return None
    return Path(runs_dir) / ".torchrun" / job


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
