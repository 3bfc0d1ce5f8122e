"""Loss functions and their gradients in plain NumPy: the definition of correct.

Every loss follows the PyTorch function of the same meaning in torch.nn.functional.

``NAME(pred, target, reduction="mean", ...)`` returns the loss. With ``reduction="none"`` it
is an array of per-element (per-row for cross_entropy) losses; with ``"sum"`` or ``"mean"`` it
is a NumPy scalar of the input's dtype, summed in float64. The mean of nothing is NaN and
the sum of nothing is 0, as for NumPy's mean and sum.

``NAME_backward(pred, target, reduction="mean", ...)`` returns d(loss)/d(pred), an array of
pred's shape. For ``"none"`` it is the gradient of the sum of the per-element losses, i.e.
each element's own derivative; ``"mean"`` divides that by the number of elements.

float32 and float64 are supported and never mixed in one call. NaN in the input gives NaN
in the output (rather than an error).
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v
from .activations import sigmoid as _sigmoid

__all__ = [
    "mse_loss", "mse_loss_backward", "mae_loss", "mae_loss_backward",
    "huber_loss", "huber_loss_backward", "log_cosh_loss", "log_cosh_loss_backward",
    "binary_cross_entropy", "binary_cross_entropy_backward",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward",
    "cross_entropy", "cross_entropy_backward",
]

# ---------------------------------------------------------------------------------------
# Argument checks and reductions shared with nnkern.ops.losses (same errors, same messages).


def _pair_args(pred, target, reduction):
    """pred and target as contiguous float arrays of one dtype and shape."""
    reduction = v.check_reduction(reduction)
    pred = v.float_array(pred, "pred")
    target = v.float_array(target, "target")
    v.same_dtype(pred, "pred", target=target)
    v.same_shape(pred, "pred", target=target)
    return pred, target, reduction


def _delta_arg(delta) -> float:
    return v.real_scalar(delta, "delta", min_value=0.0, strict_min=True)


def _reduced(total, count, reduction, dtype):
    """A float64 sum of `count` losses as the loss for "sum" or "mean" (NaN if count == 0)."""
    value = float(total)
    if reduction == "mean":
        value = value / count if count else float("nan")
    with np.errstate(over="ignore"):  # a float32 sum beyond 3.4e38 is inf, as in PyTorch
        return v.reduce_result(value, dtype)


def _scale(reduction, count) -> float:
    """The factor a backward applies: 1 / count for "mean", 1 otherwise."""
    return 1.0 / count if reduction == "mean" and count else 1.0


def _unit_interval_error(a, name):
    """ValueError for the first value of `a` outside [0, 1], if any (NaN is not flagged)."""
    bad = ((a < 0) | (a > 1)).reshape(-1)
    if bad.any():
        i = int(np.argmax(bad))
        return ValueError(
            f"{name}: expected values in [0, 1], got {float(a.reshape(-1)[i])} at flat index {i}"
        )
    return None


def _check_unit_interval(pred, target):
    for a, name in ((pred, "pred"), (target, "target")):
        err = _unit_interval_error(a, name)
        if err is not None:
            raise err


def _pos_weight_arg(pos_weight, pred):
    """pos_weight as a contiguous (C,) array, C = pred's last dimension (a 0-d array for a
    0-d pred, so that it broadcasts to pred's shape).

    A scalar or a one-element array is broadcast to all C classes, as in PyTorch."""
    if pos_weight is None:
        return None
    w = v.float_array(pos_weight, "pos_weight")
    v.same_dtype(pred, "pred", pos_weight=w)
    C = pred.shape[-1] if pred.ndim else 1
    if w.shape not in ((), (1,), (C,)):
        raise ValueError(
            f"pos_weight: expected shape ({C},) (pred's last dimension) or a single value, "
            f"got {w.shape}"
        )
    w = np.ascontiguousarray(np.broadcast_to(w.reshape(-1), (C,)))
    return w if pred.ndim else w.reshape(())


def _ce_args(logits, target, reduction, ignore_index, label_smoothing):
    """Checked cross-entropy arguments: (logits2d, target, is_labels, reduction, ignore_index,
    label_smoothing, shape). logits2d is (N, C); target is int64 labels (N,) or float
    probabilities (N, C); shape is the caller's logits shape, (N, C) or (C,)."""
    reduction = v.check_reduction(reduction)
    logits = v.float_array(logits, "logits")
    v.check_ndim(logits, "logits", (1, 2), "an array of shape (N, C) or (C,)")
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index: expected an int, got {type(ignore_index).__name__}")
    ignore_index = int(ignore_index)
    if not -(2**63) <= ignore_index < 2**63:
        raise ValueError(f"ignore_index: {ignore_index} does not fit in int64")
    label_smoothing = v.real_scalar(label_smoothing, "label_smoothing", min_value=0.0)
    if label_smoothing > 1.0:
        raise ValueError(f"label_smoothing: must be <= 1.0, got {label_smoothing}")
    t = np.asarray(target)
    row_shape = logits.shape[:-1]
    if t.dtype.kind in "iu":
        if t.shape != row_shape:
            raise ValueError(
                f"target: class labels must have shape {row_shape} (logits' shape {logits.shape} "
                f"without the class dimension), got {t.shape}"
            )
        t = v.index_array(t, "target")
        is_labels = True
    elif t.dtype.kind == "f":
        t = v.float_array(t, "target")
        v.same_dtype(logits, "logits", target=t)
        if t.shape != logits.shape:
            raise ValueError(
                f"target: class probabilities must have logits' shape {logits.shape}, got {t.shape}"
            )
        is_labels = False
    else:
        raise TypeError(
            f"target: expected integer class labels or float class probabilities, got dtype {t.dtype}"
        )
    N, C = math.prod(row_shape), logits.shape[-1]
    logits2d = logits.reshape(N, C)
    t = t.reshape(N) if is_labels else t.reshape(N, C)
    return logits2d, t, is_labels, reduction, ignore_index, label_smoothing, logits.shape


def _check_labels(labels, C, ignore_index):
    """ValueError naming the first label outside [0, C) that is not ignore_index."""
    bad = (labels != ignore_index) & ((labels < 0) | (labels >= C))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"target: class label {int(labels[i])} at index {i} is out of range [0, {C}) "
            f"and is not ignore_index ({ignore_index})"
        )


# ---------------------------------------------------------------------------------------
# Regression losses, d = pred - target elementwise.


def _grad(g, pred):
    """A gradient as an array of pred's shape and dtype (NumPy gives a scalar for 0-d)."""
    return np.asarray(g, dtype=pred.dtype)


def _finish_loss(loss, reduction, dtype):
    if reduction == "none":
        return np.asarray(loss, dtype=dtype)  # an array even for 0-d input
    return _reduced(np.sum(loss, dtype=np.float64), loss.size, reduction, dtype)


def mse_loss(pred, target, reduction="mean"):
    """Mean squared error (L2 loss), as torch.nn.functional.mse_loss.

    loss_i = (pred_i - target_i)^2, then reduced ("mean", "sum" or "none").

    pred : ndarray of any shape, float32 or float64.
    target : ndarray of pred's shape and dtype.
    reduction : "mean" (average over all elements), "sum", or "none" (array of pred's shape).
    """
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _finish_loss(np.square(pred - target), reduction, pred.dtype)


def mse_loss_backward(pred, target, reduction="mean"):
    """Gradient of mse_loss with respect to pred: 2 (pred - target), divided by the number of
    elements for "mean". Returns an array of pred's shape and dtype."""
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _grad(2 * (pred - target) * pred.dtype.type(_scale(reduction, pred.size)), pred)


def mae_loss(pred, target, reduction="mean"):
    """Mean absolute error (L1 loss), as torch.nn.functional.l1_loss.

    loss_i = |pred_i - target_i|, then reduced ("mean", "sum" or "none").

    pred : ndarray of any shape, float32 or float64.
    target : ndarray of pred's shape and dtype.
    """
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _finish_loss(np.abs(pred - target), reduction, pred.dtype)


def mae_loss_backward(pred, target, reduction="mean"):
    """Gradient of mae_loss with respect to pred: sign(pred - target), taking sign(0) = 0 (the
    subgradient PyTorch uses), divided by the number of elements for "mean"."""
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _grad(np.sign(pred - target) * pred.dtype.type(_scale(reduction, pred.size)), pred)


def huber_loss(pred, target, reduction="mean", delta=1.0):
    """Huber loss, as torch.nn.functional.huber_loss: quadratic near zero, linear far out.

    With d = pred - target:
        loss_i = d^2 / 2                    where |d| < delta
        loss_i = delta * (|d| - delta / 2)  elsewhere
    The two pieces meet with equal value and slope at |d| = delta, so large errors pull
    with a constant force delta instead of one growing with d.

    pred : ndarray of any shape, float32 or float64.
    target : ndarray of pred's shape and dtype.
    delta : float > 0, where the loss turns from quadratic to linear.
    """
    delta = _delta_arg(delta)
    pred, target, reduction = _pair_args(pred, target, reduction)
    dl = pred.dtype.type(delta)
    d = pred - target
    a = np.abs(d)
    loss = np.where(a < dl, 0.5 * d * d, dl * (a - 0.5 * dl))
    return _finish_loss(loss, reduction, pred.dtype)


def huber_loss_backward(pred, target, reduction="mean", delta=1.0):
    """Gradient of huber_loss with respect to pred: d = pred - target clipped to
    [-delta, delta], divided by the number of elements for "mean"."""
    delta = _delta_arg(delta)
    pred, target, reduction = _pair_args(pred, target, reduction)
    dl = pred.dtype.type(delta)
    return _grad(np.clip(pred - target, -dl, dl) * pred.dtype.type(_scale(reduction, pred.size)), pred)


def log_cosh_loss(pred, target, reduction="mean"):
    """Log-cosh loss: loss_i = log(cosh(pred_i - target_i)).

    About d^2 / 2 for small d and |d| - log 2 for large d, like a smooth Huber loss. cosh
    overflows for |d| > ~710 (float64, ~89 for float32), so it is computed as
        log(cosh(d)) = |d| + log1p(exp(-2 |d|)) - log 2,
    where exp only ever sees a non-positive argument.

    pred : ndarray of any shape, float32 or float64.
    target : ndarray of pred's shape and dtype.
    """
    pred, target, reduction = _pair_args(pred, target, reduction)
    a = np.abs(pred - target)
    loss = a + np.log1p(np.exp(-2 * a)) - pred.dtype.type(np.log(2.0))
    return _finish_loss(loss, reduction, pred.dtype)


def log_cosh_loss_backward(pred, target, reduction="mean"):
    """Gradient of log_cosh_loss with respect to pred: tanh(pred - target), divided by the
    number of elements for "mean"."""
    pred, target, reduction = _pair_args(pred, target, reduction)
    return _grad(np.tanh(pred - target) * pred.dtype.type(_scale(reduction, pred.size)), pred)


# ---------------------------------------------------------------------------------------
# Binary classification.


def binary_cross_entropy(pred, target, reduction="mean"):
    """Binary cross-entropy on probabilities, as torch.nn.functional.binary_cross_entropy.

        loss_i = -(t_i * max(log p_i, -100) + (1 - t_i) * max(log(1 - p_i), -100))

    with p = pred, t = target. Each log is clamped at -100, as PyTorch does, so that a
    perfectly confident prediction (p = 0 or 1) gives a finite loss (100 when wrong, 0 when
    right) instead of inf or 0 * -inf = NaN.

    pred : ndarray of any shape, probabilities in [0, 1], float32 or float64.
    target : ndarray of pred's shape and dtype, values in [0, 1] (hard 0/1 or soft labels).
    A value of pred or target outside [0, 1] raises ValueError (NaN is let through).
    """
    pred, target, reduction = _pair_args(pred, target, reduction)
    _check_unit_interval(pred, target)
    with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
        log_p = np.maximum(np.log(pred), -100)
        log_1mp = np.maximum(np.log1p(-pred), -100)
    loss = (target - 1) * log_1mp - target * log_p
    return _finish_loss(loss, reduction, pred.dtype)


def binary_cross_entropy_backward(pred, target, reduction="mean"):
    """Gradient of binary_cross_entropy with respect to pred, as PyTorch computes it:

        (p - t) / max((1 - p) * p, 1e-12)

    (the bound keeps p = 0 or 1 finite; like PyTorch it is float32's 1e-12, 9.99999996e-13,
    for both dtypes), divided by the number of elements for "mean".
    Same argument checks as the forward.
    """
    pred, target, reduction = _pair_args(pred, target, reduction)
    _check_unit_interval(pred, target)
    den = np.maximum((1 - pred) * pred, pred.dtype.type(np.float32(1e-12)))
    return _grad((pred - target) / den * pred.dtype.type(_scale(reduction, pred.size)), pred)


def binary_cross_entropy_with_logits(pred, target, reduction="mean", pos_weight=None):
    """Binary cross-entropy on logits, as torch.nn.functional.binary_cross_entropy_with_logits.

    With x = pred (a logit: p = sigmoid(x)) and t = target, the loss is
    -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))), computed without forming sigmoid as
        loss_i = max(x, 0) - x * t + log1p(exp(-|x|)),
    which never overflows and stays accurate where sigmoid(x) rounds to 0 or 1.
    With pos_weight w, the positive term is weighted: -(w t log sigmoid(x) + (1 - t) log(1 -
    sigmoid(x))), i.e.
        loss_i = (1 - t) * x + (1 + (w - 1) * t) * (max(-x, 0) + log1p(exp(-|x|))).

    pred : ndarray of any shape (..., C), logits, float32 or float64.
    target : ndarray of pred's shape and dtype (usually in [0, 1]).
    pos_weight : None, or ndarray of shape (C,) (one weight per class along pred's last
        dimension) or a single value; w > 1 raises recall, w < 1 raises precision.
    """
    pred, target, reduction = _pair_args(pred, target, reduction)
    w = _pos_weight_arg(pos_weight, pred)
    x, t = pred, target
    log1p_exp = np.log1p(np.exp(-np.abs(x)))
    if w is None:
        loss = np.maximum(x, 0) - x * t + log1p_exp
    else:
        loss = (1 - t) * x + (1 + (w - 1) * t) * (np.maximum(-x, 0) + log1p_exp)
    return _finish_loss(loss, reduction, pred.dtype)


def binary_cross_entropy_with_logits_backward(pred, target, reduction="mean", pos_weight=None):
    """Gradient of binary_cross_entropy_with_logits with respect to pred (the logits):

        sigmoid(x) - t                                   without pos_weight
        (1 + (w - 1) * t) * sigmoid(x) - w * t           with pos_weight w

    divided by the number of elements for "mean". Returns an array of pred's shape.
    """
    pred, target, reduction = _pair_args(pred, target, reduction)
    w = _pos_weight_arg(pos_weight, pred)
    x, t = pred, target
    s = _sigmoid(x)
    g = s - t if w is None else (w * t + 1 - t) * s - w * t
    return _grad(g * pred.dtype.type(_scale(reduction, pred.size)), pred)


# ---------------------------------------------------------------------------------------
# Multi-class cross-entropy.


def _log_softmax_rows(x):
    """Row-wise log-softmax of x (N, C): (x - m) - log(sum(exp(x - m))), m the row maximum.

    Subtracting m first keeps every exp() in (0, 1] and log p accurate for |x| of 1e4."""
    if x.shape[1] == 0:
        return x.copy()
    with np.errstate(invalid="ignore"):  # a row holding +inf gives NaN (inf - inf), as in PyTorch
        z = x - np.max(x, axis=1, keepdims=True)
        return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def _target_distribution(t, is_labels, C, ignore_index, eps, dtype):
    """q (N, C): the distribution the softmax is pulled towards, and a (N,) mask of the rows
    that count. Labels: q = (1 - eps) * onehot(label) + eps / C (zero rows where ignored)."""
    if is_labels:
        keep = t != ignore_index
        q = np.zeros((t.shape[0], C), dtype=dtype)
        if eps > 0:
            q[...] = dtype.type(eps) / dtype.type(C)
        rows = np.flatnonzero(keep)
        q[rows, t[rows]] += dtype.type(1 - eps)
        q[~keep] = 0
        return q, keep
    q = t if eps == 0 else t * dtype.type(1 - eps) + dtype.type(eps) / dtype.type(C)
    return q, np.ones(t.shape[0], dtype=bool)


def cross_entropy(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Softmax cross-entropy from unnormalised scores, as torch.nn.functional.cross_entropy.

    log p = log_softmax(logits) along the class axis (computed stably, see above). Then,
    for each row n:

    with integer class labels y,
        loss_n = (1 - eps) * (-log p[n, y_n]) + (eps / C) * sum_c(-log p[n, c])
    and rows with y_n == ignore_index give 0 and do not count: "mean" divides by the number
    of rows that are not ignored (NaN when every row is ignored).

    with class probabilities t,
        loss_n = -sum_c q[n, c] * log p[n, c],   q = (1 - eps) * t + eps / C
    and "mean" divides by N.

    eps = label_smoothing mixes the target with the uniform distribution over C classes.

    logits : ndarray of shape (N, C), or (C,) for a single sample; float32 or float64.
    target : integer ndarray of shape (N,) (int64; int32 etc. accepted), labels in [0, C)
        or equal to ignore_index (shape () for 1-D logits); or a float ndarray of logits'
        shape and dtype holding class probabilities.
    reduction : "mean", "sum" or "none" (per-row losses of shape (N,), or () for 1-D logits).
    ignore_index : int, a label value whose rows are skipped (labels only).
    label_smoothing : float in [0, 1].
    """
    x, t, is_labels, reduction, ignore_index, eps, shape = _ce_args(
        logits, target, reduction, ignore_index, label_smoothing
    )
    N, C = x.shape
    dtype = x.dtype
    if is_labels:
        _check_labels(t, C, ignore_index)
    logp = _log_softmax_rows(x)
    if is_labels:
        keep = t != ignore_index
        rows = np.flatnonzero(keep)
        loss = np.zeros(N, dtype=dtype)
        loss[rows] = -logp[rows, t[rows]]
        if eps > 0:
            smooth = -np.sum(logp[rows], axis=1)
            loss[rows] = dtype.type(1 - eps) * loss[rows] + dtype.type(eps) / dtype.type(C) * smooth
        count = rows.size
    else:
        q, _ = _target_distribution(t, False, C, ignore_index, eps, dtype)
        loss = -np.sum(q * logp, axis=1) if C else np.zeros(N, dtype=dtype)
        count = N
    if reduction == "none":
        return loss.astype(dtype, copy=False).reshape(shape[:-1])
    return _reduced(np.sum(loss, dtype=np.float64), count, reduction, dtype)


def cross_entropy_backward(logits, target, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    """Gradient of cross_entropy with respect to the logits, row by row:

        dlogits[n] = (softmax(logits[n]) * sum_c q[n, c] - q[n]) * scale

    with q the target distribution of cross_entropy ((1 - eps) * onehot(y) + eps / C for
    labels, (1 - eps) * t + eps / C for probabilities); for labels sum_c q = 1, so this is
    softmax - q. Ignored rows get 0. scale is 1 for "sum" and "none", and 1 / (the count
    "mean" divides by) for "mean".
    Returns an array of logits' shape and dtype.
    """
    x, t, is_labels, reduction, ignore_index, eps, shape = _ce_args(
        logits, target, reduction, ignore_index, label_smoothing
    )
    N, C = x.shape
    dtype = x.dtype
    if is_labels:
        _check_labels(t, C, ignore_index)
    q, keep = _target_distribution(t, is_labels, C, ignore_index, eps, dtype)
    count = int(np.count_nonzero(keep))
    p = np.exp(_log_softmax_rows(x))
    g = p * np.sum(q, axis=1, keepdims=True) - q
    g[~keep] = 0
    scale = (1.0 / count if count else 0.0) if reduction == "mean" else 1.0
    return (g * dtype.type(scale)).reshape(shape)
