"""Recurrent layers (vanilla RNN, GRU, LSTM), forward and backward, computed by the C++ kernels.

Same names, signatures and results as :mod:`nnkern.reference.recurrent`, whose docstrings carry
the equations and shapes. Arguments are checked by the twin's own helpers (same errors, same
messages); non-contiguous inputs are copied once. The forward fills the same
:class:`nnkern._cache.RecurrentCache` layout as the twin, so a cache from either implementation
works with either backward.

How the kernels are fast (cpp/kernels/recurrent.cpp): the weights are packed once per call for
a small GEMM micro-kernel. In the forward's time loop each thread owns a slice of the hidden
units and per step multiplies [x_t | h_{t-1}] by its slice of [W_ih | W_hh]^T, then finishes
the gate math for those units in the same pass; sequences that have ended drop out of the
product. The backward runs the dh and dx products per step and gets dW_ih, dW_hh and the bias
gradients from one large product over the valid steps at the end. Results do not depend on
the number of threads. Scratch memory (packed weights, gate gradients) is kept per calling
thread between calls, like a framework's workspace.
"""

from __future__ import annotations

import sys

import numpy as np

from .. import _buffers as _buf
from .. import _core
from .._cache import RecurrentCache
from ..reference.recurrent import _backward_args, _check_nonlinearity, _forward_args

# The same names as the twin module: the kernel contract.
from ..reference.recurrent import __all__  # noqa: E402


def _forward(kind, nonlinearity, a):
    T, B, I, H, G = a.T, a.B, a.I, a.H, a.G
    dt = a.x.dtype
    out = _buf.empty((T, B, H), dt)
    hT = _buf.empty((B, H), dt)
    h = _buf.empty((T + 1, B, H), dt)
    c = _buf.empty((T + 1, B, H), dt) if kind == "lstm" else None
    cT = _buf.empty((B, H), dt) if kind == "lstm" else None
    gates = _buf.empty((T, B, G * H), dt) if kind != "rnn" else None
    hn = _buf.empty((T, B, H), dt) if kind == "gru" else None
    _core.recurrent_forward(
        kind, nonlinearity or "tanh", a.x, a.h0, a.c0, a.W_ih, a.W_hh,
        a.b_ih if a.has_b_ih else None, a.b_hh if a.has_b_hh else None,
        a.lengths, a.reverse, out, hT, cT, h, c, gates, hn, T, B, I, H,
    )
    cache = RecurrentCache(
        kind=kind, nonlinearity=nonlinearity, reverse=a.reverse, x=a.x, W_ih=a.W_ih, W_hh=a.W_hh,
        has_b_ih=a.has_b_ih, has_b_hh=a.has_b_hh, lengths=a.lengths, h=h, c=c, gates=gates, hn=hn,
    )
    if kind == "lstm":
        return out, hT, cT, cache
    return out, hT, cache


def _contiguous(a):
    return None if a is None else np.ascontiguousarray(a)


def _backward(kind, dout, dhT, dcT, cache):
    g = _backward_args(kind, cache, dout, dhT, dcT)
    T, B, I, H, G = cache.T, cache.B, cache.I, cache.H, cache.G
    dt = cache.dtype
    # None upstream gradients are passed as None (zero) rather than as arrays of zeros
    dout = None if dout is None else g.dout
    dhT = None if dhT is None else g.dhT
    dcT = None if (dcT is None or kind != "lstm") else g.dcT
    lengths = None if cache.lengths is None else np.ascontiguousarray(cache.lengths, dtype=np.int64)
    dx = _buf.empty((T, B, I), dt)
    dh0 = _buf.empty((B, H), dt)
    dc0 = _buf.empty((B, H), dt) if kind == "lstm" else None
    dW_ih = _buf.empty((G * H, I), dt)
    dW_hh = _buf.empty((G * H, H), dt)
    db_ih = _buf.empty(G * H, dt)
    db_hh = _buf.empty(G * H, dt)
    _core.recurrent_backward(
        kind, cache.nonlinearity or "tanh", dout, dhT, dcT,
        _contiguous(cache.x), _contiguous(cache.W_ih), _contiguous(cache.W_hh), lengths,
        bool(cache.reverse), _contiguous(cache.h), _contiguous(cache.c), _contiguous(cache.gates),
        _contiguous(cache.hn), dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh, T, B, I, H,
    )
    if kind == "lstm":
        return dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh
    return dx, dh0, dW_ih, dW_hh, db_ih, db_hh


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None, reverse=False):
    a = _forward_args("lstm", x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
    return _forward("lstm", None, a)


def lstm_backward(dout, dhT, dcT, cache):
    return _backward("lstm", dout, dhT, dcT, cache)


def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, reverse=False):
    a = _forward_args("gru", x, h0, None, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
    return _forward("gru", None, a)


def gru_backward(dout, dhT, cache):
    return _backward("gru", dout, dhT, None, cache)


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh", lengths=None, reverse=False):
    nonlinearity = _check_nonlinearity(nonlinearity)
    a = _forward_args("rnn", x, h0, None, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
    return _forward("rnn", nonlinearity, a)


def rnn_backward(dout, dhT, cache):
    return _backward("rnn", dout, dhT, None, cache)


# The twins' docstrings (equations, shapes) document both implementations.
_ref_module = sys.modules[_forward_args.__module__]
for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref_module, _name).__doc__
del _name
