"""Steering a live run: the line protocol, the run's endpoint, a client, and the queue the trainer reads.

One JSON object per line each way, checked before anything acts on it (`protocol`). The endpoint
(`endpoint`) gives every request a reply or a disconnect of that one client and can be stopped by
no request; only the run's owner can connect. Requests only queue work on `Controls`, which the
trainer reads between batches, so no client can make a run wait. No torch.
"""

from __future__ import annotations

from .client import RunClient, RunUnavailable
from .controls import Controls
from .endpoint import ControlEndpoint
from .protocol import COMMANDS, ProtocolError, Request, parse_request

__all__ = ["COMMANDS", "ControlEndpoint", "Controls", "ProtocolError", "Request", "RunClient",
           "RunUnavailable", "parse_request"]
