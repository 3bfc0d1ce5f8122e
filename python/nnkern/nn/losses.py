"""Loss objects with masks: positions where the mask is False (padding) do not count.

    loss = LossClass(...);  value = loss.forward(pred, target, mask=None);  dpred = loss.backward()

With reduction "mean" the loss is the mean over the positions that count (NaN if none do,
like NumPy's mean of nothing); "sum" adds them. backward() returns dL/dpred for the last
forward, zero at masked positions.

Masks: for CrossEntropyLoss one flag per position, shape logits.shape[:-1] (the class axis
is last); for the elementwise losses pred.shape, or a prefix of it (a (T, B) mask for
(T, B, D) predictions masks whole feature vectors).
"""

from __future__ import annotations

import numpy as np

from .. import ops

__all__ = ["MSELoss", "MAELoss", "HuberLoss", "BCEWithLogitsLoss", "CrossEntropyLoss"]


def _reduction(r):
    if r not in ("mean", "sum"):
        raise ValueError(f"reduction: expected 'mean' or 'sum', got {r!r}")
    return r


def _mask_arg(mask, shape, name="mask"):
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"{name}: expected a boolean array (True = counts), got dtype {m.dtype}")
    if m.shape != tuple(shape[: m.ndim]):
        raise ValueError(f"{name}: expected shape {tuple(shape)} or a prefix of it, got {m.shape}")
    return m.reshape(m.shape + (1,) * (len(shape) - m.ndim))


class _Loss:
    def __init__(self, reduction="mean"):
        self.reduction = _reduction(reduction)
        self._grad = None

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def _finish(self, per, dper, mask, dtype):
        """per: per-element losses; dper: d(per)/d(pred) elementwise (same shape as pred)."""
        w = np.ones(per.shape, dtype) if mask is None else np.broadcast_to(mask, per.shape).astype(dtype)
        count = w.sum()
        total = (per * w).sum()
        if self.reduction == "mean":
            value = total / count if count > 0 else np.dtype(dtype).type(np.nan)
            scale = 1 / count if count > 0 else 0
        else:
            value, scale = total, 1
        wd = w if w.shape == dper.shape else w.reshape(w.shape + (1,) * (dper.ndim - w.ndim))
        self._grad = (dper * wd * np.dtype(dtype).type(scale)).astype(dtype, copy=False)
        return np.dtype(dtype).type(value)

    def backward(self):
        if self._grad is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._grad


class _Elementwise(_Loss):
    _name = ""

    def _kw(self):
        return {}

    def forward(self, pred, target, mask=None):
        pred, target = np.asarray(pred), np.asarray(target)
        f = getattr(ops, self._name)
        per = f(pred, target, reduction="none", **self._kw())
        dper = getattr(ops, self._name + "_backward")(pred, target, reduction="none", **self._kw())
        return self._finish(per, dper, _mask_arg(mask, per.shape), per.dtype)


class MSELoss(_Elementwise):
    """Mean squared error (the L2 loss): (pred - target)^2 per element."""
    _name = "mse_loss"


class MAELoss(_Elementwise):
    """Mean absolute error (the L1 loss): |pred - target| per element."""
    _name = "mae_loss"


class HuberLoss(_Elementwise):
    """Huber loss: quadratic within delta of the target, linear beyond."""
    _name = "huber_loss"

    def __init__(self, delta=1.0, reduction="mean"):
        super().__init__(reduction)
        self.delta = float(delta)

    def _kw(self):
        return {"delta": self.delta}


class BCEWithLogitsLoss(_Elementwise):
    """Binary cross-entropy on logits (stable): target in [0, 1] per element."""
    _name = "binary_cross_entropy_with_logits"


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits (..., C) against integer labels (...) (torch's
    CrossEntropyLoss with the class axis last). Labels equal to ignore_index do not count,
    as masked positions do not."""

    def __init__(self, reduction="mean", ignore_index=-100, label_smoothing=0.0):
        super().__init__(reduction)
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)

    def forward(self, logits, target, mask=None):
        logits = np.asarray(logits)
        target = np.asarray(target)
        if logits.ndim < 1 or target.shape != logits.shape[:-1]:
            raise ValueError(f"target: expected shape {logits.shape[:-1]} (logits' shape without the class axis), "
                             f"got {target.shape}")
        C = logits.shape[-1]
        m = _mask_arg(mask, target.shape)
        flat_t = target.reshape(-1).astype(np.int64)
        counts = flat_t != self.ignore_index
        if m is not None:
            counts &= m.reshape(-1)
            flat_t = np.where(counts, flat_t, self.ignore_index)
        x2 = logits.reshape(-1, C)
        kw = dict(ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)
        per = ops.cross_entropy(x2, flat_t, reduction="none", **kw)
        dper = ops.cross_entropy_backward(x2, flat_t, reduction="none", **kw)
        value = self._finish(per, dper, counts, logits.dtype)
        self._grad = self._grad.reshape(logits.shape)
        return value
