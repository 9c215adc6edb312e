"""`--nproc N`: a training command as N local ranks under torch.distributed's elastic launcher."""

from __future__ import annotations

import os
import signal


def launch_ranks(argv: list[str], nproc: int, max_restarts: int) -> int:
    """Run `workbench <argv>` as `nproc` local ranks under torch.distributed's elastic launcher.

    This is `torchrun --standalone --nproc-per-node N --max-restarts K -m workbench ...` in this
    process: the agent starts the ranks, watches them and, after a failure, restarts them all (they
    resume from the run's last checkpoint) until the restarts are used up. Each rank gets
    cores / N threads unless OMP_NUM_THREADS is set.
    """
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    from ..errors import DistributedError
    from .distributed import cores

    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores() // nproc)))
    try:
        torchrun.main(["--standalone", f"--nproc-per-node={nproc}", f"--max-restarts={max_restarts}",
                       "--module", "workbench", *argv])
    except ChildFailedError as exc:
        raise DistributedError(describe_failure(exc.failures, max_restarts)) from None
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0


def describe_failure(failures: dict[int, object], max_restarts: int) -> str:
    """One line for the ranks that failed: which, how, and whether restarts were left."""
    parts = []
    def order(item: tuple[int, object]) -> tuple[bool, bool, int]:
        # a rank killed from outside first: the others failed because of it, or were ended by the
        # launcher with SIGTERM once it saw the first failure
        code = getattr(item[1], "exitcode", 1)
        return code == -signal.SIGTERM, code >= 0, item[0]

    for rank, failure in sorted(failures.items(), key=order):
        code = getattr(failure, "exitcode", 1)
        if code == -signal.SIGTERM:
            how = "was ended by the launcher (SIGTERM)"
        elif code < 0 and hasattr(failure, "signal_name"):
            how = f"was killed by {failure.signal_name()}"
        else:
            how = f"exited with status {code}"
        parts.append(f"rank {rank} (pid {getattr(failure, 'pid', '?')}) {how}")
    tried = f" after {max_restarts} restart{'s' * (max_restarts != 1)}" if max_restarts else ""
    return "the job failed" + tried + ": " + "; ".join(parts)
