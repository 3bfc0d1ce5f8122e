"""GloVe's AdaGrad update in plain NumPy (Pennington et al. 2014, as the reference glove.c).

    W, C   : ndarrays of shape (V, D), word and context vectors
    bw, bc : ndarrays of shape (V,), their biases
    gW, gC, gbw, gbc : AdaGrad accumulators, same shapes (glove.c starts them at 1)

For the co-occurrence count x = X[i, j] > 0:

    diff = W[i] . C[j] + bw[i] + bc[j] - log(x)
    f    = min(1, (x / x_max) ** alpha)
    loss = 0.5 * f * diff**2
    uw   = lr clip(f diff C[j]),  uc = lr clip(f diff W[i])   (clip to [-100, 100])
    W[i] -= uw / sqrt(gW[i]);   gW[i] += uw**2        (and alike for C[j], with uc)
    bw[i] -= f diff / sqrt(gbw[i]);  gbw[i] += (f diff)**2   (and alike for bc[j])

This is AdaGrad as glove.c (its current master) implements it, not as textbooks write it:
the vector accumulators sum squared steps, lr included, and the biases move without lr.
Following it exactly is what makes the vectors match the reference's at equal epochs.

A non-finite diff leaves everything unchanged and costs 0.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as v

__all__ = ["glove_update"]

CLIP = 100.0
_NAMES = ("W", "C", "bw", "bc", "gW", "gC", "gbw", "gbc")


def _glove_args(arrays, i, j, x, learning_rate, x_max, alpha):
    for a, name in zip(arrays, _NAMES):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: expected a numpy.ndarray (updated in place), got {type(a).__name__}")
        if a.dtype not in v.FLOAT_DTYPES:
            raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")
        if not a.flags.c_contiguous or not a.flags.writeable:
            raise ValueError(f"{name}: must be a writeable C-contiguous array (it is updated in place)")
    W = arrays[0]
    v.same_dtype(W, "W", **dict(zip(_NAMES[1:], arrays[1:])))
    v.check_ndim(W, "W", (2,), "a 2-D array of shape (V, D)")
    for a, name in zip(arrays[1:], _NAMES[1:]):
        want = W.shape if name in ("C", "gW", "gC") else W.shape[:1]
        if a.shape != want:
            raise ValueError(f"{name}: expected shape {want}, got {a.shape}")
    V = W.shape[0]
    for idx, name in ((i, "i"), (j, "j")):
        if isinstance(idx, (bool, np.bool_)) or not isinstance(idx, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(idx).__name__}")
        if not 0 <= idx < V:
            raise ValueError(f"{name}: index {idx} out of range [0, {V})")
    x = v.real_scalar(x, "x", min_value=0.0, strict_min=True)
    return (int(i), int(j), x, v.real_scalar(learning_rate, "learning_rate"),
            v.real_scalar(x_max, "x_max", min_value=0.0, strict_min=True), v.real_scalar(alpha, "alpha"))


def glove_update(W, C, bw, bc, gW, gC, gbw, gbc, i, j, x, learning_rate=0.05, x_max=100.0,
                 alpha=0.75):
    """One AdaGrad step of GloVe on the pair (i, j) with count x, in place on all eight
    arrays. Returns the pair's weighted squared error 0.5 f(x) diff^2."""
    i, j, x, lr, x_max, alpha = _glove_args((W, C, bw, bc, gW, gC, gbw, gbc), i, j, x,
                                            learning_rate, x_max, alpha)
    t = W.dtype.type
    diff = W[i] @ C[j] + bw[i] + bc[j] - np.log(t(x))
    if not np.isfinite(diff):
        return 0.0
    f = t(1) if x > x_max else t(x / x_max) ** t(alpha)
    fdiff = f * diff
    # glove.c's AdaGrad: vector accumulators sum the squared steps lr * clip(g); the biases
    # step by g / sqrt(G) with no learning rate (see the module docstring)
    u1 = t(lr) * np.clip(fdiff * C[j], -CLIP, CLIP).astype(W.dtype)
    u2 = t(lr) * np.clip(fdiff * W[i], -CLIP, CLIP).astype(W.dtype)
    W[i] -= u1 / np.sqrt(gW[i])
    C[j] -= u2 / np.sqrt(gC[j])
    gW[i] += u1 * u1
    gC[j] += u2 * u2
    bw[i] -= fdiff / np.sqrt(gbw[i])
    bc[j] -= fdiff / np.sqrt(gbc[j])
    gbw[i] += fdiff * fdiff
    gbc[j] += fdiff * fdiff
    return 0.5 * float(f) * float(diff) ** 2
