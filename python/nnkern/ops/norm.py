"""Batch normalization computed by the C++ kernels; see nnkern.reference.norm for the math.

Same names, signatures and results as the twins, which define the equations. Channel sums are
taken in double over fixed blocks of rows, or, for a short and wide (N, C) batch in training,
over all rows of each channel in a block of columns that stays in L2 while it is normalised
(the same bits whatever the thread count either way); the backward recomputes x_hat from the
saved x, mean and invstd instead of storing it.
"""

from __future__ import annotations

import numpy as np

from .. import _buffers as _buf
from .. import _core
from ..reference import norm as _ref
from ..reference.norm import BatchNormCache, _backward_args, _forward_args

# The same names as the twin module: the kernel contract.
from ..reference.norm import __all__  # noqa: E402


def _ncl(x):
    return x.shape[0], x.shape[1], (x.shape[2] if x.ndim == 3 else 1)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    x, gamma, beta, training, momentum, eps = _forward_args(
        x, gamma, beta, running_mean, running_var, training, momentum, eps)
    N, C, L = _ncl(x)
    batch_stats = training or running_mean is None
    update = training and running_mean is not None
    rm, rv = running_mean, running_var
    if rm is not None:  # strided running statistics: update contiguous copies, write back
        rm, rv = np.ascontiguousarray(rm), np.ascontiguousarray(rv)
    y = _buf.empty_like(x)
    mean = _buf.empty(C, dtype=x.dtype)
    invstd = _buf.empty(C, dtype=x.dtype)
    _core.batchnorm_forward(x, gamma, beta, rm, rv, y, mean, invstd, N, C, L, batch_stats, update,
                            momentum, eps)
    if update:
        if rm is not running_mean:
            running_mean[...] = rm
        if rv is not running_var:
            running_var[...] = rv
    return y, BatchNormCache(x, mean, invstd, gamma, batch_stats)


def batchnorm_backward(dy, cache):
    dy = _backward_args(dy, cache)
    x = cache.x
    N, C, L = _ncl(x)
    dx = _buf.empty_like(x)
    dgamma = _buf.empty(C, dtype=x.dtype)
    dbeta = _buf.empty(C, dtype=x.dtype)
    _core.batchnorm_backward(dy, np.ascontiguousarray(x), np.ascontiguousarray(cache.mean),
                             np.ascontiguousarray(cache.invstd), cache.gamma, dx, dgamma, dbeta,
                             N, C, L, cache.batch_stats)
    return dx, dgamma, dbeta


for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref, _name).__doc__
del _name
