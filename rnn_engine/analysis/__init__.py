"""Looking inside a model: gradient diagnostics, units and gates over a text, and the torch.nn check.

Nothing here trains or changes weights. `gradients` measures norms per parameter, per layer and
through time; `inside` reads every layer's state over a text and ranks units by what they track;
`check` runs a model's weights through torch.nn's layers and the scratch ones and reports the
largest differences; `render` turns those results into text and needs no torch.
"""

from __future__ import annotations

from .. import _lazy

_EXPORTS = {
    "grad_norms": ".gradients",
    "timestep_grad_norms": ".gradients",
    "inspection": ".inside",
    "trace": ".inside",
    "rank_units": ".inside",
    "check_model": ".check",
    "compare": ".check",
    "describe_check": ".check",
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy(__name__, _EXPORTS)
