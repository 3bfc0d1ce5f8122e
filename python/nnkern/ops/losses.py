"""Loss functions and their gradients, computed by the C++ kernels.

Same names, signatures and results as :mod:`nnkern.reference.losses`, whose docstrings carry
the equations. Arguments are checked by the same helpers as the twins (same errors, same
messages); a non-contiguous view is copied once; the kernels release the GIL, sum in float64
over fixed blocks (the result does not depend on the thread count) and report invalid values
(probabilities outside [0, 1], class labels out of range) from the pass that computes the loss.
"""

from __future__ import annotations

import sys

from .. import _buffers as _buf
from .. import _core
from ..reference.losses import (
    _ce_args,
    _delta_arg,
    _pair_args,
    _pos_weight_arg,
    _reduced,
    _scale,
)

# The same names as the twin module: the kernel contract.
from ..reference.losses import __all__  # noqa: E402


def _forward(kernel, pred, target, reduction, *extra):
    """Per-element losses for "none", else the kernel's float64 sum reduced to a scalar."""
    if reduction == "none":
        loss = _buf.empty(pred.shape, dtype=pred.dtype)
        kernel(pred, target, loss, *extra)
        return loss
    return _reduced(kernel(pred, target, None, *extra), pred.size, reduction, pred.dtype)


def _backward(kernel, pred, target, reduction, *extra):
    dpred = _buf.empty(pred.shape, dtype=pred.dtype)
    kernel(pred, target, dpred, _scale(reduction, pred.size), *extra)
    return dpred


def mse_loss(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _forward(_core.mse_loss, pred, target, reduction)


def mse_loss_backward(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _backward(_core.mse_loss_backward, pred, target, reduction)


def mae_loss(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _forward(_core.mae_loss, pred, target, reduction)


def mae_loss_backward(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _backward(_core.mae_loss_backward, pred, target, reduction)


def huber_loss(pred, target, reduction="mean", delta=1.0):
    delta = _delta_arg(delta)
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _forward(_core.huber_loss, pred, target, reduction, delta)


def huber_loss_backward(pred, target, reduction="mean", delta=1.0):
    delta = _delta_arg(delta)
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _backward(_core.huber_loss_backward, pred, target, reduction, delta)


def log_cosh_loss(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _forward(_core.log_cosh_loss, pred, target, reduction)


def log_cosh_loss_backward(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _backward(_core.log_cosh_loss_backward, pred, target, reduction)


def binary_cross_entropy(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _forward(_core.binary_cross_entropy, pred, target, reduction)


def binary_cross_entropy_backward(pred, target, reduction="mean"):
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _backward(_core.binary_cross_entropy_backward, pred, target, reduction)


def _classes(pred):
    return pred.shape[-1] if pred.ndim else 1


def binary_cross_entropy_with_logits(pred, target, reduction="mean", pos_weight=None):
    pred, target, reduction = _pair_args(pred, target, reduction)
    w = _pos_weight_arg(pos_weight, pred)
    if pred.size == 0:  # (the kernel's (n / C, C) view needs C >= 1)
        return pred.copy() if reduction == "none" else _reduced(0.0, 0, reduction, pred.dtype)
    C = _classes(pred)
    if reduction == "none":
        loss = _buf.empty(pred.shape, dtype=pred.dtype)
        _core.binary_cross_entropy_with_logits(pred, target, w, loss, C)
        return loss
    total = _core.binary_cross_entropy_with_logits(pred, target, w, None, C)
    return _reduced(total, pred.size, reduction, pred.dtype)


def binary_cross_entropy_with_logits_backward(pred, target, reduction="mean", pos_weight=None):
    pred, target, reduction = _pair_args(pred, target, reduction)
    w = _pos_weight_arg(pos_weight, pred)
    dpred = _buf.empty(pred.shape, dtype=pred.dtype)
    if pred.size == 0:
        return dpred
    C = _classes(pred)
    _core.binary_cross_entropy_with_logits_backward(
        pred, target, w, dpred, C, _scale(reduction, pred.size)
    )
    return dpred


def cross_entropy(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    x, t, is_labels, reduction, ignore_index, eps, shape = _ce_args(
        logits, target, reduction, ignore_index, label_smoothing
    )
    N, C = x.shape
    loss = _buf.empty(N, dtype=x.dtype) if reduction == "none" else None
    if is_labels:
        total, count = _core.cross_entropy(x, t, loss, N, C, ignore_index, eps)
    else:
        total, count = _core.cross_entropy_probs(x, t, loss, N, C, eps), N
    if loss is not None:
        return loss.reshape(shape[:-1])
    return _reduced(total, count, reduction, x.dtype)


def cross_entropy_backward(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    x, t, is_labels, reduction, ignore_index, eps, shape = _ce_args(
        logits, target, reduction, ignore_index, label_smoothing
    )
    N, C = x.shape
    g = _buf.empty((N, C), dtype=x.dtype)
    if is_labels:
        _core.cross_entropy_backward(x, t, g, N, C, ignore_index, eps, reduction == "mean")
    else:
        _core.cross_entropy_probs_backward(x, t, g, N, C, eps, _scale(reduction, N))
    return g.reshape(shape)


# The twins' docstrings (equations, shapes) document both implementations. The twin module is
# taken from sys.modules: `from ..reference import losses` could name a function, not it.
_ref_module = sys.modules[_pair_args.__module__]
for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref_module, _name).__doc__
del _name
