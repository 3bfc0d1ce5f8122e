"""Dense (fully connected) layer on nnkern's own blocked GEMM micro-kernel (the one the recurrent
kernels run on); see nnkern.reference.dense for the math."""

from __future__ import annotations

import math

from .. import _buffers as _buf
from .. import _core
from .. import _validate as v
from ..reference.dense import _dense_args, _dense_backward_args, _embedding_backward_args
from ..reference.dense import dense as _ref_dense
from ..reference.dense import dense_backward as _ref_dense_backward
from ..reference.dense import embedding_backward as _ref_embedding_backward

# The same names as the twin module: the kernel contract.
from ..reference.dense import __all__  # noqa: E402


def dense(x, W, b=None, out=None):
    x, W, b = _dense_args(x, W, b)
    O, I = W.shape
    y = v.output(out, x.shape[:-1] + (O,), x.dtype)
    _core.dense(x, W, b, y, math.prod(x.shape[:-1]), I, O)
    return y


def dense_backward(dy, x, W):
    dy, x, W = _dense_backward_args(dy, x, W)
    O, I = W.shape
    N = math.prod(x.shape[:-1])
    dx = _buf.empty_like(x)
    dW = _buf.empty_like(W)
    db = _buf.empty(O, dtype=x.dtype)
    _core.dense_backward(dy, x, W, dx, dW, db, N, I, O)
    return dx, dW, db


def embedding_backward(dout, ids, dweight):
    dout, ids = _embedding_backward_args(dout, ids, dweight)
    V, D = dweight.shape
    _core.embedding_backward(dout, ids, dweight, ids.size, V, D)
    return dweight


dense.__doc__ = _ref_dense.__doc__
embedding_backward.__doc__ = _ref_embedding_backward.__doc__
dense_backward.__doc__ = _ref_dense_backward.__doc__
