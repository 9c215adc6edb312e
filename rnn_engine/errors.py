"""The errors a user can act on, in a module without torch, so light commands can catch them."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or directory that cannot be used, with the path and the fix in the message."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded, with the file and the reason."""


class DeviceError(RuntimeError):
    """A device that is absent or failed, with what happened and where the run stays."""


class DistributedError(RuntimeError):
    """Another rank of a torchrun job is gone or a collective failed; says which rank saw what."""
