"""Diagnostics for the vanishing and exploding gradient problem.

In a recurrent network the gradient of a loss at the last step with respect to an earlier
hidden state is a product of one Jacobian per step in between,

    dL/dh_t = dL/dh_{T-1} * prod_{s=t+1}^{T-1} dh_s/dh_{s-1},

so its norm shrinks or grows roughly geometrically with the distance T-1-t: a tanh or
sigmoid RNN's Jacobians are damped by the nonlinearity's slope (sigmoid's is at most 1/4)
and vanish; a ReLU RNN with large recurrent weights explodes. The gated cells (GRU, LSTM)
carry state through an additive path whose gate can stay near 1, so their gradients survive
many more steps. Clipping the propagated gradient's norm at every step bounds the explosion
(it cannot undo vanishing).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .recurrent import _Recurrent

__all__ = ["hidden_gradient_norms"]


def hidden_gradient_norms(layer, x, h0=None, dh_last=None, clip=None):
    """||dL/dh_t|| for every step t of a one-layer, one-direction recurrent layer, where
    L = sum(dh_last * h_{T-1}) is a loss on the final hidden state.

    layer : nn.RNN, nn.GRU or nn.LSTM with num_layers=1 and bidirectional=False.
    x : (T, B, I) inputs (time-major).  h0 : initial state (B, H), for the LSTM the pair
        (h0, c0); None for zeros.
    dh_last : (B, H) dL/dh_{T-1}; default all ones.
    clip : None, or a maximum norm: the gradient carried from step to step (dh and, for the
        LSTM, dc, each over the whole batch) is scaled down to that norm whenever it is larger,
        as per-step gradient clipping does in truncated BPTT.
    Returns a float64 array (T,): entry t is the Frobenius norm over the batch of dL/dh_t
    (h_t = the state after step t), with the clipping applied.

    The backward runs one step at a time through the fast kernels, each step from the saved
    state before it, so the carried gradient is exact (chunked BPTT equals full BPTT) and can
    be clipped in between.
    """
    if not isinstance(layer, _Recurrent) or layer.num_layers != 1 or layer.bidirectional:
        raise ValueError("layer: expected an nn.RNN, nn.GRU or nn.LSTM with one layer and one direction")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip: expected a positive norm or None, got {clip}")
    x = np.ascontiguousarray(x)
    if x.ndim != 3:
        raise ValueError(f"x: expected a (T, B, I) array, got shape {x.shape}")
    T, B, _ = x.shape
    H = layer.hidden_size
    lstm = layer.kind == "lstm"
    h0_, c0_ = (None, None) if h0 is None else (tuple(h0) if lstm else (h0, None))
    # states before every step, from one forward
    p = layer._params
    W_ih, W_hh, b_ih, b_hh = p["weight_ih_l0"], p["weight_hh_l0"], p.get("bias_ih_l0"), p.get("bias_hh_l0")
    if lstm:
        cache = ops.lstm_forward(x, h0_, c0_, W_ih, W_hh, b_ih, b_hh)[3]
    elif layer.kind == "gru":
        cache = ops.gru_forward(x, h0_, W_ih, W_hh, b_ih, b_hh)[2]
    else:
        cache = ops.rnn_forward(x, h0_, W_ih, W_hh, b_ih, b_hh, layer.nonlinearity)[2]
    dh = np.ones((B, H), x.dtype) if dh_last is None else np.asarray(dh_last, x.dtype)
    if dh.shape != (B, H):
        raise ValueError(f"dh_last: expected shape {(B, H)}, got {dh.shape}")
    dc = np.zeros((B, H), x.dtype) if lstm else None

    def clipped(g):
        if clip is None:
            return g
        n = float(np.sqrt(np.sum(g.astype(np.float64) ** 2)))
        return g * (clip / n) if n > clip else g

    norms = np.zeros(T)
    for t in reversed(range(T)):
        dh = clipped(dh)
        norms[t] = np.sqrt(np.sum(dh.astype(np.float64) ** 2))
        if t == 0:
            break
        xt = x[t:t + 1]
        if lstm:
            dc = clipped(dc)
            c1 = ops.lstm_forward(xt, cache.h[t], cache.c[t], W_ih, W_hh, b_ih, b_hh)[3]
            _, dh, dc, *_ = ops.lstm_backward(None, dh, dc, c1)
        elif layer.kind == "gru":
            c1 = ops.gru_forward(xt, cache.h[t], W_ih, W_hh, b_ih, b_hh)[2]
            _, dh, *_ = ops.gru_backward(None, dh, c1)
        else:
            c1 = ops.rnn_forward(xt, cache.h[t], W_ih, W_hh, b_ih, b_hh, layer.nonlinearity)[2]
            _, dh, *_ = ops.rnn_backward(None, dh, c1)
    return norms
