"""Inverted dropout in plain NumPy, with the counter-based mask the C++ kernel draws.

    keep_i = u_i < floor((1 - p) 2^32)      u_i a 32-bit uniform from (seed, i)
    y = x / (1 - p) where kept, 0 elsewhere       (training; eval returns x unchanged)

The uniforms come from SplitMix64's output function (Steele, Lea and Flood, OOPSLA 2014)
applied to a counter: with G = 0x9E3779B97F4A7C15 and all arithmetic mod 2^64,

    key = mix(seed + G);   z_j = mix(key + j G);   u_{2j} = low 32 bits of z_j,  u_{2j+1} = high 32 bits
    mix(z): z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;  z = (z ^ z >> 27) * 0x94D049BB133111EB;  z ^ z >> 31

so the mask depends on the seed and the element's flat index only: the same for any number of
threads, and reproduced here exactly. 1 / (1 - p) is rounded to x's dtype before multiplying.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v

__all__ = ["dropout", "dropout_backward"]

_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    # uint64 array arithmetic wraps mod 2^64 (only NumPy scalars warn on overflow)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _p_arg(p) -> float:
    p = v.real_scalar(p, "p")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"p: expected a probability in [0, 1), got {p}")
    return p


def _scale(p, dtype):
    return np.dtype(dtype).type(1.0 / (1.0 - p))


def _dropout_args(x, p, seed, training):
    x = v.float_array(x, "x")
    return x, _p_arg(p), v.random_seed(seed), v.bool_flag(training, "training")


def _backward_args(dy, mask, p):
    dy = v.float_array(dy, "dy")
    p = _p_arg(p)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise TypeError(f"mask: expected the bool mask from dropout, got dtype {mask.dtype}")
        v.same_shape(dy, "dy", mask=mask)
        mask = np.asarray(mask, order="C")
    return dy, mask, p


def _keep_mask(shape, p, seed) -> np.ndarray:
    """The keep mask (bool, `shape`) that dropout draws for (p, seed)."""
    n = math.prod(shape)
    if p == 0:
        return np.ones(shape, dtype=bool)
    key = _mix(np.array([seed], dtype=np.uint64) + _G)
    j = np.arange((n + 1) // 2, dtype=np.uint64)
    z = _mix(key + j * _G)
    u = z.astype("<u8").view("<u4")[:n]  # little-endian halves: low for 2j, high for 2j + 1
    return (u < np.uint32(math.floor((1.0 - p) * 2.0**32))).reshape(shape)


def dropout(x, p, seed, training=True):
    """Inverted dropout -> (y, mask).

    x : any shape.  p : drop probability in [0, 1).  seed : int in [0, 2**64) or a numpy
    Generator (one draw from it).  Training: mask = the keep mask (bool, x's shape) and
    y = x / (1 - p) where kept, 0 elsewhere; the same seed gives the same mask for any thread
    count.  training=False returns (a copy of x, None).
    """
    x, p, seed, training = _dropout_args(x, p, seed, training)
    if not training:
        return x.copy(), None
    mask = _keep_mask(x.shape, p, seed)
    y = np.where(mask, x * _scale(p, x.dtype), x.dtype.type(0))
    return y.astype(x.dtype, copy=False), mask


def dropout_backward(dy, mask, p):
    """Gradient of dropout: dx = dy / (1 - p) where mask, 0 elsewhere (mask None: dx = dy)."""
    dy, mask, p = _backward_args(dy, mask, p)
    if mask is None:
        return dy.copy()
    return np.where(mask, dy * _scale(p, dy.dtype), dy.dtype.type(0)).astype(dy.dtype, copy=False)
