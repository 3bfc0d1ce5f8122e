"""Activations and their derivatives, computed by the C++ kernels.

Same names, signatures and results as :mod:`nnkern.reference.activations`, whose docstrings
carry the equations. Every function accepts float32 or float64 arrays of any shape (a
non-contiguous view is copied once), returns a new array or writes into ``out=``, and
releases the GIL while it computes.
"""

from __future__ import annotations

from .. import _core
from .. import _validate as v
from ..reference import activations as _ref

# The same names as the twin module: the kernel contract.
from ..reference.activations import __all__  # noqa: E402


def _unary(kernel, x, out, *extra):
    x = v.float_array(x, "x")
    y = v.output(out, x.shape, x.dtype)
    kernel(x, y, *extra)
    return y


def _binary(kernel, dy, saved, saved_name, out, *extra):
    dy = v.float_array(dy, "dy")
    saved = v.float_array(saved, saved_name)
    v.same_dtype(dy, "dy", **{saved_name: saved})
    v.same_shape(dy, "dy", **{saved_name: saved})
    dx = v.output(out, dy.shape, dy.dtype)
    kernel(dy, saved, dx, *extra)
    return dx


def sigmoid(x, out=None):
    return _unary(_core.sigmoid, x, out)


def sigmoid_backward(dy, y, out=None):
    return _binary(_core.sigmoid_backward, dy, y, "y", out)


def tanh(x, out=None):
    return _unary(_core.tanh, x, out)


def tanh_backward(dy, y, out=None):
    return _binary(_core.tanh_backward, dy, y, "y", out)


def relu(x, out=None):
    return _unary(_core.leaky_relu, x, out, 0.0)


def relu_backward(dy, x, out=None):
    return _binary(_core.leaky_relu_backward, dy, x, "x", out, 0.0)


def leaky_relu(x, alpha=0.01, out=None):
    alpha = v.real_scalar(alpha, "alpha")
    return _unary(_core.leaky_relu, x, out, alpha)


def leaky_relu_backward(dy, x, alpha=0.01, out=None):
    alpha = v.real_scalar(alpha, "alpha")
    return _binary(_core.leaky_relu_backward, dy, x, "x", out, alpha)


def _softmax(x, axis, out, log):
    x = v.float_array(x, "x")
    ax = v.normalize_axis(axis, x.ndim)
    y = v.output(out, x.shape, x.dtype)
    _core.softmax(x, y, *v.axis_split(x.shape, ax), log)
    return y


def _softmax_backward(dy, y, axis, out, log):
    dy = v.float_array(dy, "dy")
    y = v.float_array(y, "y")
    v.same_dtype(dy, "dy", y=y)
    v.same_shape(dy, "dy", y=y)
    ax = v.normalize_axis(axis, dy.ndim)
    dx = v.output(out, dy.shape, dy.dtype)
    _core.softmax_backward(dy, y, dx, *v.axis_split(dy.shape, ax), log)
    return dx


def softmax(x, axis=-1, out=None):
    return _softmax(x, axis, out, False)


def softmax_backward(dy, y, axis=-1, out=None):
    return _softmax_backward(dy, y, axis, out, False)


def log_softmax(x, axis=-1, out=None):
    return _softmax(x, axis, out, True)


def log_softmax_backward(dy, y, axis=-1, out=None):
    return _softmax_backward(dy, y, axis, out, True)


# The twins' docstrings (equations, shapes) document both implementations.
for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref, _name).__doc__
del _name
