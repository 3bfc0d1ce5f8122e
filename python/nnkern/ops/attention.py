"""Attention (scaled dot-product and additive), forward and backward, computed by the C++
kernels; see nnkern.reference.attention for the equations.

Per batch item the kernels run the small products on Eigen's GEMM and the masked softmax in
between while the scores are in cache, one batch item per thread at a time; the additive
attention's projections W_q q and W_k k are single large products over the whole batch.
"""

from __future__ import annotations

import numpy as np

from .. import _buffers as _buf
from .. import _core
from .._cache import AttentionCache
from ..reference import attention as _ref
from ..reference.attention import (
    _additive_args,
    _check_cache,
    _check_dout,
    _mask_arg,
    _qkv_args,
    _scale_arg,
)

# The same names as the twin module: the kernel contract.
from ..reference.attention import __all__  # noqa: E402


def _mask_bytes(mask):
    return None if mask is None else mask.view(np.uint8)


def scaled_dot_product_attention(q, k, v, mask=None, scale=None):
    q, k, v_ = _qkv_args(q, k, v)
    B, Tq, D = q.shape
    Tk, Dv = v_.shape[1], v_.shape[2]
    mask = _mask_arg(mask, B, Tq, Tk)
    scale = _scale_arg(scale, D)
    out = _buf.empty((B, Tq, Dv), q.dtype)
    p = _buf.empty((B, Tq, Tk), q.dtype)
    _core.sdpa_forward(q, k, v_, _mask_bytes(mask), scale, out, p, B, Tq, Tk, D, Dv)
    return out, AttentionCache(kind="sdpa", q=q, k=k, v=v_, mask=mask, scale=scale, weights=p)


def scaled_dot_product_attention_backward(dout, cache):
    _check_cache(cache, "sdpa")
    dout = _check_dout(dout, cache)
    q, k, v_ = cache.q, cache.k, cache.v
    B, Tq, D = q.shape
    Tk, Dv = v_.shape[1], v_.shape[2]
    dq, dk, dv = _buf.empty_like(q), _buf.empty_like(k), _buf.empty_like(v_)
    _core.sdpa_backward(dout, q, k, v_, np.ascontiguousarray(cache.weights), cache.scale, dq, dk, dv,
                        B, Tq, Tk, D, Dv)
    return dq, dk, dv


def additive_attention(q, k, v, W_q, W_k, w_v, mask=None):
    q, k, v_, W_q, W_k, w_v = _additive_args(q, k, v, W_q, W_k, w_v)
    B, Tq, Dq = q.shape
    Tk, Dk, Dv, A = k.shape[1], k.shape[2], v_.shape[2], w_v.shape[0]
    mask = _mask_arg(mask, B, Tq, Tk)
    out = _buf.empty((B, Tq, Dv), q.dtype)
    p = _buf.empty((B, Tq, Tk), q.dtype)
    hidden = _buf.empty((B, Tq, Tk, A), q.dtype)
    _core.additive_forward(q, k, v_, W_q, W_k, w_v, _mask_bytes(mask), out, p, hidden,
                           B, Tq, Tk, Dq, Dk, Dv, A)
    cache = AttentionCache(kind="additive", q=q, k=k, v=v_, mask=mask, scale=1.0, weights=p,
                           W_q=W_q, W_k=W_k, w_v=w_v, hidden=hidden)
    return out, cache


def additive_attention_backward(dout, cache):
    _check_cache(cache, "additive")
    dout = _check_dout(dout, cache)
    q, k, v_ = cache.q, cache.k, cache.v
    B, Tq, Dq = q.shape
    Tk, Dk, Dv, A = k.shape[1], k.shape[2], v_.shape[2], cache.w_v.shape[0]
    dq, dk, dv = _buf.empty_like(q), _buf.empty_like(k), _buf.empty_like(v_)
    dW_q, dW_k, dw_v = _buf.empty_like(cache.W_q), _buf.empty_like(cache.W_k), _buf.empty_like(cache.w_v)
    _core.additive_backward(dout, q, k, v_, cache.W_q, cache.W_k, cache.w_v,
                            np.ascontiguousarray(cache.weights), np.ascontiguousarray(cache.hidden),
                            dq, dk, dv, dW_q, dW_k, dw_v, B, Tq, Tk, Dq, Dk, Dv, A)
    return dq, dk, dv, dW_q, dW_k, dw_v


for _f in (scaled_dot_product_attention, scaled_dot_product_attention_backward, additive_attention,
           additive_attention_backward):
    _f.__doc__ = getattr(_ref, _f.__name__).__doc__
del _f
