"""Early stopping: a small object a training loop calls once per epoch."""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v


class EarlyStopping:
    """Stop training when a monitored metric has stopped improving.

    monitor      the key to read when update() is given a dict of metrics (e.g. "val_loss")
    patience     epochs without improvement to wait before stopping (>= 0)
    min_delta    an improvement must beat the best value by more than this (>= 0)
    mode         "min" (losses) or "max" (accuracies)
    restore_best keep a copy of the parameters at the best epoch, and copy it back into them
                 (in place) when stopping; restore() does it on demand

    Usage::

        stopper = EarlyStopping("val_loss", patience=5, restore_best=True)
        for epoch in range(1000):
            train_one_epoch()
            if stopper.update({"val_loss": evaluate()}, params):
                break          # params now hold the best epoch's weights

    A NaN metric never counts as an improvement.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, mode="min", restore_best=False):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a str, got {type(monitor).__name__}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.patience = v.int_scalar(patience, "patience", min_value=0)
        self.min_delta = v.real_scalar(min_delta, "min_delta", min_value=0.0)
        self.mode = mode
        self.restore_best = v.bool_flag(restore_best, "restore_best")
        self.reset()

    def reset(self) -> None:
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.epoch = -1
        self.wait = 0
        self.stopped_epoch = None
        self.best_params = None

    @property
    def should_stop(self) -> bool:
        return self.stopped_epoch is not None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, metrics, params=None) -> bool:
        """Record one epoch's metric (a number, or a dict holding `monitor`); True = stop now.

        params: the parameter arrays, needed with restore_best (copied at each new best, and
        restored into on stopping).
        """
        if isinstance(metrics, dict):
            if self.monitor not in metrics:
                raise KeyError(f"metrics: no {self.monitor!r} among {sorted(metrics)}")
            metrics = metrics[self.monitor]
        value = float(metrics)
        if self.restore_best and params is None:
            raise ValueError("params: required with restore_best=True")
        self.epoch += 1
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, self.epoch, 0
            if self.restore_best:
                self.best_params = [np.array(p, copy=True) for p in params]
        else:
            self.wait += 1
            if self.wait > self.patience and self.stopped_epoch is None:
                self.stopped_epoch = self.epoch
                if self.restore_best:
                    self.restore(params)
        return self.should_stop

    __call__ = update

    def restore(self, params) -> None:
        """Copy the best epoch's parameters back into `params`, in place."""
        if self.best_params is None:
            return
        if len(params) != len(self.best_params):
            raise ValueError(f"params: expected {len(self.best_params)} arrays, got {len(params)}")
        for p, b in zip(params, self.best_params):
            p[...] = b
