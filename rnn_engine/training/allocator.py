"""Keep freed tensor memory in the process heap, so a training loop does not page-fault it back in."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

# glibc mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to serve every allocation from the heap and keep what is freed; True if applied.

    By default glibc hands buffers over 32 MiB (and smaller ones, early on) to mmap and returns
    them to the kernel on free, so each training step faults tens of MB of fresh pages back in. On
    a 2-core VM that cost 30-50% of a step for the RNNs here and for torch.nn's alike. The price is
    that a training process keeps its peak heap until it exits.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, 256 << 20)))
