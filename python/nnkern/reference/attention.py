"""Attention in plain NumPy: scaled dot-product (Vaswani et al. 2017) and additive (Bahdanau
et al. 2015), forward and backward.

Letters: B batch, Tq query steps, Tk key/value steps, D query/key features, Dv value
features, A the additive attention's hidden size.

Masks are boolean, True where a query may attend to a key: shape (B, Tq, Tk), or (B, Tk) for
a key-padding mask shared by every query. A query row with nothing to attend to gets zero
weights, a zero output and zero gradients (not NaN, which is what a softmax over nothing
would give).
"""

from __future__ import annotations

import numpy as np

from .. import _validate as v
from .._cache import AttentionCache

__all__ = [
    "scaled_dot_product_attention",
    "scaled_dot_product_attention_backward",
    "additive_attention",
    "additive_attention_backward",
]


# ---------------------------------------------------------------------------------------
# Argument checks (shared with nnkern.ops)


def _qkv_args(q, k, v_, q_name="q", k_name="k", same_d=True):
    q = v.float_array(q, q_name)
    k = v.float_array(k, k_name)
    v_ = v.float_array(v_, "v")
    v.same_dtype(q, q_name, **{k_name: k, "v": v_})
    for a, name, what in ((q, q_name, "(B, Tq, D)"), (k, k_name, "(B, Tk, D)"), (v_, "v", "(B, Tk, Dv)")):
        v.check_ndim(a, name, (3,), f"a 3-D array of shape {what}")
    if k.shape[0] != q.shape[0] or v_.shape[0] != q.shape[0]:
        raise ValueError(
            f"batch sizes differ: {q_name} {q.shape}, {k_name} {k.shape}, v {v_.shape} (expected the same B)"
        )
    if v_.shape[1] != k.shape[1]:
        raise ValueError(f"v: {v_.shape[1]} steps do not match {k_name}'s {k.shape[1]} (v is (B, Tk, Dv))")
    if same_d and k.shape[2] != q.shape[2]:
        raise ValueError(f"{k_name}: feature size {k.shape[2]} does not match {q_name}'s {q.shape[2]}")
    return q, k, v_


def _mask_arg(mask, B, Tq, Tk):
    """The mask as a C-contiguous bool array (B, Tq, Tk) or (B, Tk), or None."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise TypeError(f"mask: expected a boolean array (True = may attend), got dtype {m.dtype}")
    if m.shape not in ((B, Tq, Tk), (B, Tk)):
        raise ValueError(f"mask: expected shape {(B, Tq, Tk)} or {(B, Tk)}, got {m.shape}")
    return np.ascontiguousarray(m)


def _scale_arg(scale, D):
    if scale is None:
        return 1.0 / np.sqrt(D) if D > 0 else 1.0
    return v.real_scalar(scale, "scale")


def _full_mask(mask, Tq):
    """(B, Tq, Tk) view of a (B, Tq, Tk) or (B, Tk) mask."""
    return mask if mask.ndim == 3 else np.broadcast_to(mask[:, None, :], (mask.shape[0], Tq, mask.shape[1]))


def _masked_softmax(s, mask):
    """softmax over the last axis of s (B, Tq, Tk) where mask allows; rows with nothing
    allowed are all zero."""
    if mask is not None:
        s = np.where(_full_mask(mask, s.shape[1]), s, -np.inf)
    if s.shape[-1] == 0:  # no keys at all: nothing to attend to
        return np.zeros_like(s)
    m = s.max(axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)  # an empty row: exp(-inf - 0) = 0 everywhere
    e = np.exp(s - m)
    tot = e.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tot > 0, e / np.where(tot > 0, tot, 1), 0.0)
    return p.astype(s.dtype, copy=False)


def _softmax_backward(dp, p):
    # p = softmax(s):  ds = p * (dp - sum_j dp_j p_j); zero where p is (masked or empty rows)
    return p * (dp - (dp * p).sum(axis=-1, keepdims=True))


def _check_dout(dout, cache):
    dout = v.float_array(dout, "dout")
    v.same_dtype(cache.q, "the forward's q", dout=dout)
    expected = (cache.q.shape[0], cache.q.shape[1], cache.v.shape[2])
    if dout.shape != expected:
        raise ValueError(f"dout: expected shape {expected} (B, Tq, Dv), got {dout.shape}")
    return dout


def _check_cache(cache, kind):
    if not isinstance(cache, AttentionCache) or cache.kind != kind:
        raise TypeError(f"cache: expected the AttentionCache of a {kind} forward, got {type(cache).__name__}")


# ---------------------------------------------------------------------------------------
# Scaled dot-product attention


def scaled_dot_product_attention(q, k, v, mask=None, scale=None):
    """Scaled dot-product attention, softmax(q k^T * scale) v, with an optional boolean mask.

    q : ndarray (B, Tq, D) queries.
    k : ndarray (B, Tk, D) keys.
    v : ndarray (B, Tk, Dv) values.
    mask : bool ndarray (B, Tq, Tk) or (B, Tk), True where a query may attend; None for all.
    scale : float, default 1 / sqrt(D).

        S = scale * q @ k^T                 (B, Tq, Tk)
        P = softmax over Tk of S, masked    (attention weights; rows with nothing allowed: 0)
        out = P @ v                         (B, Tq, Dv)

    Same results as torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask,
    scale=scale) wherever a row has something to attend to.
    Returns (out, cache); cache.weights is P.
    """
    q, k, v_ = _qkv_args(q, k, v)
    B, Tq, D = q.shape
    mask = _mask_arg(mask, B, Tq, k.shape[1])
    scale = _scale_arg(scale, D)
    s = (q @ k.transpose(0, 2, 1)) * q.dtype.type(scale)
    p = _masked_softmax(s, mask)
    out = p @ v_
    return out, AttentionCache(kind="sdpa", q=q, k=k, v=v_, mask=mask, scale=scale, weights=p)


def scaled_dot_product_attention_backward(dout, cache):
    """Gradients of scaled_dot_product_attention given dout = dL/dout (B, Tq, Dv).

        dv = P^T @ dout
        dP = dout @ v^T
        dS = P * (dP - rowsum(dP * P))      (softmax backward)
        dq = scale * dS @ k,   dk = scale * dS^T @ q
    Returns (dq, dk, dv).
    """
    _check_cache(cache, "sdpa")
    dout = _check_dout(dout, cache)
    p = cache.weights
    dv = p.transpose(0, 2, 1) @ dout
    dp = dout @ cache.v.transpose(0, 2, 1)
    ds = _softmax_backward(dp, p) * p.dtype.type(cache.scale)
    dq = ds @ cache.k
    dk = ds.transpose(0, 2, 1) @ cache.q
    return dq, dk, dv


# ---------------------------------------------------------------------------------------
# Additive (Bahdanau) attention


def _additive_args(q, k, v_, W_q, W_k, w_v):
    q, k, v_ = _qkv_args(q, k, v_, same_d=False)
    W_q = v.float_array(W_q, "W_q")
    W_k = v.float_array(W_k, "W_k")
    w_v = v.float_array(w_v, "w_v")
    v.same_dtype(q, "q", W_q=W_q, W_k=W_k, w_v=w_v)
    v.check_ndim(W_q, "W_q", (2,), "a 2-D array of shape (A, Dq)")
    v.check_ndim(W_k, "W_k", (2,), "a 2-D array of shape (A, Dk)")
    v.check_ndim(w_v, "w_v", (1,), "a 1-D array of shape (A,)")
    A = w_v.shape[0]
    if W_q.shape != (A, q.shape[2]):
        raise ValueError(f"W_q: expected shape {(A, q.shape[2])} (A, Dq), got {W_q.shape}")
    if W_k.shape != (A, k.shape[2]):
        raise ValueError(f"W_k: expected shape {(A, k.shape[2])} (A, Dk), got {W_k.shape}")
    return q, k, v_, W_q, W_k, w_v


def additive_attention(q, k, v, W_q, W_k, w_v, mask=None):
    """Additive attention (Bahdanau et al. 2015): score = w_v . tanh(W_q q_i + W_k k_j).

    q : ndarray (B, Tq, Dq) queries (e.g. decoder states).
    k : ndarray (B, Tk, Dk) keys (e.g. encoder outputs).
    v : ndarray (B, Tk, Dv) values (often the keys again).
    W_q : ndarray (A, Dq);  W_k : ndarray (A, Dk);  w_v : ndarray (A,).
    mask : bool ndarray (B, Tq, Tk) or (B, Tk), True where a query may attend; None for all.

        hidden[b, i, j] = tanh(W_q q[b, i] + W_k k[b, j])      (B, Tq, Tk, A)
        S[b, i, j]      = w_v . hidden[b, i, j]
        P = softmax over Tk of S, masked;  out = P @ v          (B, Tq, Dv)

    Returns (out, cache); cache.weights is P and cache.hidden the tanh features.
    """
    q, k, v_, W_q, W_k, w_v = _additive_args(q, k, v, W_q, W_k, w_v)
    B, Tq, _ = q.shape
    mask = _mask_arg(mask, B, Tq, k.shape[1])
    qp = q @ W_q.T  # (B, Tq, A)
    kp = k @ W_k.T  # (B, Tk, A)
    hidden = np.tanh(qp[:, :, None, :] + kp[:, None, :, :])
    s = hidden @ w_v
    p = _masked_softmax(s, mask)
    out = p @ v_
    cache = AttentionCache(kind="additive", q=q, k=k, v=v_, mask=mask, scale=1.0, weights=p,
                           W_q=W_q, W_k=W_k, w_v=w_v, hidden=hidden)
    return out, cache


def additive_attention_backward(dout, cache):
    """Gradients of additive_attention given dout = dL/dout (B, Tq, Dv).

        dv = P^T @ dout;   dS = softmax backward of (dout @ v^T)
        dhidden = dS[..., None] * w_v * (1 - hidden^2)          (B, Tq, Tk, A)
        dw_v = sum over b, i, j of dS * hidden
        dqp = sum over j of dhidden,  dkp = sum over i of dhidden
        dq = dqp @ W_q,  dk = dkp @ W_k,  dW_q = sum_b dqp^T q,  dW_k = sum_b dkp^T k
    Returns (dq, dk, dv, dW_q, dW_k, dw_v).
    """
    _check_cache(cache, "additive")
    dout = _check_dout(dout, cache)
    p, hidden = cache.weights, cache.hidden
    dv = p.transpose(0, 2, 1) @ dout
    ds = _softmax_backward(dout @ cache.v.transpose(0, 2, 1), p)  # (B, Tq, Tk)
    dw_v = np.einsum("bij,bija->a", ds, hidden)
    dh = ds[..., None] * cache.w_v * (1 - hidden * hidden)
    dqp = dh.sum(axis=2)  # (B, Tq, A)
    dkp = dh.sum(axis=1)  # (B, Tk, A)
    dq = dqp @ cache.W_q
    dk = dkp @ cache.W_k
    A = cache.w_v.shape[0]
    dW_q = dqp.reshape(-1, A).T @ cache.q.reshape(-1, cache.q.shape[2])
    dW_k = dkp.reshape(-1, A).T @ cache.k.reshape(-1, cache.k.shape[2])
    return dq, dk, dv, dW_q, dW_k, dw_v.astype(p.dtype, copy=False)
