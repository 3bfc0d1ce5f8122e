"""Weight initialisers, as torch.nn.init (https://pytorch.org/docs/stable/nn.init.html).

Each returns a new array of `shape` in `dtype` (float32 by default) drawn from numpy's
Generator: ``seed`` is an int or a numpy.random.Generator (then it is used, and advanced,
directly). The same seed gives the same weights.

Fans follow torch's layout: a weight (out_features, in_features), or a convolution kernel
(out_channels, in_channels, *kernel): fan_in = shape[1] * prod(shape[2:]),
fan_out = shape[0] * prod(shape[2:]). Initialisers that need fans want at least 2 dimensions.

These are Python in both namespaces, honestly: the cost is numpy's random generation, which
is already compiled code, so a C++ copy would only change which generator is used.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v

__all__ = [
    "xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal",
    "orthogonal", "zeros", "ones",
]

_GAINS = {"linear": 1.0, "sigmoid": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}


def _shape(shape, min_ndim=0):
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, (bool, np.bool_)):
        shape = (int(shape),)
    if not isinstance(shape, (tuple, list)) or not all(
        isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) for d in shape
    ):
        raise TypeError(f"shape: expected a tuple of ints, got {shape!r}")
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"shape: dimensions must be >= 0, got {shape}")
    if len(shape) < min_ndim:
        raise ValueError(f"shape: expected at least {min_ndim} dimensions (fan in and fan out), got {shape}")
    return shape


def _dtype(dtype):
    d = np.dtype(dtype)
    if d not in v.FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {d}")
    return d


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(v.random_seed(seed))


def _fans(shape):
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _fan(shape, mode):
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"shape: {shape} has a zero {mode}")
    return fan


def _gain(nonlinearity, a):
    if nonlinearity == "leaky_relu":
        a = v.real_scalar(a, "a")
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity not in _GAINS:
        raise ValueError(f"nonlinearity: expected one of {sorted([*_GAINS, 'leaky_relu'])}, got {nonlinearity!r}")
    return _GAINS[nonlinearity]


def _uniform(rng, shape, bound, dtype):
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _normal(rng, shape, std, dtype):
    return (rng.standard_normal(size=shape) * std).astype(dtype)


def _xavier(shape, seed, gain, dtype, uniform):
    shape, dtype = _shape(shape, 2), _dtype(dtype)
    gain = v.real_scalar(gain, "gain", min_value=0.0)
    fan_in, fan_out = _fans(shape)
    if uniform:
        return _uniform(_rng(seed), shape, gain * math.sqrt(6.0 / max(1, fan_in + fan_out)), dtype)
    return _normal(_rng(seed), shape, gain * math.sqrt(2.0 / max(1, fan_in + fan_out)), dtype)


def xavier_uniform(shape, seed, gain=1.0, dtype=np.float32):
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    return _xavier(shape, seed, gain, dtype, uniform=True)


def xavier_normal(shape, seed, gain=1.0, dtype=np.float32):
    """Glorot & Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    return _xavier(shape, seed, gain, dtype, uniform=False)


def he_uniform(shape, seed, mode="fan_in", nonlinearity="relu", a=0.0, dtype=np.float32):
    """He et al. (2015), torch's kaiming_uniform_: U(-b, b) with b = gain * sqrt(3 / fan),
    fan = fan_in or fan_out (`mode`), gain = sqrt(2) for relu, sqrt(2 / (1 + a^2)) for
    leaky_relu with negative slope a."""
    shape, dtype = _shape(shape, 2), _dtype(dtype)
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / _fan(shape, mode))
    return _uniform(_rng(seed), shape, bound, dtype)


def he_normal(shape, seed, mode="fan_in", nonlinearity="relu", a=0.0, dtype=np.float32):
    """He et al. (2015), torch's kaiming_normal_: N(0, std^2) with std = gain / sqrt(fan)."""
    shape, dtype = _shape(shape, 2), _dtype(dtype)
    std = _gain(nonlinearity, a) / math.sqrt(_fan(shape, mode))
    return _normal(_rng(seed), shape, std, dtype)


def lecun_normal(shape, seed, dtype=np.float32):
    """LeCun et al. (1998): N(0, 1 / fan_in), the initialisation SELU networks assume
    (torch: kaiming_normal_(nonlinearity="linear"); not truncated, unlike Keras's)."""
    shape, dtype = _shape(shape, 2), _dtype(dtype)
    return _normal(_rng(seed), shape, 1.0 / math.sqrt(_fan(shape, "fan_in")), dtype)


def orthogonal(shape, seed, gain=1.0, dtype=np.float32):
    """Saxe et al. (2014), torch's orthogonal_: W viewed as (shape[0], prod(shape[1:])) has
    orthonormal rows (or columns, whichever are fewer), times gain. Made by QR of a standard
    normal matrix, with the signs of R's diagonal folded in so the result is uniform (Haar)."""
    shape, dtype = _shape(shape, 2), _dtype(dtype)
    gain = v.real_scalar(gain, "gain")
    rows, cols = shape[0], math.prod(shape[1:])
    if rows == 0 or cols == 0:
        return np.zeros(shape, dtype=dtype)
    a = _rng(seed).standard_normal((rows, cols))
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return (gain * q).reshape(shape).astype(dtype)


def zeros(shape, dtype=np.float32):
    """An array of zeros (biases, and the state of every optimizer)."""
    return np.zeros(_shape(shape), dtype=_dtype(dtype))


def ones(shape, dtype=np.float32):
    """An array of ones (batch-norm gamma)."""
    return np.ones(_shape(shape), dtype=_dtype(dtype))
