"""Activations and their derivatives in plain NumPy: the definition of correct.

Each backward takes the upstream gradient ``dy`` first, then what the forward saved
(the output ``y`` for sigmoid, tanh and the softmaxes; the input ``x`` for the ReLUs), and
returns ``dx``. Shapes: any; ``dy`` and the saved array have the same shape and dtype.
NaN propagates through every forward as it does through NumPy's ufuncs. Empty arrays give
empty results.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as v

__all__ = [
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward", "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward", "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward",
]


def _finish(result, out):
    y = v.output(out, result.shape, result.dtype)
    y[...] = result
    return y


def _pair(dy, saved, saved_name):
    dy = v.float_array(dy, "dy")
    saved = v.float_array(saved, saved_name)
    v.same_dtype(dy, "dy", **{saved_name: saved})
    v.same_shape(dy, "dy", **{saved_name: saved})
    return dy, saved


def sigmoid(x, out=None):
    """Logistic sigmoid, elementwise.

    sigmoid(x) = 1 / (1 + exp(-x)), computed as e / (1 + e) with e = exp(-|x|) for x < 0 so
    that exp never overflows: finite for every finite x, and exactly 0 or 1 only where the
    true value rounds to it.

    x : ndarray of any shape, float32 or float64.  Returns y of x's shape and dtype.
    """
    x = v.float_array(x, "x")
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
    return _finish(y, out)


def sigmoid_backward(dy, y, out=None):
    """Gradient of sigmoid: dx = dy * y * (1 - y), with y = sigmoid(x) the forward output."""
    dy, y = _pair(dy, y, "y")
    return _finish(dy * y * (1 - y), out)


def tanh(x, out=None):
    """Hyperbolic tangent, elementwise: (e^x - e^-x) / (e^x + e^-x), saturating at +-1."""
    x = v.float_array(x, "x")
    return _finish(np.tanh(x), out)


def tanh_backward(dy, y, out=None):
    """Gradient of tanh: dx = dy * (1 - y^2), with y = tanh(x) the forward output."""
    dy, y = _pair(dy, y, "y")
    return _finish(dy * (1 - y * y), out)


def relu(x, out=None):
    """Rectified linear unit: relu(x) = max(x, 0) elementwise (NaN stays NaN)."""
    x = v.float_array(x, "x")
    return _finish(np.where(x < 0, x.dtype.type(0), x), out)


def relu_backward(dy, x, out=None):
    """Gradient of relu: dx = dy where x > 0, else 0 (0 at x == 0, as PyTorch), x the input."""
    dy, x = _pair(dy, x, "x")
    return _finish(np.where(x > 0, dy, dy.dtype.type(0)), out)


def leaky_relu(x, alpha=0.01, out=None):
    """Leaky ReLU: x where x >= 0, alpha * x where x < 0; a small slope keeps units alive."""
    alpha = v.real_scalar(alpha, "alpha")
    x = v.float_array(x, "x")
    return _finish(np.where(x < 0, x * x.dtype.type(alpha), x), out)


def leaky_relu_backward(dy, x, alpha=0.01, out=None):
    """Gradient of leaky_relu: dx = dy where x > 0, else alpha * dy (x the forward input)."""
    alpha = v.real_scalar(alpha, "alpha")
    dy, x = _pair(dy, x, "x")
    return _finish(np.where(x > 0, dy, dy * dy.dtype.type(alpha)), out)


def softmax(x, axis=-1, out=None):
    """Softmax along `axis`: y_k = exp(x_k - m) / sum_j exp(x_j - m), m = max_j x_j.

    Subtracting the maximum changes nothing mathematically and keeps every exp() in (0, 1],
    so inputs of any finite magnitude (1e4 and beyond) give finite probabilities.

    x : ndarray with at least one dimension.  axis : int, the axis that sums to one.
    """
    x = v.float_array(x, "x")
    ax = v.normalize_axis(axis, x.ndim)
    if x.size == 0:
        return _finish(x.copy(), out)
    m = np.max(x, axis=ax, keepdims=True)
    e = np.exp(x - m)
    return _finish(e / np.sum(e, axis=ax, keepdims=True), out)


def softmax_backward(dy, y, axis=-1, out=None):
    """Gradient of softmax: dx = y * (dy - sum_axis(dy * y)), y the forward output.

    The Jacobian of softmax is diag(y) - y y^T; applying it to dy gives the line above
    without forming the K x K matrix.
    """
    dy, y = _pair(dy, y, "y")
    ax = v.normalize_axis(axis, dy.ndim)
    return _finish(y * (dy - np.sum(dy * y, axis=ax, keepdims=True)), out)


def log_softmax(x, axis=-1, out=None):
    """Log-softmax along `axis`: y_k = x_k - m - log(sum_j exp(x_j - m)), m = max_j x_j.

    Computed directly rather than as log(softmax(x)), which would give -inf where the
    softmax underflows to zero.
    """
    x = v.float_array(x, "x")
    ax = v.normalize_axis(axis, x.ndim)
    if x.size == 0:
        return _finish(x.copy(), out)
    m = np.max(x, axis=ax, keepdims=True)
    # (x - m) - log(s) rather than x - (m + log(s)): keeps log(s)'s digits when |x| is large.
    return _finish((x - m) - np.log(np.sum(np.exp(x - m), axis=ax, keepdims=True)), out)


def log_softmax_backward(dy, y, axis=-1, out=None):
    """Gradient of log_softmax: dx = dy - exp(y) * sum_axis(dy), y the forward output
    (exp(y) is the softmax)."""
    dy, y = _pair(dy, y, "y")
    ax = v.normalize_axis(axis, dy.ndim)
    return _finish(dy - np.exp(y) * np.sum(dy, axis=ax, keepdims=True), out)
