"""A training loop: fit(model, loss, optimizer, train_data, ...) -> History.

Data are arrays batched along their first axis: ``train_data = (inputs, targets)``, where
inputs is an array or a tuple of arrays passed as ``model.forward(*inputs)`` and targets an
array or a tuple ``(target, mask)`` passed as ``loss.forward(pred, target, mask)``. One
epoch shuffles the examples (with the given seed), then for every batch runs forward, loss,
backward and one optimizer step over ``model.parameters()`` with ``model.gradients()``.
"""

from __future__ import annotations

import math
import sys
import time

import numpy as np

from .. import ops
from .module import Module

__all__ = ["fit", "evaluate", "History"]


class History:
    """Per-epoch results of fit: ``history["loss"]``, ``history["val_loss"]`` (with val_data),
    ``epochs`` run, ``seconds`` per epoch, and ``stopped_early``."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.seconds: list[float] = []
        self.stopped_early = False

    @property
    def epochs(self) -> int:
        return len(self.seconds)

    def __getitem__(self, key):
        return self.history[key]

    def record(self, metrics: dict, seconds: float) -> None:
        for k, val in metrics.items():
            self.history.setdefault(k, []).append(float(val))
        self.seconds.append(seconds)

    def plot(self, path, title="training") -> bool:
        """Write the loss curves to a PNG at `path` when matplotlib is installed; returns
        whether a file was written."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return False
        fig, ax = plt.subplots(figsize=(6, 4))
        for k, vals in self.history.items():
            ax.plot(range(1, len(vals) + 1), vals, label=k)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return True

    def __repr__(self):
        last = {k: round(v[-1], 6) for k, v in self.history.items() if v}
        return f"History(epochs={self.epochs}, last={last})"


def _as_tuple(a):
    return tuple(a) if isinstance(a, (tuple, list)) else (a,)


def _split(data, name):
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(f"{name}: expected a pair (inputs, targets)")
    inputs = tuple(None if a is None else np.asarray(a) for a in _as_tuple(data[0]))
    targets = tuple(None if a is None else np.asarray(a) for a in _as_tuple(data[1]))
    n = {a.shape[0] for a in inputs + targets if a is not None and a.ndim > 0}
    if len(n) != 1:
        raise ValueError(f"{name}: every array needs the same number of examples along axis 0, got {sorted(n)}")
    return inputs, targets, n.pop()


def _take(arrays, idx):
    return tuple(None if a is None else a[idx] for a in arrays)


def evaluate(model, loss, data, batch_size=256) -> float:
    """Mean loss over `data` in eval mode (batches weighted by their size)."""
    inputs, targets, n = _split(data, "data")
    was = model.training
    model.eval()
    total = 0.0
    try:
        for s in range(0, n, batch_size):
            idx = slice(s, min(n, s + batch_size))
            pred = model.forward(*_take(inputs, idx))
            total += float(loss.forward(pred, *_take(targets, idx))) * (idx.stop - idx.start)
    finally:
        model.train(was)
    return total / n if n else math.nan


def fit(model, loss, optimizer, train_data, val_data=None, epochs=1, batch_size=32, clip_norm=None,
        callbacks=(), progress=True, shuffle=True, seed=None):
    """Train `model` and return a History.

    optimizer : an nnkern.optim optimizer built over ``model.parameters()``.
    clip_norm : clip the gradients by their global norm before each step (ops.clip_grad_norm).
    callbacks : objects with ``update(metrics: dict, params) -> bool`` called after each epoch
        with {"loss", "val_loss"}; True stops training (nnkern.optim.EarlyStopping).
    progress : a one-line progress bar on stderr (batches, loss, examples/s) while it runs.
    """
    if not isinstance(model, Module):
        raise TypeError(f"model: expected an nnkern.nn.Module, got {type(model).__name__}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs: expected a non-negative int, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
    inputs, targets, n = _split(train_data, "train_data")
    if n == 0:
        raise ValueError("train_data: no examples")
    if val_data is not None:
        _split(val_data, "val_data")
    params, grads = model.parameters(), model.gradients()
    rng = np.random.default_rng(seed)
    hist = History()
    nb = (n + batch_size - 1) // batch_size
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = rng.permutation(n) if shuffle else np.arange(n)
        model.train()
        total = 0.0
        for b in range(nb):
            idx = order[b * batch_size:(b + 1) * batch_size]
            pred = model.forward(*_take(inputs, idx))
            value = float(loss.forward(pred, *_take(targets, idx)))
            if not math.isfinite(value):
                raise FloatingPointError(f"loss: {value} at epoch {epoch + 1}, batch {b + 1}")
            total += value * len(idx)
            model.zero_grad()
            model.backward(loss.backward())
            if clip_norm is not None:
                ops.clip_grad_norm(grads, clip_norm)
            optimizer.step(grads)
            if progress:
                done = (b + 1) / nb
                bar = "=" * int(24 * done)
                rate = (b + 1) * batch_size / max(time.perf_counter() - t0, 1e-9)
                sys.stderr.write(f"\repoch {epoch + 1}/{epochs} [{bar:<24}] {100 * done:3.0f}% "
                                 f"loss {total / min(n, (b + 1) * batch_size):.4f} {rate:,.0f} ex/s")
                sys.stderr.flush()
        metrics = {"loss": total / n}
        if val_data is not None:
            metrics["val_loss"] = evaluate(model, loss, val_data)
        hist.record(metrics, time.perf_counter() - t0)
        if progress:
            extra = f" val_loss {metrics['val_loss']:.4f}" if "val_loss" in metrics else ""
            sys.stderr.write(f"\repoch {epoch + 1}/{epochs} loss {metrics['loss']:.4f}{extra} "
                             f"({hist.seconds[-1]:.1f} s)" + " " * 20 + "\n")
        stops = [cb.update(metrics, params) for cb in callbacks]  # every callback sees every epoch
        if any(stops):
            hist.stopped_early = True
            break
    return hist
