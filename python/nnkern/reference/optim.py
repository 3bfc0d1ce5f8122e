"""Optimizer updates, gradient clipping and the max-norm constraint in plain NumPy: the
definition of correct.

Every update follows the torch.optim algorithm of the same name
(https://pytorch.org/docs/stable/optim.html) line by line and works IN PLACE: ``param`` and
the state arrays (velocity, exp_avg, ...) belong to the caller and are updated; nothing is
returned. ``step`` counts from 1 (the first call is step 1). The arithmetic is done in the
arrays' dtype, as torch does; hyper-parameters are rounded to that dtype.

Before anything is modified every argument is checked (dtypes, shapes, hyper-parameter
ranges) and the gradient must be finite: a NaN or inf raises ValueError naming it, and
leaves every array as it was.

Shapes: param, grad and every state array have one shape (any) and one dtype.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v

__all__ = [
    "sgd_step", "rprop_step", "rmsprop_step", "adam_step",
    "clip_grad_norm", "clip_grad_value", "max_norm_constraint",
]

# ---------------------------------------------------------------------------------------
# Argument checks shared with nnkern.ops.optim (same errors, same messages).


def _param_grad(param, grad):
    v.inplace_array(param, "param")
    grad = v.float_array(grad, "grad")
    v.same_dtype(param, "param", grad=grad)
    v.same_shape(param, "param", grad=grad)
    return param, grad


def _states(param, **states):
    for name, a in states.items():
        v.state_like(a, name, param, "param")


def _lr(lr) -> float:
    return v.real_scalar(lr, "lr", min_value=0.0)


def _step(step) -> int:
    return v.int_scalar(step, "step", min_value=1)


def _nonneg(x, name) -> float:
    return v.real_scalar(x, name, min_value=0.0)


def _sgd_args(param, grad, velocity, step, lr, momentum, dampening, nesterov, weight_decay):
    param, grad = _param_grad(param, grad)
    step, lr = _step(step), _lr(lr)
    momentum = _nonneg(momentum, "momentum")
    dampening = v.real_scalar(dampening, "dampening")
    nesterov = v.bool_flag(nesterov, "nesterov")
    weight_decay = _nonneg(weight_decay, "weight_decay")
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"nesterov: needs momentum > 0 and dampening = 0, got momentum={momentum}, dampening={dampening}"
        )
    if momentum != 0:
        if velocity is None:
            raise ValueError("velocity: an array is required when momentum != 0, got None")
        _states(param, velocity=velocity)
    return param, grad, velocity, step, lr, momentum, dampening, nesterov, weight_decay


def _rprop_args(param, grad, prev_grad, step_size, etas, step_sizes):
    param, grad = _param_grad(param, grad)
    _states(param, prev_grad=prev_grad, step_size=step_size)
    em, ep = _pair(etas, "etas")
    if not 0.0 < em < 1.0 < ep:
        raise ValueError(f"etas: expected 0 < etaminus < 1 < etaplus, got ({em}, {ep})")
    smin, smax = _pair(step_sizes, "step_sizes")
    if not 0.0 <= smin <= smax:
        raise ValueError(f"step_sizes: expected 0 <= min <= max, got ({smin}, {smax})")
    return param, grad, prev_grad, step_size, (em, ep), (smin, smax)


def _pair(x, name):
    if not isinstance(x, (tuple, list)) or len(x) != 2:
        raise TypeError(f"{name}: expected a pair of real numbers, got {x!r}")
    return v.real_scalar(x[0], f"{name}[0]"), v.real_scalar(x[1], f"{name}[1]")


def _rmsprop_args(param, grad, square_avg, step, lr, alpha, eps, weight_decay, momentum,
                  momentum_buffer, centered, grad_avg):
    param, grad = _param_grad(param, grad)
    _states(param, square_avg=square_avg)
    step, lr = _step(step), _lr(lr)
    alpha = v.unit_scalar(alpha, "alpha", closed=True)
    eps = _nonneg(eps, "eps")
    weight_decay = _nonneg(weight_decay, "weight_decay")
    momentum = _nonneg(momentum, "momentum")
    centered = v.bool_flag(centered, "centered")
    if momentum > 0:
        if momentum_buffer is None:
            raise ValueError("momentum_buffer: an array is required when momentum > 0, got None")
        _states(param, momentum_buffer=momentum_buffer)
    if centered:
        if grad_avg is None:
            raise ValueError("grad_avg: an array is required when centered=True, got None")
        _states(param, grad_avg=grad_avg)
    return (param, grad, square_avg, step, lr, alpha, eps, weight_decay, momentum,
            momentum_buffer, centered, grad_avg)


def _adam_args(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
               decoupled, amsgrad, max_exp_avg_sq):
    param, grad = _param_grad(param, grad)
    _states(param, exp_avg=exp_avg, exp_avg_sq=exp_avg_sq)
    step, lr = _step(step), _lr(lr)
    beta1 = v.unit_scalar(beta1, "beta1")
    beta2 = v.unit_scalar(beta2, "beta2")
    eps = _nonneg(eps, "eps")
    weight_decay = _nonneg(weight_decay, "weight_decay")
    decoupled = v.bool_flag(decoupled, "decoupled")
    amsgrad = v.bool_flag(amsgrad, "amsgrad")
    if amsgrad:
        if max_exp_avg_sq is None:
            raise ValueError("max_exp_avg_sq: an array is required when amsgrad=True, got None")
        _states(param, max_exp_avg_sq=max_exp_avg_sq)
    return (param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay,
            decoupled, amsgrad, max_exp_avg_sq)


def _adam_scalars(step, lr, beta1, beta2):
    """(step_size, sqrt of the second bias correction), in double as torch computes them."""
    return lr / (1 - beta1**step), math.sqrt(1 - beta2**step)


def _check_finite(grad, name="grad"):
    bad = ~np.isfinite(grad.reshape(-1))
    if bad.any():
        raise v.nonfinite_error(name, grad, int(np.argmax(bad)))


def _grad_list(grads, name="grads"):
    """A list of in-place gradient arrays of one dtype (a single array is a list of one)."""
    if isinstance(grads, np.ndarray):
        grads = [grads]
    if not isinstance(grads, (list, tuple)):
        raise TypeError(f"{name}: expected a list of numpy arrays, got {type(grads).__name__}")
    out = [v.inplace_array(g, f"{name}[{k}]") for k, g in enumerate(grads)]
    for k, g in enumerate(out[1:], 1):
        v.same_dtype(out[0], f"{name}[0]", **{f"{name}[{k}]": g})
    return out


def _norm_type(norm_type) -> float:
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        return math.inf
    try:
        p = float(norm_type)
    except (TypeError, ValueError):
        raise TypeError(f"norm_type: expected a real number or 'inf', got {type(norm_type).__name__}") from None
    if not (p > 0):
        raise ValueError(f"norm_type: must be > 0 (or inf), got {p}")
    return p


def _clip_norm_args(grads, max_norm, norm_type, error_if_nonfinite):
    grads = _grad_list(grads)
    max_norm = _nonneg(max_norm, "max_norm")
    return grads, max_norm, _norm_type(norm_type), v.bool_flag(error_if_nonfinite, "error_if_nonfinite")


def _clip_coef(total, max_norm, norm_type, error_if_nonfinite):
    """torch's clip coefficient min(1, max_norm / (total + 1e-6)); NaN stays NaN."""
    if error_if_nonfinite and not math.isfinite(total):
        raise v.NonFiniteError(
            f"grads: the total norm of order {norm_type} of the gradients is {total}, so they "
            "cannot be clipped; pass error_if_nonfinite=False to clip anyway"
        )
    coef = max_norm / (total + 1e-6)
    return 1.0 if coef > 1.0 else coef  # a NaN coefficient fails the test and stays NaN


def _result(total, grads):
    dtype = grads[0].dtype if grads else np.dtype(np.float32)
    with np.errstate(over="ignore"):
        return dtype.type(total)


def _max_norm_args(W, max_norm, axis):
    v.inplace_array(W, "W")
    max_norm = v.real_scalar(max_norm, "max_norm", min_value=0.0, strict_min=True)
    if axis is None:
        return W, max_norm, None
    if W.ndim == 0:
        raise ValueError("axis: a 0-d array has no axis; pass axis=None")
    return W, max_norm, v.normalize_axis(axis, W.ndim)


# ---------------------------------------------------------------------------------------
# updates


def sgd_step(param, grad, velocity, step, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0):
    """One torch.optim.SGD step, in place on param (and velocity).

        d = grad + weight_decay * param
        if momentum != 0:
            velocity = d                                        (step 1: a copy of d)
            velocity = momentum * velocity + (1 - dampening) * d   (later steps)
            d = d + momentum * velocity if nesterov else velocity
        param -= lr * d

    With momentum = 0 this is plain gradient descent and velocity may be None.
    nesterov needs momentum > 0 and dampening = 0 (as torch).
    """
    param, grad, velocity, step, lr, momentum, dampening, nesterov, wd = _sgd_args(
        param, grad, velocity, step, lr, momentum, dampening, nesterov, weight_decay)
    _check_finite(grad)
    d = grad + wd * param
    if momentum != 0:
        if step == 1:
            velocity[...] = d
        else:
            velocity[...] = momentum * velocity + (1 - dampening) * d
        d = d + momentum * velocity if nesterov else velocity
    param[...] = param - lr * d


def rprop_step(param, grad, prev_grad, step_size, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
    """One torch.optim.Rprop step, in place on param, prev_grad and step_size.

    Fill step_size with the learning rate and prev_grad with zeros before the first step.

        q = grad * prev_grad
        step_size *= etaplus where q > 0, etaminus where q < 0 (unchanged where q == 0)
        step_size = clip(step_size, *step_sizes)
        grad = 0 where q < 0            (after a sign change: no move, no test next time)
        param -= sign(grad) * step_size;   prev_grad = grad

    RProp adapts each weight's step from the SIGN of successive gradients only, which is
    meaningful for full-batch gradients. Mini-batch gradients change sign from batch to batch
    because of sampling noise, so RProp shrinks the steps of noisy weights and, since it
    ignores the gradient's magnitude, cannot average the noise away as SGD's small steps do:
    use it for full-batch training (RMSProp is its mini-batch descendant).
    """
    param, grad, prev_grad, step_size, (em, ep), (smin, smax) = _rprop_args(
        param, grad, prev_grad, step_size, etas, step_sizes)
    _check_finite(grad)
    q = grad * prev_grad
    eta = np.where(q > 0, ep, np.where(q < 0, em, 1.0)).astype(param.dtype)
    step_size[...] = np.clip(step_size * eta, smin, smax)
    g = np.where(q < 0, 0, grad).astype(param.dtype)
    param[...] = param - np.sign(g) * step_size
    prev_grad[...] = g


def rmsprop_step(param, grad, square_avg, step, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, momentum_buffer=None, centered=False, grad_avg=None):
    """One torch.optim.RMSprop step, in place on param and the state arrays.

        g = grad + weight_decay * param
        square_avg = alpha * square_avg + (1 - alpha) * g^2
        centered:  grad_avg = lerp(grad_avg, g, 1 - alpha);  avg = sqrt(square_avg - grad_avg^2) + eps
        else:      avg = sqrt(square_avg) + eps
        momentum > 0:  momentum_buffer = momentum * momentum_buffer + g / avg;  param -= lr * momentum_buffer
        else:          param -= lr * g / avg

    Start with zeros in every state array. RMSprop has no bias correction: `step` is checked
    (>= 1) but does not enter the update.
    """
    (param, grad, square_avg, step, lr, alpha, eps, wd, momentum, momentum_buffer, centered,
     grad_avg) = _rmsprop_args(param, grad, square_avg, step, lr, alpha, eps, weight_decay,
                               momentum, momentum_buffer, centered, grad_avg)
    _check_finite(grad)
    g = grad + wd * param
    square_avg[...] = alpha * square_avg + (1 - alpha) * g * g
    if centered:
        grad_avg[...] = _lerp(grad_avg, g, 1 - alpha)
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    if momentum > 0:
        momentum_buffer[...] = momentum * momentum_buffer + g / avg
        param[...] = param - lr * momentum_buffer
    else:
        param[...] = param - lr * (g / avg)


def _lerp(a, b, w):
    """torch.lerp with a scalar weight: a + w (b - a) for w < 0.5, else b - (b - a)(1 - w)."""
    w_arr = np.asarray(w, dtype=a.dtype)
    if w < 0.5:
        return a + w_arr * (b - a)
    return b - (b - a) * (1 - w_arr)


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled=False, amsgrad=False, max_exp_avg_sq=None):
    """One torch.optim.Adam step (AdamW with decoupled=True), in place on param and state.

        decoupled (AdamW):  param *= 1 - lr * weight_decay;   g = grad
        else (Adam):        g = grad + weight_decay * param
        exp_avg = lerp(exp_avg, g, 1 - beta1)              (= beta1 exp_avg + (1 - beta1) g)
        exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * g^2
        amsgrad:  max_exp_avg_sq = maximum(max_exp_avg_sq, exp_avg_sq), used in place of exp_avg_sq
        param -= lr / (1 - beta1^step) * exp_avg / (sqrt(exp_avg_sq) / sqrt(1 - beta2^step) + eps)

    Start with zeros in every state array and step = 1.
    """
    (param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, wd, decoupled, amsgrad,
     max_exp_avg_sq) = _adam_args(param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps,
                                  weight_decay, decoupled, amsgrad, max_exp_avg_sq)
    _check_finite(grad)
    step_size, bc2_sqrt = _adam_scalars(step, lr, beta1, beta2)
    if decoupled:
        param[...] = param * (1.0 - lr * wd)
        g = grad
    else:
        g = grad + wd * param
    exp_avg[...] = _lerp(exp_avg, g, 1 - beta1)
    exp_avg_sq[...] = beta2 * exp_avg_sq + (1 - beta2) * g * g
    v_hat = exp_avg_sq
    if amsgrad:
        max_exp_avg_sq[...] = np.maximum(max_exp_avg_sq, exp_avg_sq)
        v_hat = max_exp_avg_sq
    param[...] = param - step_size * (exp_avg / (np.sqrt(v_hat) / bc2_sqrt + eps))


# ---------------------------------------------------------------------------------------
# clipping and constraints


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale a list of gradients in place so that their total norm is at most max_norm,
    as torch.nn.utils.clip_grad_norm_; returns the total norm before clipping.

        total = norm of all elements of all grads together (order norm_type: 2, 1, p > 0, inf)
        grads *= min(1, max_norm / (total + 1e-6))

    grads : a list of float arrays of one dtype (or one array), modified in place.
    A non-finite total (a NaN or inf gradient) raises NonFiniteError (a ValueError and a
    RuntimeError) with nothing modified when error_if_nonfinite, else the grads are scaled by
    the resulting NaN or 0 as torch does. Returns a NumPy scalar of the grads' dtype.
    """
    grads, max_norm, p, error_if_nonfinite = _clip_norm_args(grads, max_norm, norm_type, error_if_nonfinite)
    if p == math.inf:
        total = max((float(np.max(np.abs(g))) if g.size else 0.0 for g in grads), default=0.0)
        if any(np.isnan(g).any() for g in grads):
            total = math.nan
    else:
        total = sum(float(np.sum(np.abs(g.astype(np.float64)) ** p)) for g in grads) ** (1 / p)
    coef = _clip_coef(total, max_norm, p, error_if_nonfinite)
    if not coef >= 1.0:
        with np.errstate(invalid="ignore"):  # inf * 0 = NaN, as in torch
            for g in grads:
                g *= g.dtype.type(coef)
    return _result(total, grads)


def clip_grad_value(grads, clip_value):
    """Clamp every gradient in place to [-clip_value, clip_value], as
    torch.nn.utils.clip_grad_value_ (NaN stays NaN). grads: a list of float arrays or one array.
    """
    grads = _grad_list(grads)
    c = _nonneg(clip_value, "clip_value")
    for g in grads:
        g[...] = np.where(g > c, c, np.where(g < -c, -c, g))


def max_norm_constraint(W, max_norm, axis=-1):
    """The max-norm weight constraint, in place: every vector W[..., :, ...] along `axis`
    whose 2-norm exceeds max_norm is rescaled by max_norm / (norm + 1e-7) (torch.renorm's
    factor), the others are left alone. axis=None treats W as one vector.

    For a weight W (out_features, in_features) in torch.nn.Linear layout, axis=-1 (the
    default) constrains each unit's incoming weights, as in Srivastava et al. (2014), the
    dropout paper. Norms are computed in float64.
    """
    W, max_norm, axis = _max_norm_args(W, max_norm, axis)
    sq = W.astype(np.float64) ** 2
    norms = np.sqrt(np.sum(sq) if axis is None else np.sum(sq, axis=axis, keepdims=True))
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(W.dtype)
    W *= scale
