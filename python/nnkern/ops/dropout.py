"""Inverted dropout computed by the C++ kernel (counter-based mask, one pass, GIL released).

Same names, signatures and results (bit for bit, masks included) as
:mod:`nnkern.reference.dropout`, whose docstrings carry the definition of the generator.
"""

from __future__ import annotations

import sys

from .. import _buffers as _buf
from .. import _core
from ..reference.dropout import _backward_args, _dropout_args

# The same names as the twin module: the kernel contract.
from ..reference.dropout import __all__  # noqa: E402


def dropout(x, p, seed, training=True):
    x, p, seed, training = _dropout_args(x, p, seed, training)
    if not training:
        return x.copy(), None
    y = _buf.empty_like(x)
    mask = _buf.empty(x.shape, dtype=bool)
    _core.dropout(x, y, mask, p, seed)
    return y, mask


def dropout_backward(dy, mask, p):
    dy, mask, p = _backward_args(dy, mask, p)
    if mask is None:
        return dy.copy()
    dx = _buf.empty_like(dy)
    _core.dropout_backward(dy, mask, dx, p)
    return dx


# The twin module from sys.modules: `from ..reference import dropout` names the function.
_ref = sys.modules[_dropout_args.__module__]
for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref, _name).__doc__
del _name
