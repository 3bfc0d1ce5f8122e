"""Optimizer updates, gradient clipping and the max-norm constraint, computed by the C++
kernels: one fused pass over memory per update, GIL released.

Same names, signatures and results as :mod:`nnkern.reference.optim`, whose docstrings carry
the equations. Updates are in place on the caller's arrays; a non-contiguous array (a view
such as ``W[:, ::2]``) is updated through one contiguous copy that is written back. Every
argument is checked, and the gradient scanned for NaN and inf, before anything is modified.
"""

from __future__ import annotations

import sys

import numpy as np

from .. import _core
from .. import _validate as v
from ..reference.optim import (
    _adam_args,
    _adam_scalars,
    _clip_coef,
    _clip_norm_args,
    _grad_list,
    _max_norm_args,
    _nonneg,
    _result,
    _rmsprop_args,
    _rprop_args,
    _sgd_args,
)

# The same names as the twin module: the kernel contract.
from ..reference.optim import __all__  # noqa: E402


def _contiguous(a):
    # np.asarray(order="C") returns `a` itself when it is contiguous, and keeps 0-d arrays 0-d
    return None if a is None else np.asarray(a, order="C")


def _write_back(originals, works):
    """Copy results computed in contiguous copies back into the caller's strided arrays."""
    for a, w in zip(originals, works):
        if a is not None and w is not a:
            a[...] = w


def _check_finite(grad, name="grad"):
    bad = _core.first_nonfinite([grad])
    if bad is not None:
        raise v.nonfinite_error(name, grad, bad[1])


def _one(a):
    return None if a is None else [a]


def sgd_step(param, grad, velocity, step, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0):
    param, grad, velocity, step, lr, momentum, dampening, nesterov, wd = _sgd_args(
        param, grad, velocity, step, lr, momentum, dampening, nesterov, weight_decay)
    grad = _contiguous(grad)
    _check_finite(grad)
    if momentum == 0:
        velocity = None
    arrs = [param, velocity]
    work = [_contiguous(a) for a in arrs]
    _core.sgd_step([work[0]], [grad], _one(work[1]), lr, momentum, dampening, nesterov, wd,
                   step == 1, 1.0)
    _write_back(arrs, work)


def rprop_step(param, grad, prev_grad, step_size, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    param, grad, prev_grad, step_size, (em, ep), (smin, smax) = _rprop_args(
        param, grad, prev_grad, step_size, etas, step_sizes)
    grad = _contiguous(grad)
    _check_finite(grad)
    arrs = [param, prev_grad, step_size]
    work = [_contiguous(a) for a in arrs]
    _core.rprop_step([work[0]], [grad], [work[1]], [work[2]], em, ep, smin, smax, 1.0)
    _write_back(arrs, work)


def rmsprop_step(param, grad, square_avg, step, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None):
    (param, grad, square_avg, step, lr, alpha, eps, wd, momentum, momentum_buffer, centered,
     grad_avg) = _rmsprop_args(param, grad, square_avg, step, lr, alpha, eps, weight_decay,
                               momentum, momentum_buffer, centered, grad_avg)
    grad = _contiguous(grad)
    _check_finite(grad)
    arrs = [param, square_avg, momentum_buffer if momentum > 0 else None,
            grad_avg if centered else None]
    work = [_contiguous(a) for a in arrs]
    _core.rmsprop_step([work[0]], [grad], [work[1]], _one(work[2]), _one(work[3]), lr, alpha, eps,
                       wd, momentum, centered, 1.0)
    _write_back(arrs, work)


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled=False, amsgrad=False, max_exp_avg_sq=None):
    (param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, wd, decoupled, amsgrad,
     max_exp_avg_sq) = _adam_args(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps,
                                  weight_decay, decoupled, amsgrad, max_exp_avg_sq)
    grad = _contiguous(grad)
    _check_finite(grad)
    step_size, bc2_sqrt = _adam_scalars(step, lr, beta1, beta2)
    arrs = [param, exp_avg, exp_avg_sq, max_exp_avg_sq if amsgrad else None]
    work = [_contiguous(a) for a in arrs]
    _core.adam_step([work[0]], [grad], [work[1]], [work[2]], _one(work[3]), lr, beta1, beta2, eps,
                    wd, decoupled, amsgrad, step_size, bc2_sqrt, 1.0)
    _write_back(arrs, work)


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    grads, max_norm, p, error_if_nonfinite = _clip_norm_args(grads, max_norm, norm_type, error_if_nonfinite)
    work = [_contiguous(g) for g in grads]
    total = _core.total_norm(work, p) if work else 0.0
    coef = _clip_coef(total, max_norm, p, error_if_nonfinite)
    if work and not coef >= 1.0:
        _core.scale_arrays(work, coef)
        _write_back(grads, work)
    return _result(total, grads)


def clip_grad_value(grads, clip_value):
    grads = _grad_list(grads)
    c = _nonneg(clip_value, "clip_value")
    work = [_contiguous(g) for g in grads]
    if work:
        _core.clip_arrays(work, c)
        _write_back(grads, work)


def max_norm_constraint(W, max_norm, axis=-1):
    W, max_norm, axis = _max_norm_args(W, max_norm, axis)
    work = _contiguous(W)
    if axis is None:
        outer, K, inner = 1, W.size, 1
    else:
        outer, K, inner = v.axis_split(W.shape, axis)
    _core.max_norm_constraint(work, outer, K, inner, max_norm)
    _write_back([W], [work])


# The twins' docstrings (equations, shapes) document both implementations.
_ref_module = sys.modules[_sgd_args.__module__]
for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref_module, _name).__doc__
del _name
