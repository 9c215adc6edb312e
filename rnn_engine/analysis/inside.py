"""What each unit and gate does: h_t per character, units ranked by what they track, gate saturation.

After Karpathy, Johnson and Fei-Fei, "Visualizing and Understanding Recurrent Networks" (2015):
a unit is interesting when its activation follows a simple property of the text (inside quotes,
position in the line, ...), and a gate's behaviour shows in how often it is saturated, below 0.1
or above 0.9.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import MAX_INSPECT
from ..data.text import train_end
from ..data.vocab import Vocab
from ..model.networks import ResidualLM, eval_mode
from ..nn import fused
from ..nn.minimal import MinRecurrent
from ..nn.paths import FUSED, layer_path
from ..nn.recurrent import Recurrent
from ..nn.torch_layers import as_scratch

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


# A correlation with a feature seen once says nothing: over a one-line text every unit that drifts
# as it reads "follows start of line", and after one unclosed "[" whatever drifts "follows inside
# brackets". A feature ranks units only where the text shows it, and its absence, this many times
# each (separate stretches of characters: a bracketed span is one occurrence, however long).
MIN_OCCURRENCES = 5


def occurrences(values: list[float]) -> tuple[int, int]:
    """(stretches where the feature is present, stretches where it is absent) along the text."""
    present = absent = 0
    previous = None
    for v in values:
        on = v > 0
        if on != previous:
            present += on
            absent += not on
            previous = on
    return present, absent


def too_rare(text: str) -> dict[str, int]:
    """Features the text shows, but too few times to rank units by: name → occurrences (the fewer
    of present and absent stretches). Features it does not show at all are left out."""
    rare = {}
    for name, feature in FEATURES.items():
        present, absent = occurrences(feature(text))
        seen = min(present, absent)
        if present and seen < MIN_OCCURRENCES:
            rare[name] = seen
    return rare


@dataclass
class Trace:
    """A model's run over a text: h_t of every layer and the gates of gated cells."""

    mode: str
    states: list[Tensor]  # per layer, (T, H): h_t after reading character t
    gates: list[dict[str, Tensor]]  # per layer, gate name → (T, H) in [0, 1]; empty for vanilla RNNs


# Reading a long text one character at a time leaves the machine idle: each step multiplies W_hh by
# a single vector. The text is therefore cut into chunks read side by side as one batch. Each chunk
# starts from a state estimated by reading the WARMUP characters before it from zero (trained
# networks mostly forget their distant past); then every chunk whose start differs from the previous
# chunk's end by more than TOLERANCE (in h; relative in an LSTM's c) is read again from that end, for
# up to MAX_PASSES passes, after which the chunks still moving are read one after the other. Chunk 0
# starts from the true zero state, so every chunk ends up starting where the one before ended, and
# the states match a one-by-one read to about TOLERANCE (measured: 7e-6 on a trained 2x512 LSTM).
CHUNK = 128  # characters in a chunk at least
MAX_CHUNKS = 64
WARMUP = 128
MAX_PASSES = 3
TOLERANCE = 1e-5


@torch.no_grad()
def trace(model: nn.Module, vocab: Vocab, text: str, chunked: bool = True) -> Trace:
    """Read `text` with the model's recurrent stack from a zero state, recording every layer.

    The layers run as in training (fused kernels on the CPU), chunked (above) unless `chunked` is
    False; the gates are then recomputed for all steps at once from the inputs and h_{t-1}, with the
    cells' equations, as one GEMM per layer.
    """
    if isinstance(model, ResidualLM) or isinstance(getattr(model, "rnn", None), MinRecurrent):
        return _trace_minimal(model, vocab, text)
    rnn = as_scratch(model.rnn)  # the same weights; torch.nn layers do not expose every step
    with eval_mode(rnn):
        ids = vocab.encode(text).to(next(rnn.parameters()).device)[:, None]  # (T, 1)
        if getattr(rnn, "bidirectional", False):
            raise ValueError("a bidirectional model reads the text from both ends at once: its units have "
                             "no state after character t to show")
        if not isinstance(rnn, Recurrent):  # a tutorial's one-layer recurrence: every h_t, no gates
            out, _ = rnn(ids)
            return Trace(rnn.mode, [out[:, 0].float().cpu()], [{}])
        x: Tensor = ids
        states, gates = [], []
        for layer in range(rnn.num_layers):
            chunks = min(MAX_CHUNKS, len(text) // CHUNK) if chunked else 1
            gi = _projection(rnn, layer, x)
            out = _read_layer(rnn, layer, x, gi, max(1, chunks))  # (T, 1, H)
            h = out[:, 0].float()
            states.append(h.cpu())
            gates.append(_gates(rnn, layer, gi, h) if rnn.mode != "rnn" else {})
            x = out
    return Trace(rnn.mode, states, gates)


def _trace_minimal(model: nn.Module, vocab: Vocab, text: str) -> Trace:
    """A minGRU/minLSTM model's states and gates: every layer's scan over the whole text at once.

    These layers read a text in one GEMM and one scan per layer, so there is nothing to chunk.
    """
    with eval_mode(model):
        ids = vocab.encode(text).to(next(model.parameters()).device)[:, None]  # (T, 1)
        if isinstance(model, ResidualLM):
            states, gates = model.trace_layers(ids)
            mode = model.cell
        else:
            states, gates = model.rnn.trace(ids)
            mode = model.rnn.mode
    return Trace(mode, [h[:, 0].float().cpu() for h in states],
                 [{name: g[:, 0].float().cpu() for name, g in layer.items()} for layer in gates])


def _projection(rnn: Recurrent, layer: int, x: Tensor) -> Tensor:
    """W_ih x_t + b for every t, (T, 1, G*H), with the part of b_hh that can move there (GRU: b_hr, b_hz)."""
    gi = rnn._project(layer, x, for_kernels=True)
    return gi if x.is_floating_point() else F.embedding(x, gi)  # token input: rows of the table


def _read_layer(rnn: Recurrent, layer: int, x: Tensor, gi: Tensor, chunks: int) -> Tensor:
    """One layer's outputs (T, 1, H) over its inputs x (T, 1[, D]), from a zero state, in `chunks`.

    Where the fused kernels run, the chunks are cut from the layer's input projection `gi`, made
    once: the passes that re-read chunks then repeat only the recurrence, not a GEMM as large as it.
    """
    h0 = rnn.initial_state(1)
    h0, c0 = h0 if isinstance(h0, tuple) else (h0, None)
    h0, c0 = h0[layer], None if c0 is None else c0[layer]
    _, w_hh, _, b_hh = rnn.layer_parameters(layer)
    relu = rnn.nonlinearity == "relu"
    # on the fused kernels the chunks are cut from gi; any other path (Triton on a GPU, per step)
    # reads them through the layer itself
    on_kernels = layer_path(rnn, gi, w_hh) == FUSED

    def read(inputs: Tensor, h: Tensor, c: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        if on_kernels:
            return fused.run_layer(rnn.mode, inputs, w_hh, b_hh, h, c, None, relu, low=rnn.gemm_dtype)
        return rnn.run_layer(layer, inputs, h, c, None, None)

    if on_kernels:
        x = gi

    if chunks == 1:
        return read(x, h0, c0)[0]
    steps = x.shape[0]
    size = -(-steps // chunks)
    pad = size * chunks - steps
    if pad:  # the padding trails the last chunk, whose final state nothing reads
        x = torch.cat([x, x[-1:].expand(pad, *x.shape[1:])])
    xs = x.reshape(chunks, size, *x.shape[2:]).transpose(0, 1)  # (size, chunks[, D])
    start_h = h0.new_zeros(chunks, h0.shape[-1])
    start_c = None if c0 is None else torch.zeros_like(start_h)
    warm = min(WARMUP, size)
    _, h_w, c_w = read(xs[size - warm:, :-1], start_h[1:], None if c0 is None else start_c[1:])
    start_h[1:] = h_w
    if start_c is not None:
        start_c[1:] = c_w
    out, end_h, end_c = read(xs, start_h, start_c)
    for _ in range(MAX_PASSES - 1):
        moved = _moved(start_h, end_h, start_c, end_c)
        if not moved.any():
            return _unchunk(out, steps)
        todo = moved.nonzero()[:, 0]
        start_h[todo] = end_h[todo - 1]
        if start_c is not None:
            start_c[todo] = end_c[todo - 1]
        part, h_n, c_n = read(xs[:, todo], start_h[todo], None if start_c is None else start_c[todo])
        out[:, todo], end_h[todo] = part, h_n
        if end_c is not None:
            end_c[todo] = c_n
    moved = _moved(start_h, end_h, start_c, end_c)
    if moved.any():
        # the rest in order, from the end of the last chunk that has settled
        first = int(moved.nonzero()[0, 0])
        rest = xs[:, first:].transpose(0, 1).reshape(-1, 1, *xs.shape[2:])
        tail = read(rest, end_h[first - 1:first], None if end_c is None else end_c[first - 1:first])[0]
        out[:, first:] = tail.reshape(chunks - first, size, -1).transpose(0, 1)
    return _unchunk(out, steps)


def _moved(start_h: Tensor, end_h: Tensor, start_c: Tensor | None, end_c: Tensor | None) -> Tensor:
    """Per chunk: whether its start differs from the previous chunk's end by more than TOLERANCE.

    An LSTM's cell state is compared relative to its size: counting units drive c far beyond 1,
    where tanh(c) no longer moves with it and an absolute 1e-5 would keep them re-reading for nothing.
    """
    gap = (start_h[1:] - end_h[:-1]).abs().amax(1) > TOLERANCE
    if start_c is not None:
        prev = end_c[:-1]
        gap |= ((start_c[1:] - prev).abs() > TOLERANCE * 10 * prev.abs().clamp(min=1.0)).any(1)
    return torch.cat([gap.new_zeros(1), gap])


def _unchunk(out: Tensor, steps: int) -> Tensor:
    return out.transpose(0, 1).reshape(-1, 1, out.shape[-1])[:steps]


def _gates(rnn: Recurrent, layer: int, gi: Tensor, h: Tensor) -> dict[str, Tensor]:
    """Gate activations (T, H) of one layer from its input projection gi (`_projection`) and outputs h."""
    w_hh = rnn.layer_parameters(layer)[1]
    gi = gi[:, 0].float()  # (T, G*H), b_hh folded in where it can be (GRU: b_hr and b_hz only)
    h_prev = torch.cat([torch.zeros_like(h[:1]), h[:-1]])
    if rnn.mode == "gru":
        # r and z only: the candidate n is not a gate
        two = 2 * rnn.hidden_size
        gh = h_prev @ w_hh[:two].float().t()
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
    """Every unit with its best-correlated feature, most selective first.

    Only features the text shows often enough count (MIN_OCCURRENCES); where none does, every
    unit is listed in order with no feature ("—") and score 0.
    """
    names, feats = features(text)
    rare = too_rare(text)
    keep = [i for i, n in enumerate(names) if n not in rare]
    acts = torch.cat(tr.states, dim=1).double()  # (T, L*H)
    hidden = tr.states[0].shape[1]
    corr = _correlations(acts, feats[:, keep])  # (L*H, F kept)
    if not keep or not bool(corr.abs().gt(0).any()):
        return [Unit(k // hidden, k % hidden, "—", 0.0, 0.0) for k in range(acts.shape[1])]
    best = corr.abs().argmax(dim=1)
    units = []
    for k in range(acts.shape[1]):
        c = float(corr[k, best[k]])
        units.append(Unit(k // hidden, k % hidden, names[keep[int(best[k])]], abs(c), c))
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


# -- one inspection, for the Inside view: computed in the run's process or on a saved model ------------
GRAD_WINDOW = 500  # the per-step gradient covers at most the text's last this many characters
# activations one answer carries (one byte each, ~400 KB as base64): with the ranking and the
# saturation it stays under the 1 MB a client may have waiting (endpoint.MAX_OUTBOX)
MAX_VALUES = 300_000


def inspection(model: nn.Module, vocab: Vocab, text: str, labels: list[str] | None = None,
               units: list[tuple[int, int]] | tuple = ()) -> dict[str, Any]:
    """What the Inside view shows for one text, as plain JSON values.

    A language model gives every unit ranked by the feature it follows best, the activations of
    as many units as MAX_VALUES allows (the asked `units` first, then by rank; each one byte per
    character, h*127 rounded, base64), gate saturation, and ‖∂L_T/∂h_t‖ for the last characters. A
    name classifier gives, for each letter of the (normalised) name, its top-3 languages so far.
    """
    t0 = time.perf_counter()
    if labels is not None:
        letters, name = letter_predictions(model, vocab, labels, text)
        return {"kind": "names", "text": name, "letters": letters,
                "seconds": round(time.perf_counter() - t0, 3)}
    text = text[-MAX_INSPECT:]
    tr = trace(model, vocab, text)
    ranked = rank_units(tr, text)
    hidden = tr.states[0].shape[1]
    order = [(u.layer, u.unit) for u in ranked]
    wanted = [(int(a), int(b)) for a, b in units if 0 <= int(a) < len(tr.states) and 0 <= int(b) < hidden]
    budget = max(1, MAX_VALUES // max(1, len(text)))
    chosen = list(dict.fromkeys(wanted + order))[:budget]
    shown = _shown_states(tr)
    acts = {f"{layer}:{unit}": _pack(shown[layer][:, unit]) for layer, unit in chosen}
    return {"kind": "charlm", "text": text, "cell": tr.mode, "layers": len(tr.states), "hidden": hidden,
            "ranked": [[u.layer, u.unit, u.feature, round(u.correlation, 4)] for u in ranked],
            "too_rare": too_rare(text), "min_occurrences": MIN_OCCURRENCES,
            "activations": acts, "saturation": saturation(tr),
            "gradient": text_gradient(model, vocab, text),
            "seconds": round(time.perf_counter() - t0, 3)}


def _shown_states(tr: Trace) -> list[Tensor]:
    """The states as the view shades them, in [-1, 1].

    A tanh cell's h is there already. A minGRU/minLSTM h is positive and unbounded (minimal.py), so
    each unit is shown about its mean over the text, scaled by its largest distance from it: blue
    below its usual value, red above. The ranking reads the raw states; correlation ignores scale.
    """
    if tr.mode not in ("mingru", "minlstm"):
        return tr.states
    centred = [h - h.mean(0, keepdim=True) for h in tr.states]
    return [c / c.abs().amax(0, keepdim=True).clamp(min=1e-6) for c in centred]


def _pack(values: Tensor) -> str:
    q = (values.clamp(-1.0, 1.0) * 127).round().to(torch.int8)
    return base64.b64encode(q.numpy().tobytes()).decode("ascii")


def text_gradient(model: nn.Module, vocab: Vocab, text: str, window: int = GRAD_WINDOW) -> list[float | None]:
    """‖∂L_T/∂h_t‖ of the top layer for each character, L_T being the loss of predicting the last one.

    Only the last `window` characters are measured (None before them): the state the model reaches
    on the text before the window is where the measured stretch starts.
    """
    from .gradients import timestep_grad_norms

    if len(text) < 2:
        return [None] * len(text)
    device = next(model.parameters()).device
    ids = vocab.encode(text).to(device)[:, None]
    inputs, targets = ids[:-1], ids[1:]
    start = max(0, len(inputs) - window)
    state = None
    if start:
        with torch.no_grad(), eval_mode(model):
            _, state = model(inputs[:start])
    norms = timestep_grad_norms(model, inputs[start:], targets[start:], state=state)
    # h_t is the state after reading character t; the last character is only a target
    return [None] * start + [float(f"{v:.4g}") for v in norms] + [None]


@torch.no_grad()
def letter_predictions(model: nn.Module, vocab: Vocab, labels: list[str], name: str,
                       top: int = 3) -> tuple[list[list[list[Any]]], str]:
    """For each letter of the normalised name, the top languages for the name up to that letter.

    Each prefix is classified as a name of its own, so a model that reads both ways, or any other
    classifier, answers what it would for that prefix.
    """
    from ..data.names import normalise_name
    from ..model.sampling import classify

    clean = normalise_name(name)
    if not clean:
        return [], clean
    prefixes = [clean[: i + 1] for i in range(len(clean))]
    return [[[label, round(p, 4)] for label, p in result]
            for result in classify(model, vocab, labels, prefixes, top)], clean


def validation_excerpt(text: str, length: int = 1000) -> str:
    """The start of a corpus's validation part (as training splits it), from a line start."""
    val = text[train_end(len(text)):]
    cut = val.find("\n")
    if 0 <= cut < len(val) // 2:
        val = val[cut + 1:]
    return val[:length]
