"""Dense (fully connected) layer in plain NumPy, with PyTorch's nn.Linear layout."""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v

__all__ = ["dense", "dense_backward"]


def _dense_args(x, W, b):
    x = v.float_array(x, "x")
    W = v.float_array(W, "W")
    v.same_dtype(x, "x", W=W)
    v.check_ndim(W, "W", (2,), "a 2-D weight matrix of shape (out_features, in_features)")
    v.check_ndim(x, "x", tuple(range(1, 33)), "an array of shape (..., in_features)")
    if x.shape[-1] != W.shape[1]:
        raise ValueError(
            f"x: last dimension {x.shape[-1]} does not match W's in_features {W.shape[1]} "
            f"(x has shape {x.shape}, W has shape {W.shape})"
        )
    if b is not None:
        b = v.float_array(b, "b")
        v.same_dtype(x, "x", b=b)
        if b.shape != (W.shape[0],):
            raise ValueError(f"b: expected shape ({W.shape[0]},), got {b.shape}")
    return x, W, b


def _dense_backward_args(dy, x, W):
    x, W, _ = _dense_args(x, W, None)
    dy = v.float_array(dy, "dy")
    v.same_dtype(x, "x", dy=dy)
    expected = x.shape[:-1] + (W.shape[0],)
    if dy.shape != expected:
        raise ValueError(f"dy: expected shape {expected} (x's batch shape, out_features), got {dy.shape}")
    return dy, x, W


def dense(x, W, b=None, out=None):
    """Affine map y = x @ W^T + b.

    x : ndarray of shape (..., in_features), any number of leading batch dimensions.
    W : ndarray of shape (out_features, in_features), as torch.nn.Linear.weight.
    b : ndarray of shape (out_features,) or None for no bias.
    Returns y of shape (..., out_features).
    """
    x, W, b = _dense_args(x, W, b)
    y = x @ W.T
    if b is not None:
        y = y + b
    return _finish(y, out)


def dense_backward(dy, x, W):
    """Gradients of y = x @ W^T + b given dy = dL/dy.

    dx = dy @ W                      shape of x
    dW = sum over the batch of dy^T x   (out_features, in_features)
    db = sum over the batch of dy       (out_features,)
    Returns (dx, dW, db); db is returned even if the forward had no bias.
    """
    dy, x, W = _dense_backward_args(dy, x, W)
    n = math.prod(x.shape[:-1])
    dy2 = dy.reshape(n, W.shape[0])
    x2 = x.reshape(n, W.shape[1])
    dx = (dy2 @ W).reshape(x.shape)
    dW = dy2.T @ x2
    db = dy2.sum(axis=0)
    return dx, dW, db


def _finish(y, out):
    o = v.output(out, y.shape, y.dtype)
    o[...] = y
    return o
