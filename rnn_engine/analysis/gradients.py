"""Gradient diagnostics: total, per-parameter and per-layer norms, and ‖∂L/∂h_t‖ over time steps."""

from __future__ import annotations

import math
import re
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..model.networks import eval_mode
from ..nn.torch_layers import scratch_in_place

_LAYER = re.compile(r"_l(\d+)$")
_BLOCK = re.compile(r"^blocks\.(\d+)\.")


def layer_of(name: str) -> str:
    """'rnn.weight_hh_l1' or 'blocks.1.up.weight' → 'layer 1'; other parameters by their module."""
    m = _BLOCK.match(name) or _LAYER.search(name)
    if m:
        return f"layer {m.group(1)}"
    return name.split(".")[0]


def grad_norms(model: nn.Module) -> tuple[float, dict[str, float], dict[str, float]]:
    """(total, per parameter, per layer) L2 norms of the current gradients, in one device sync."""
    names, norms = [], []
    for name, p in model.named_parameters():
        if p.grad is not None:
            names.append(name)
            norms.append(torch.linalg.vector_norm(p.grad.detach()))
    if not norms:
        return 0.0, {}, {}
    values = torch.stack(norms).double().cpu().tolist()
    per_param = dict(zip(names, values))
    sq: dict[str, float] = defaultdict(float)
    for name, v in per_param.items():
        sq[layer_of(name)] += v * v
    per_layer = {k: math.sqrt(v) for k, v in sq.items()}
    total = math.sqrt(sum(v * v for v in values))
    return total, per_param, per_layer


def is_finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


def timestep_grad_norms(model: nn.Module, tokens: Tensor, targets: Tensor,
                        lengths: Tensor | None = None, state=None) -> list[float]:
    """‖∂L_last/∂h_t‖ for each step t of the top layer, where L_last is the loss at the last step.

    Reading the gradient of the final step's loss backwards through time shows how far back a
    signal reaches: a curve that falls to ~0 within a few steps is a vanishing gradient, one that
    grows is an exploding one. The model's own gradients are left untouched.
    """
    # torch.nn layers do not expose every step's state; eval mode: no dropout noise in the picture
    with scratch_in_place(model) as rnn, eval_mode(model):
        rnn.recorded_states = []
        try:
            with torch.enable_grad():
                if getattr(model, "task", "") == "charlm":
                    logits, _ = model(tokens, state)
                    loss = F.cross_entropy(logits[-1], targets[-1])
                elif getattr(model, "task", "") == "names":
                    loss = F.cross_entropy(model(tokens, lengths), targets)
                else:
                    raise TypeError(f"no time-step diagnostics for {type(model).__name__}")
                states = rnn.recorded_states
                grads = torch.autograd.grad(loss, states, allow_unused=True)
            norms = [torch.zeros((), device=tokens.device) if g is None else g.norm() for g in grads]
            return torch.stack(norms).double().cpu().tolist()
        finally:
            rnn.recorded_states = None
