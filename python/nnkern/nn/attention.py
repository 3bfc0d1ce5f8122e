"""Attention layers over nnkern.ops.scaled_dot_product_attention / additive_attention.

    att = Attention("scaled_dot")                       # or "dot", or
    att = Attention("additive", query_size=Dq, key_size=Dk, attn_size=A)
    out = att.forward(q, k, v=None, mask=None)          # v defaults to k
    dq, dk, dv = att.backward(dout)                     # dv is None when v was k (added into dk)
    att.weights                                         # (B, Tq, Tk) of the last forward

Shapes: q (B, Tq, Dq), k (B, Tk, Dk), v (B, Tk, Dv), out (B, Tq, Dv); mask boolean
(B, Tq, Tk) or (B, Tk), True where a query may attend. "dot" and "scaled_dot" need Dq = Dk;
"dot" uses scale 1 (Luong's dot score), "scaled_dot" 1/sqrt(Dk).
The additive form has parameters W_q (A, Dq), W_k (A, Dk), w_v (A,).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .layers import _dtype, _positive_int, _rng
from .module import Module

__all__ = ["Attention"]

_KINDS = ("dot", "scaled_dot", "additive")


class Attention(Module):
    def __init__(self, kind="scaled_dot", query_size=None, key_size=None, attn_size=None, seed=None,
                 dtype=np.float32):
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind: expected one of {_KINDS}, got {kind!r}")
        self.kind = kind
        if kind == "additive":
            Dq = _positive_int(query_size, "query_size")
            Dk = _positive_int(key_size if key_size is not None else query_size, "key_size")
            A = _positive_int(attn_size if attn_size is not None else Dq, "attn_size")
            rng, dt = _rng(seed), _dtype(dtype)
            self.add_parameter("W_q", rng.uniform(-1, 1, (A, Dq)).astype(dt) / np.sqrt(Dq).astype(dt))
            self.add_parameter("W_k", rng.uniform(-1, 1, (A, Dk)).astype(dt) / np.sqrt(Dk).astype(dt))
            self.add_parameter("w_v", rng.uniform(-1, 1, A).astype(dt) / np.sqrt(A).astype(dt))
        self._cache = None
        self._v_is_k = False

    @property
    def weights(self):
        return None if self._cache is None else self._cache.weights

    def forward(self, q, k, v=None, mask=None):
        self._v_is_k = v is None
        v = k if v is None else v
        if self.kind == "additive":
            out, self._cache = ops.additive_attention(q, k, v, self.W_q, self.W_k, self.w_v, mask)
        else:
            scale = 1.0 if self.kind == "dot" else None
            out, self._cache = ops.scaled_dot_product_attention(q, k, v, mask, scale)
        return out

    def backward(self, dout):
        if self._cache is None:
            raise RuntimeError("Attention.backward called before forward")
        if self.kind == "additive":
            dq, dk, dv, dWq, dWk, dwv = ops.additive_attention_backward(dout, self._cache)
            self._grads["W_q"] += dWq
            self._grads["W_k"] += dWk
            self._grads["w_v"] += dwv
        else:
            dq, dk, dv = ops.scaled_dot_product_attention_backward(dout, self._cache)
        if self._v_is_k:
            return dq, dk + dv, None
        return dq, dk, dv

    def extra_repr(self):
        return f"kind={self.kind!r}"
