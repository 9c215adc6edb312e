"""What each unit and gate does: h_t per character, units ranked by what they track, gate saturation.

After Karpathy, Johnson and Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015):
a unit is interesting when its activation follows a simple property of the text (inside quotes,
position in the line, ...), and a gate's behaviour shows in how often it is saturated, below 0.1
or above 0.9.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .data import Vocab

VOWELS = set("aeiouAEIOU")
LEFT, RIGHT = 0.1, 0.9  # a gate below LEFT is left-saturated (closed), above RIGHT right-saturated


def _inside(text: str, open_: str, close: str) -> list[float]:
    """1 where the text is inside an open mark after reading the character (nesting counted).

    The opening mark is inside, the closing one outside: h_t is the state after reading character t.
    With the same mark for both (quotes), each one toggles.
    """
    depth, out = 0, []
    for ch in text:
        if ch == close and depth > 0:
            depth -= 1
        elif ch == open_:
            depth += 1
        out.append(1.0 if depth > 0 else 0.0)
    return out


def _line_position(text: str) -> list[float]:
    pos, out = 0, []
    for ch in text:
        out.append(float(pos))
        pos = 0 if ch == "\n" else pos + 1
    return out


def _word_position(text: str) -> list[float]:
    pos, out = 0, []
    for ch in text:
        pos = pos + 1 if ch.isalpha() else 0
        out.append(float(pos))
    return out


FEATURES: dict[str, Callable[[str], list[float]]] = {
    "inside quotes": lambda t: _inside(t, '"', '"'),  # the same mark opens and closes
    "inside parentheses": lambda t: _inside(t, "(", ")"),
    "inside brackets": lambda t: _inside(t, "[", "]"),
    "position in line": _line_position,
    "start of line": lambda t: [1.0 if i == 0 or t[i - 1] == "\n" else 0.0 for i in range(len(t))],
    "end of line": lambda t: [1.0 if ch == "\n" else 0.0 for ch in t],
    "position in word": _word_position,
    "uppercase": lambda t: [1.0 if ch.isupper() else 0.0 for ch in t],
    "vowel": lambda t: [1.0 if ch in VOWELS else 0.0 for ch in t],
    "letter": lambda t: [1.0 if ch.isalpha() else 0.0 for ch in t],
    "digit": lambda t: [1.0 if ch.isdigit() else 0.0 for ch in t],
    "punctuation": lambda t: [1.0 if not ch.isalnum() and not ch.isspace() else 0.0 for ch in t],
    "whitespace": lambda t: [1.0 if ch.isspace() else 0.0 for ch in t],
}


def features(text: str) -> tuple[list[str], Tensor]:
    """The feature names and a (T, F) float64 matrix of their values per character."""
    names = list(FEATURES)
    return names, torch.tensor([FEATURES[n](text) for n in names], dtype=torch.float64).t()


@dataclass
class Trace:
    """A model's run over a text: h_t of every layer and the gates of gated cells."""

    mode: str
    states: list[Tensor]  # per layer, (T, H): h_t after reading character t
    gates: list[dict[str, Tensor]]  # per layer, gate name → (T, H) in [0, 1]; empty for vanilla RNNs


@torch.no_grad()
def trace(model: nn.Module, vocab: Vocab, text: str) -> Trace:
    """Read `text` with the model's recurrent stack from a zero state, recording every layer.

    The layers run as in training (fused kernels on the CPU); the gates are then recomputed for all
    steps at once from the inputs and h_{t-1}, with the cells' equations, as one GEMM per layer.
    """
    rnn = model.rnn
    was_training = rnn.training
    rnn.eval()
    try:
        ids = vocab.encode(text).to(rnn.weight_hh_l0.device)[:, None]  # (T, 1)
        h0 = rnn.initial_state(1)
        h0, c0 = h0 if isinstance(h0, tuple) else (h0, None)
        x: Tensor = ids
        states, gates = [], []
        for layer in range(rnn.num_layers):
            out, _, _ = rnn._run_layer(layer, x, h0[layer], None if c0 is None else c0[layer], None, None,
                                       record=False)
            h = out[:, 0].float()
            states.append(h.cpu())
            gates.append(_gates(rnn, layer, x, h) if rnn.mode != "rnn" else {})
            x = out
    finally:
        rnn.train(was_training)
    return Trace(rnn.mode, states, gates)


def _gates(rnn: nn.Module, layer: int, x: Tensor, h: Tensor) -> dict[str, Tensor]:
    """Gate activations (T, H) of one layer from its input x and its outputs h."""
    _, w_hh, _, b_hh = rnn.layer_parameters(layer)
    gi = rnn._project(layer, x)[:, 0].float()  # W_ih x_t + b_ih, (T, G*H)
    h_prev = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
    if rnn.mode == "gru":
        # r and z only (the candidate n is not a gate); GRU keeps b_hh on the hidden side, as
        # b_hn sits inside r * (...), while LSTM's _project has folded it into gi
        two = 2 * rnn.hidden_size
        gh = h_prev @ w_hh[:two].float().t()
        if b_hh is not None:
            gh = gh + b_hh[:two].float()
        i_r, i_z = gi[:, :two].chunk(2, -1)
        h_r, h_z = gh.chunk(2, -1)
        return {"r": torch.sigmoid(i_r + h_r).cpu(), "z": torch.sigmoid(i_z + h_z).cpu()}
    gh = h_prev @ w_hh.float().t()
    i, f, _, o = (gi + gh).chunk(4, -1)
    return {"i": torch.sigmoid(i).cpu(), "f": torch.sigmoid(f).cpu(), "o": torch.sigmoid(o).cpu()}


@dataclass
class Unit:
    """One hidden unit and the text feature its activation follows best."""

    layer: int
    unit: int
    feature: str
    score: float  # |Pearson correlation| with that feature, 0..1
    correlation: float  # signed: negative when the unit is low where the feature is high


def rank_units(tr: Trace, text: str) -> list[Unit]:
    """Every unit with its best-correlated feature, most selective first."""
    names, feats = features(text)
    acts = torch.cat(tr.states, dim=1).double()  # (T, L*H)
    corr = _correlations(acts, feats)  # (L*H, F)
    best = corr.abs().argmax(dim=1)
    hidden = tr.states[0].shape[1]
    units = []
    for k in range(acts.shape[1]):
        c = float(corr[k, best[k]])
        units.append(Unit(k // hidden, k % hidden, names[int(best[k])], abs(c), c))
    units.sort(key=lambda u: -u.score)
    return units


def _correlations(a: Tensor, f: Tensor) -> Tensor:
    """Pearson correlation of every column of a with every column of f; 0 where either is constant."""
    a = a - a.mean(0)
    f = f - f.mean(0)
    na, nf = a.norm(dim=0), f.norm(dim=0)
    corr = (a.t() @ f) / (na[:, None] * nf[None, :])
    return torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0).clamp(-1.0, 1.0)


def saturation(tr: Trace) -> dict[str, dict[str, dict[str, object]]]:
    """Per layer and gate: each unit's fraction of steps left- (<0.1) and right-saturated (>0.9)."""
    out: dict[str, dict[str, dict[str, object]]] = {}
    for layer, gates in enumerate(tr.gates):
        per_gate = {}
        for name, g in gates.items():
            left = (g < LEFT).double().mean(0)
            right = (g > RIGHT).double().mean(0)
            per_gate[name] = {"left": [round(float(v), 4) for v in left],
                              "right": [round(float(v), 4) for v in right],
                              "mean_left": round(float(left.mean()), 4),
                              "mean_right": round(float(right.mean()), 4)}
        if per_gate:
            out[f"layer {layer}"] = per_gate
    return out


def activations(tr: Trace, layer: int, unit: int) -> list[float]:
    return [round(float(v), 4) for v in tr.states[layer][:, unit]]
