"""Dense (fully connected) layer in plain NumPy, with PyTorch's nn.Linear layout."""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v

__all__ = ["dense", "dense_backward", "embedding_backward"]


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


def _embedding_backward_args(dout, ids, dweight):
    if not isinstance(dweight, np.ndarray):
        raise TypeError(f"dweight: expected a numpy.ndarray (accumulated in place), got {type(dweight).__name__}")
    if dweight.dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"dweight: expected a float32 or float64 array, got dtype {dweight.dtype}")
    v.check_ndim(dweight, "dweight", (2,), "a 2-D gradient of shape (num_embeddings, embedding_dim)")
    if not dweight.flags.c_contiguous or not dweight.flags.writeable:
        raise ValueError("dweight: must be a writeable C-contiguous array (it is accumulated in place)")
    ids = v.index_array(ids, "ids")
    V, D = dweight.shape
    dout = v.float_array(dout, "dout")
    v.same_dtype(dweight, "dweight", dout=dout)
    if dout.shape != ids.shape + (D,):
        raise ValueError(f"dout: expected shape {ids.shape + (D,)} (ids' shape, embedding_dim), got {dout.shape}")
    ids = ids.reshape(-1)
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        bad = ids[(ids < 0) | (ids >= V)][0]
        raise ValueError(f"ids: {int(bad)} is out of range for {V} embeddings")
    return dout.reshape(-1, D), ids


def embedding_backward(dout, ids, dweight):
    """The gradient of an embedding lookup y = W[ids], added into dweight in place.

    ids     : integer array of any shape, each in [0, num_embeddings)
    dout    : dL/dy, shape ids.shape + (embedding_dim,)
    dweight : (num_embeddings, embedding_dim), receives dweight[ids[i]] += dout[i]; an id
              that occurs k times receives the sum of its k rows
    Returns dweight. (np.add.at does the same, an order of magnitude slower.)
    """
    dout, ids = _embedding_backward_args(dout, ids, dweight)
    np.add.at(dweight, ids, dout)
    return dweight


def _finish(y, out):
    o = v.output(out, y.shape, y.dtype)
    o[...] = y
    return o
