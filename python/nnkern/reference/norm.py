"""Batch normalization in plain NumPy, as torch.nn.BatchNorm1d: the definition of correct.

x is (N, C) or (N, C, L): C channels, each normalized over its K = N (or N L) values.

    training:  mean, var = batch mean and biased variance per channel
               running_mean = (1 - momentum) running_mean + momentum mean
               running_var  = (1 - momentum) running_var + momentum var K / (K - 1)   (unbiased)
    eval:      mean, var = running_mean, running_var
    x_hat = (x - mean) / sqrt(var + eps);   y = gamma x_hat + beta

Statistics are computed in float64 and rounded to x's dtype. Without running statistics
(running_mean = running_var = None, torch's track_running_stats=False) batch statistics are
used in both modes. gamma = beta = None is torch's affine=False (gamma 1, beta 0).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from .. import _validate as v

__all__ = ["batchnorm_forward", "batchnorm_backward"]


class BatchNormCache(NamedTuple):
    """What batchnorm_backward needs from the forward (the same type from ops and reference).

    x       the forward's input (not a copy: do not modify it before the backward)
    mean    (C,) the mean it normalized with;  invstd (C,) 1 / sqrt(var + eps)
    gamma   (C,) or None;  batch_stats  True when mean and var were this batch's
    """

    x: np.ndarray
    mean: np.ndarray
    invstd: np.ndarray
    gamma: Optional[np.ndarray]
    batch_stats: bool


def _forward_args(x, gamma, beta, running_mean, running_var, training, momentum, eps):
    x = v.float_array(x, "x")
    v.check_ndim(x, "x", (2, 3), "an array of shape (N, C) or (N, C, L)")
    C = x.shape[1]
    out = []
    for name, a in (("gamma", gamma), ("beta", beta)):
        if a is not None:
            a = v.float_array(a, name)
            v.same_dtype(x, "x", **{name: a})
            if a.shape != (C,):
                raise ValueError(f"{name}: expected shape ({C},) (x's channels), got {a.shape}")
        out.append(a)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean, running_var: give both or neither (None)")
    for name, a in (("running_mean", running_mean), ("running_var", running_var)):
        if a is not None:
            v.inplace_array(a, name)
            v.same_dtype(x, "x", **{name: a})
            if a.shape != (C,):
                raise ValueError(f"{name}: expected shape ({C},) (x's channels), got {a.shape}")
    training = v.bool_flag(training, "training")
    momentum = v.unit_scalar(momentum, "momentum", closed=True)
    eps = v.real_scalar(eps, "eps", min_value=0.0, strict_min=True)
    K = x.shape[0] * (x.shape[2] if x.ndim == 3 else 1)
    if training and K < 2:
        raise ValueError(f"x: expected more than 1 value per channel when training, got shape {x.shape}")
    return x, out[0], out[1], training, momentum, eps


def _backward_args(dy, cache):
    if not isinstance(cache, BatchNormCache):
        raise TypeError(f"cache: expected the BatchNormCache from batchnorm_forward, got {type(cache).__name__}")
    dy = v.float_array(dy, "dy")
    v.same_dtype(cache.x, "x", dy=dy)
    v.same_shape(cache.x, "x", dy=dy)
    return dy


def _channel_shape(x):
    return (1, x.shape[1]) + ((1,) if x.ndim == 3 else ())


def _axes(x):
    return (0,) if x.ndim == 2 else (0, 2)


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """Batch normalization forward -> (y, cache); updates the running statistics in place
    in training mode (see the module docstring for the equations).

    x : (N, C) or (N, C, L).  gamma, beta : (C,) or None.  running_mean, running_var : (C,)
    arrays updated in place, or both None.  Returns y of x's shape and the cache for
    batchnorm_backward. Training needs more than one value per channel (as torch).
    """
    x, gamma, beta, training, momentum, eps = _forward_args(
        x, gamma, beta, running_mean, running_var, training, momentum, eps)
    shape, axes = _channel_shape(x), _axes(x)
    batch_stats = training or running_mean is None
    if batch_stats:
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=axes)
        var = ((x64 - mean.reshape(shape)) ** 2).mean(axis=axes)
        if training and running_mean is not None:
            K = x.size // x.shape[1]
            running_mean[...] = (1 - momentum) * running_mean.astype(np.float64) + momentum * mean
            running_var[...] = (1 - momentum) * running_var.astype(np.float64) + momentum * var * K / (K - 1)
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    mean_t = mean.astype(x.dtype)
    invstd_t = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    x_hat = (x - mean_t.reshape(shape)) * invstd_t.reshape(shape)
    y = x_hat if gamma is None else x_hat * gamma.reshape(shape)
    if beta is not None:
        y = y + beta.reshape(shape)
    return y.astype(x.dtype, copy=False), BatchNormCache(x, mean_t, invstd_t, gamma, batch_stats)


def batchnorm_backward(dy, cache):
    """Gradients of batchnorm_forward given dy = dL/dy -> (dx, dgamma, dbeta).

        dbeta = sum dy;   dgamma = sum dy x_hat          (over N and L, per channel)
        with batch statistics (training):  dx = gamma invstd (dy - mean(dy) - x_hat mean(dy x_hat))
        with running statistics (eval):    dx = gamma invstd dy

    dgamma and dbeta are returned (shape (C,)) even when the forward had gamma = beta = None.
    Sums are taken in float64.
    """
    dy = _backward_args(dy, cache)
    x, shape, axes = cache.x, _channel_shape(cache.x), _axes(cache.x)
    x_hat = (x.astype(np.float64) - cache.mean.astype(np.float64).reshape(shape)) * cache.invstd.reshape(shape)
    dy64 = dy.astype(np.float64)
    dbeta = dy64.sum(axis=axes)
    dgamma = (dy64 * x_hat).sum(axis=axes)
    g = np.ones(x.shape[1]) if cache.gamma is None else cache.gamma.astype(np.float64)
    scale = (g * cache.invstd).reshape(shape)
    if cache.batch_stats:
        K = x.size // x.shape[1] if x.size else 1
        dx = scale * (dy64 - (dbeta / K).reshape(shape) - x_hat * (dgamma / K).reshape(shape))
    else:
        dx = scale * dy64
    return dx.astype(x.dtype), dgamma.astype(x.dtype), dbeta.astype(x.dtype)
