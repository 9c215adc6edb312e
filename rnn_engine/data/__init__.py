"""Corpora and names directories: read with errors that name the file and the fix, split, batched.

A text file becomes a `CharCorpus`: a `Vocab` with an unknown symbol, the last 10% held out for
validation, and parallel streams for truncated BPTT. A directory of `<Language>.txt` files becomes
`NamesData`: unidecoded names, a stratified split with no name in both parts, and length-bucketed
batches. Bad input raises `DataError` saying which file and why (missing, empty, binary, not UTF-8
at byte N), never a traceback from deep inside.
"""

from __future__ import annotations

from .. import _lazy

_EXPORTS = {
    "CharCorpus": ".text",
    "StreamBatches": ".text",
    "read_text": ".text",
    "Vocab": ".vocab",
    "NamesData": ".names",
    "pad_batch": ".names",
}
__all__ = sorted(_EXPORTS)
__getattr__ = _lazy(__name__, _EXPORTS)
