"""Recurrent layers: RNN, GRU and LSTM with num_layers, bidirectional, batch_first, dropout
between layers and padded batches (lengths), built on the nnkern.ops recurrent kernels.

Parameters carry torch.nn.RNN/GRU/LSTM's names and shapes (weight_ih_l0, weight_hh_l0,
bias_ih_l0, bias_hh_l0, then the "_reverse" set of a bidirectional layer, for every layer),
so a torch state_dict loads unchanged and ours loads into torch.

Shapes: T steps, B batch, I input features, H hidden size, L layers, D directions (1 or 2).
    forward(x, state=None, lengths=None) -> (out, state)
        x (T, B, I), or (B, T, I) with batch_first; out (T, B, D*H) (or batch first);
        state h (L*D, B, H), for LSTM the pair (h, c); zeros when None.
        With lengths (B,), steps t >= lengths[b] are padding: zero output, no effect on the
        state (the returned state of each sequence is at its own last step), no gradient.
    backward(dout, dstate=None) -> (dx, dstate0)
        dout like out; dstate like state (None, or None parts: no gradient from there).
        Parameter gradients are added into .grads.
"""

from __future__ import annotations

import numpy as np

from .. import ops
from .layers import _dtype, _positive_int, _rng
from .module import Module

__all__ = ["RNN", "GRU", "LSTM"]

_GATES = {"lstm": 4, "gru": 3, "rnn": 1}


class _Recurrent(Module):
    kind = ""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, seed=None, dtype=np.float32, nonlinearity=None):
        super().__init__()
        self.input_size = _positive_int(input_size, "input_size")
        self.hidden_size = H = _positive_int(hidden_size, "hidden_size")
        self.num_layers = _positive_int(num_layers, "num_layers")
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {dropout}")
        self.bidirectional = bool(bidirectional)
        self.nonlinearity = nonlinearity
        dt = _dtype(dtype)
        self._rng = _rng(seed)
        k = 1.0 / np.sqrt(H)
        G = _GATES[self.kind]
        for layer in range(self.num_layers):
            I = self.input_size if layer == 0 else H * self.directions
            for sfx in self._suffixes(layer):
                # torch's default: every weight and bias U(-1/sqrt(H), 1/sqrt(H))
                self.add_parameter("weight_ih" + sfx, self._rng.uniform(-k, k, (G * H, I)).astype(dt))
                self.add_parameter("weight_hh" + sfx, self._rng.uniform(-k, k, (G * H, H)).astype(dt))
                if self.bias:
                    self.add_parameter("bias_ih" + sfx, self._rng.uniform(-k, k, G * H).astype(dt))
                    self.add_parameter("bias_hh" + sfx, self._rng.uniform(-k, k, G * H).astype(dt))
        self._saved = None

    @property
    def directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer):
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    # -- one direction of one layer -------------------------------------------------------
    def _cell_forward(self, x, h0, c0, sfx, lengths, reverse):
        p = self._params
        W_ih, W_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
        b_ih, b_hh = p.get("bias_ih" + sfx), p.get("bias_hh" + sfx)
        if self.kind == "lstm":
            out, hT, cT, cache = ops.lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
            return out, hT, cT, cache
        if self.kind == "gru":
            out, hT, cache = ops.gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
        else:
            out, hT, cache = ops.rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh, self.nonlinearity, lengths, reverse)
        return out, hT, None, cache

    def _cell_backward(self, dout, dhT, dcT, cache, sfx):
        if self.kind == "lstm":
            dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh = ops.lstm_backward(dout, dhT, dcT, cache)
        elif self.kind == "gru":
            dx, dh0, dW_ih, dW_hh, db_ih, db_hh = ops.gru_backward(dout, dhT, cache)
            dc0 = None
        else:
            dx, dh0, dW_ih, dW_hh, db_ih, db_hh = ops.rnn_backward(dout, dhT, cache)
            dc0 = None
        g = self._grads
        g["weight_ih" + sfx] += dW_ih
        g["weight_hh" + sfx] += dW_hh
        if self.bias:
            g["bias_ih" + sfx] += db_ih
            g["bias_hh" + sfx] += db_hh
        return dx, dh0, dc0

    # -- the stack ------------------------------------------------------------------------
    def _state_arg(self, state, B, dt, name="state"):
        LD, H = self.num_layers * self.directions, self.hidden_size
        shape = (LD, B, H)

        def one(a, nm):
            if a is None:
                return None
            a = np.asarray(a)
            if a.shape != shape:
                raise ValueError(f"{nm}: expected shape {shape} (num_layers * directions, B, H), got {a.shape}")
            return a

        if self.kind == "lstm":
            if state is None:
                return None, None
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError(f"{name}: expected a pair (h, c) for an LSTM, got {type(state).__name__}")
            return one(state[0], name + "[0]"), one(state[1], name + "[1]")
        if isinstance(state, (tuple, list)):
            raise TypeError(f"{name}: expected an array h, got a {type(state).__name__}")
        return one(state, name), None

    def forward(self, x, state=None, lengths=None):
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError(f"x: expected a 3-D array ({'B, T' if self.batch_first else 'T, B'}, I), got shape {x.shape}")
        if self.batch_first:
            x = x.transpose(1, 0, 2)
        T, B, I = x.shape
        if I != self.input_size:
            raise ValueError(f"x: expected {self.input_size} input features, got {I} (shape {x.shape})")
        h0, c0 = self._state_arg(state, B, x.dtype)
        H, D = self.hidden_size, self.directions
        hT = np.empty((self.num_layers * D, B, H), x.dtype)
        cT = np.empty_like(hT) if self.kind == "lstm" else None
        caches, masks = [], []
        inp = x
        for layer in range(self.num_layers):
            outs, lc = [], []
            for d, sfx in enumerate(self._suffixes(layer)):
                idx = layer * D + d
                out, h, c, cache = self._cell_forward(
                    inp, None if h0 is None else h0[idx], None if c0 is None else c0[idx], sfx, lengths, d == 1)
                outs.append(out)
                lc.append(cache)
                hT[idx] = h
                if cT is not None:
                    cT[idx] = c
            caches.append(lc)
            inp = outs[0] if D == 1 else np.concatenate(outs, axis=-1)
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = 1.0 - self.dropout
                mask = (self._rng.random(inp.shape) < keep).astype(inp.dtype) / inp.dtype.type(keep)
                inp = inp * mask
            masks.append(mask)
        self._saved = (caches, masks, T, B)
        out = inp.transpose(1, 0, 2) if self.batch_first else inp
        return out, ((hT, cT) if self.kind == "lstm" else hT)

    def backward(self, dout, dstate=None):
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        caches, masks, T, B = self._saved
        H, D = self.hidden_size, self.directions
        dout = np.asarray(dout)
        if self.batch_first:
            dout = dout.transpose(1, 0, 2)
        if dout.shape != (T, B, D * H):
            shape = (B, T, D * H) if self.batch_first else (T, B, D * H)
            raise ValueError(f"dout: expected shape {shape}, got {dout.shape if not self.batch_first else dout.transpose(1, 0, 2).shape}")
        dhT, dcT = self._state_arg(dstate, B, dout.dtype, "dstate")
        dh0 = np.zeros((self.num_layers * D, B, H), dout.dtype)
        dc0 = np.zeros_like(dh0) if self.kind == "lstm" else None
        g = np.ascontiguousarray(dout)
        for layer in reversed(range(self.num_layers)):
            if masks[layer] is not None:
                g = g * masks[layer]
            dx = None
            for d, sfx in enumerate(self._suffixes(layer)):
                idx = layer * D + d
                gd = g if D == 1 else g[..., d * H:(d + 1) * H]
                r = self._cell_backward(
                    gd, None if dhT is None else dhT[idx], None if dcT is None else dcT[idx],
                    caches[layer][d], sfx)
                dx = r[0] if dx is None else dx + r[0]
                dh0[idx] = r[1]
                if dc0 is not None:
                    dc0[idx] = r[2]
            g = dx
        dx = g.transpose(1, 0, 2) if self.batch_first else g
        return dx, ((dh0, dc0) if self.kind == "lstm" else dh0)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s


class RNN(_Recurrent):
    """Elman RNN, h' = act(W_ih x + b_ih + W_hh h + b_hh), act "tanh", "relu" or "sigmoid"
    (torch.nn.RNN has tanh and relu)."""

    kind = "rnn"

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, seed=None, dtype=np.float32):
        if nonlinearity not in ("tanh", "relu", "sigmoid"):
            raise ValueError(f"nonlinearity: expected 'tanh', 'relu' or 'sigmoid', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, seed, dtype, nonlinearity)


class GRU(_Recurrent):
    """Gated recurrent unit, PyTorch's equations and gate order (r, z, n)."""

    kind = "gru"


class LSTM(_Recurrent):
    """Long short-term memory, PyTorch's equations and gate order (i, f, g, o); state (h, c)."""

    kind = "lstm"
