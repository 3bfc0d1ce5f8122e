"""GloVe's AdaGrad step in C++ (the function the training epoch runs); see
nnkern.reference.glove for the math. Updates its arrays in place."""

from __future__ import annotations

from .. import _core
from ..reference import glove as _ref
from ..reference.glove import _glove_args

# The same names as the twin module: the kernel contract.
from ..reference.glove import __all__  # noqa: E402


def glove_update(W, C, bw, bc, gW, gC, gbw, gbc, i, j, x, learning_rate=0.05, x_max=100.0,
                 alpha=0.75):
    i, j, x, lr, x_max, alpha = _glove_args((W, C, bw, bc, gW, gC, gbw, gbc), i, j, x,
                                            learning_rate, x_max, alpha)
    V, D = W.shape
    return _core.glove_update(W, C, bw, bc, gW, gC, gbw, gbc, V, D, i, j, x, lr, x_max, alpha)


glove_update.__doc__ = _ref.glove_update.__doc__
