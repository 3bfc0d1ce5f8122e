"""Recurrent layers in plain NumPy: vanilla RNN, GRU and LSTM, forward and backward.

The definition of correct for the C++ kernels. Conventions are PyTorch's (torch.nn.RNN, GRU,
LSTM with num_layers=1), so weights move between the two libraries unchanged:
https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html (and .GRU, .RNN).

Shapes (time-major). T time steps, B batch, I input features, H hidden size, G gates:

    x              (T, B, I)       input; float32 or float64, never mixed in one call
    h0, c0         (B, H)          initial states; None means zeros
    W_ih           (G*H, I)        input-to-hidden weights, gates stacked in PyTorch's order:
    W_hh           (G*H, H)        LSTM G=4 [i|f|g|o], GRU G=3 [r|z|n], RNN G=1
    b_ih, b_hh     (G*H,)          biases; None means no bias (zero)
    lengths        (B,) integers   optional, 0 <= lengths[b] <= T
    out            (T, B, H)       the hidden state after each time step, in time order
    hT, cT         (B, H)          each sequence's final state

Variable lengths. With `lengths`, the steps t >= lengths[b] of sequence b are padding: their
output is zero, they leave the state untouched (so hT, cT are the state after the sequence's
own last step; a length of 0 returns h0, c0) and no gradient flows into or out of them
(dout there is ignored, dx there is zero). Padding values in x and dout never affect a
result, even NaN.

Direction. reverse=False runs each sequence forward, t = 0, 1, .., lengths[b]-1.
reverse=True runs each sequence from its own last valid step back to t = 0, as the backward
direction of a bidirectional layer (torch's *_reverse weights with packed sequences) does;
out[t] is still indexed by the original time t and hT is the state after time 0.

Backward. ``*_backward(dout, dhT, [dcT,] cache)`` takes the gradients of the loss with respect
to out, hT (and cT), any of which may be None (no gradient from there), and the cache the
forward returned (:class:`nnkern._cache.RecurrentCache`; it documents the saved arrays).
It returns fresh arrays (dx, dh0, [dc0,] dW_ih, dW_hh, db_ih, db_hh) of the shapes of
(x, h0, [c0,] W_ih, W_hh, b_ih, b_hh). A None h0/c0 or bias stands for zeros, and its gradient
is still returned: dh0 is the gradient with respect to the zero initial state and db_ih/db_hh
that with respect to a zero bias (never zeros-because-absent; callers without a bias simply
ignore them, as with nnkern.reference.dense_backward's db).

Truncated backpropagation through time. A long sequence can be run in chunks x[0:K],
x[K:2K], ...: each chunk's (hT, cT) is the next chunk's (h0, c0), and with `lengths`
chunk k gets clip(lengths - k*K, 0, K) (a sequence that has ended keeps its state through the
length-0 chunks that follow). The outputs are exactly those of one call on the whole
sequence. Backpropagating chunk by chunk from the last to the first, giving the last chunk the
true dhT/dcT and every earlier chunk the dh0/dc0 returned by the chunk after it as its
dhT/dcT, then summing dW_ih, dW_hh, db_ih, db_hh over chunks and concatenating dx, gives the
full-BPTT gradients (up to the order of floating-point sums); all chunks' caches must be kept
until then. Truncating is passing dhT=None, dcT=None at the chunk edges instead: each chunk's
gradients are then those of its own loss with its start state held constant (PyTorch's
h.detach() between chunks), and their sum is the gradient of the truncated objective
sum_k L_k(W; detached h_start_k). It lacks exactly the terms by which a step influences the
losses of later chunks through the carried state, and needs only the current chunk's cache,
so the usual loop is: forward chunk k, backward it at once, update, carry (hT, cT) on.
(tests/test_recurrent.py checks both statements.)

Implementation notes. Each forward is a plain loop over the steps in processing order (see
nnkern/_cache.py: step s of sequence b is time step_times[s, b]), each backward an explicit
loop back over the same steps; the gradients of the gate pre-activations are stacked into one
(T, B, G*H) array so that dW_ih, dW_hh, db_ih, db_hh are each one matrix product or sum at
the end, and dx is one product with W_ih.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from .. import _validate as v
from .._cache import NUM_GATES, RecurrentCache, step_times
from .activations import sigmoid as _sigmoid

__all__ = [
    "lstm_forward", "lstm_backward", "gru_forward", "gru_backward", "rnn_forward", "rnn_backward",
]

NONLINEARITIES = ("tanh", "relu", "sigmoid")
_NAMES = {"lstm": "an LSTM", "gru": "a GRU", "rnn": "an RNN"}

# ---------------------------------------------------------------------------------------
# Argument checks (shared with nnkern.ops.recurrent: same errors, same messages).


def _check_nonlinearity(nonlinearity) -> str:
    if not isinstance(nonlinearity, str) or nonlinearity not in NONLINEARITIES:
        raise ValueError(f"nonlinearity: expected one of {NONLINEARITIES}, got {nonlinearity!r}")
    return nonlinearity


def _check_reverse(reverse) -> bool:
    if not isinstance(reverse, (bool, np.bool_)):
        raise TypeError(f"reverse: expected a bool, got {type(reverse).__name__}")
    return bool(reverse)


def _lengths_arg(lengths, T: int, B: int) -> np.ndarray | None:
    """lengths as a (B,) int64 array with 0 <= lengths[b] <= T, or None."""
    if lengths is None:
        return None
    L = v.index_array(lengths, "lengths")
    if L.shape != (B,):
        raise ValueError(f"lengths: expected shape (B,) = ({B},), one length per sequence, got {L.shape}")
    bad = (L < 0) | (L > T)
    if bad.any():
        b = int(np.argmax(bad))
        raise ValueError(f"lengths: expected values in [0, T] = [0, {T}], got {int(L[b])} at index {b}")
    return L


def _forward_args(kind, x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths, reverse):
    """Validated, C-contiguous arguments; None states and biases replaced by zeros."""
    G = NUM_GATES[kind]
    reverse = _check_reverse(reverse)
    x = v.float_array(x, "x")
    W_ih = v.float_array(W_ih, "W_ih")
    W_hh = v.float_array(W_hh, "W_hh")
    opt = {"h0": h0, "c0": c0, "b_ih": b_ih, "b_hh": b_hh}
    if kind != "lstm":
        del opt["c0"]
    opt = {k: None if a is None else v.float_array(a, k) for k, a in opt.items()}
    v.same_dtype(x, "x", W_ih=W_ih, W_hh=W_hh, **opt)

    v.check_ndim(x, "x", (3,), "a 3-D array of shape (T, B, I) (time-major)")
    T, B, I = x.shape
    v.check_ndim(W_hh, "W_hh", (2,), f"a 2-D array of shape (G*H, H) = ({G}*H, H) for {_NAMES[kind]}")
    H = W_hh.shape[1]
    if W_hh.shape[0] != G * H:
        raise ValueError(
            f"W_hh: expected shape (G*H, H) = ({G}*H, H) for {_NAMES[kind]} ({G} gate"
            f"{'s' if G > 1 else ''} stacked), got {W_hh.shape}"
        )
    v.check_ndim(W_ih, "W_ih", (2,), f"a 2-D array of shape (G*H, I) = ({G * H}, {I})")
    if W_ih.shape != (G * H, I):
        raise ValueError(
            f"W_ih: expected shape (G*H, I) = ({G * H}, {I}) (H = {H} from W_hh, I = {I} from x), "
            f"got {W_ih.shape}"
        )
    for name in ("h0", "c0"):
        if opt.get(name) is not None and opt[name].shape != (B, H):
            raise ValueError(
                f"{name}: expected shape (B, H) = ({B}, {H}) (B from x, H from W_hh), got {opt[name].shape}"
            )
    for name in ("b_ih", "b_hh"):
        if opt[name] is not None and opt[name].shape != (G * H,):
            raise ValueError(f"{name}: expected shape (G*H,) = ({G * H},), got {opt[name].shape}")
    lengths = _lengths_arg(lengths, T, B)

    def zeros_if_none(a, shape):
        return np.zeros(shape, x.dtype) if a is None else a

    return SimpleNamespace(
        x=x, W_ih=W_ih, W_hh=W_hh, T=T, B=B, I=I, H=H, G=G, lengths=lengths, reverse=reverse,
        h0=zeros_if_none(opt["h0"], (B, H)),
        c0=zeros_if_none(opt.get("c0"), (B, H)) if kind == "lstm" else None,
        b_ih=zeros_if_none(opt["b_ih"], (G * H,)), b_hh=zeros_if_none(opt["b_hh"], (G * H,)),
        has_b_ih=opt["b_ih"] is not None, has_b_hh=opt["b_hh"] is not None,
    )


def _backward_args(kind, cache, dout, dhT, dcT=None):
    """The upstream gradients as float arrays of the forward's dtype (zeros for None)."""
    if not isinstance(cache, RecurrentCache):
        raise TypeError(
            f"cache: expected the RecurrentCache returned by {kind}_forward, got {type(cache).__name__}"
        )
    if cache.kind != kind:
        raise ValueError(f"cache: comes from {cache.kind}_forward, not {kind}_forward")
    T, B, H = cache.T, cache.B, cache.H
    grads = {"dout": (dout, (T, B, H), "(T, B, H)"), "dhT": (dhT, (B, H), "(B, H)")}
    if kind == "lstm":
        grads["dcT"] = (dcT, (B, H), "(B, H)")
    result = {}
    for name, (a, shape, letters) in grads.items():
        if a is None:
            result[name] = np.zeros(shape, cache.dtype)
            continue
        a = v.float_array(a, name)
        if a.dtype != cache.dtype:
            raise TypeError(
                f"{name}: dtype {a.dtype} does not match the forward's dtype {cache.dtype} "
                "(float32 and float64 are not mixed in one call)"
            )
        if a.shape != shape:
            raise ValueError(f"{name}: expected shape {letters} = {shape}, got {a.shape}")
        result[name] = a
    return SimpleNamespace(**result)


# ---------------------------------------------------------------------------------------
# Between time order and processing order (see nnkern/_cache.py).


def _to_steps(a: np.ndarray, tix: np.ndarray) -> np.ndarray:
    """a (T, B, K) in time order -> (T, B, K) in processing order, zeros at padding steps."""
    B = a.shape[1]
    rows = a[np.maximum(tix, 0), np.arange(B)[None, :]]  # rows[s, b] = a[tix[s, b], b]
    return np.where((tix >= 0)[:, :, None], rows, a.dtype.type(0))


def _to_times(a: np.ndarray, tix: np.ndarray) -> np.ndarray:
    """a (T, B, K) in processing order -> (T, B, K) in time order, zeros at padding times."""
    result = np.zeros_like(a)
    s, b = np.nonzero(tix >= 0)
    result[tix[s, b], b] = a[s, b]
    return result


def _weight_grads(dA_ih, dA_hh, xs, h):
    """dW_ih, dW_hh, db_ih, db_hh from the stacked pre-activation gradients (T, B, G*H).

    pre_ih[s] = xs[s] @ W_ih^T + b_ih and pre_hh[s] = h[s] @ W_hh^T + b_hh at every step, so
    dW_ih = sum_s dA_ih[s]^T xs[s] (one (G*H, T*B) @ (T*B, I) product), likewise dW_hh with
    the states h[0..T-1] entering each step, and the biases sum the gradients.
    """
    T, B, GH = dA_ih.shape
    dA_ih2 = dA_ih.reshape(T * B, GH)  # explicit sizes: -1 is ambiguous for empty arrays
    dA_hh2 = dA_hh.reshape(T * B, GH)
    dW_ih = dA_ih2.T @ xs.reshape(T * B, xs.shape[2])
    dW_hh = dA_hh2.T @ h[:-1].reshape(T * B, h.shape[2])
    return dW_ih, dW_hh, dA_ih2.sum(axis=0), dA_hh2.sum(axis=0)


# ---------------------------------------------------------------------------------------
# LSTM


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths=None, reverse=False):
    """LSTM over a batch of sequences (torch.nn.LSTM, one layer, one direction).

    At each step, with x_t the input and (h, c) the previous state:

        i  = sigmoid(W_ii x_t + b_ii + W_hi h + b_hi)      input gate
        f  = sigmoid(W_if x_t + b_if + W_hf h + b_hf)      forget gate
        g  = tanh   (W_ig x_t + b_ig + W_hg h + b_hg)      candidate cell
        o  = sigmoid(W_io x_t + b_io + W_ho h + b_ho)      output gate
        c' = f * c + i * g
        h' = o * tanh(c')

    W_ih = [W_ii; W_if; W_ig; W_io] (4H, I), W_hh likewise (4H, H), b_ih, b_hh (4H,).

    x : (T, B, I).  h0, c0 : (B, H) or None (zeros).  b_ih, b_hh : (4H,) or None (no bias).
    lengths : (B,) integers or None; reverse : bool (see the module docstring).
    Returns (out (T, B, H), hT (B, H), cT (B, H), cache).
    """
    a = _forward_args("lstm", x, h0, c0, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
    T, B, H = a.T, a.B, a.H
    tix = step_times(T, B, a.lengths, a.reverse)
    xs = _to_steps(a.x, tix)  # the input of each step, in processing order
    h = np.empty((T + 1, B, H), a.x.dtype)
    c = np.empty((T + 1, B, H), a.x.dtype)
    gates = np.zeros((T, B, 4 * H), a.x.dtype)
    h[0], c[0] = a.h0, a.c0
    for s in range(T):
        valid = (tix[s] >= 0)[:, None]  # (B, 1): False at padding steps
        pre = xs[s] @ a.W_ih.T + a.b_ih + h[s] @ a.W_hh.T + a.b_hh  # (B, 4H)
        i = _sigmoid(pre[:, 0 * H:1 * H])
        f = _sigmoid(pre[:, 1 * H:2 * H])
        g = np.tanh(pre[:, 2 * H:3 * H])
        o = _sigmoid(pre[:, 3 * H:4 * H])
        c_new = f * c[s] + i * g
        h_new = o * np.tanh(c_new)
        c[s + 1] = np.where(valid, c_new, c[s])  # padding carries the state unchanged
        h[s + 1] = np.where(valid, h_new, h[s])
        gates[s] = np.where(valid, np.concatenate([i, f, g, o], axis=1), 0)
    cache = RecurrentCache(
        kind="lstm", nonlinearity=None, reverse=a.reverse, x=a.x, W_ih=a.W_ih, W_hh=a.W_hh,
        has_b_ih=a.has_b_ih, has_b_hh=a.has_b_hh, lengths=a.lengths, h=h, c=c, gates=gates,
    )
    return _to_times(h[1:], tix), h[T].copy(), c[T].copy(), cache


def lstm_backward(dout, dhT, dcT, cache):
    """Gradients of an LSTM forward.

    dout : (T, B, H) dL/dout, or None.  dhT, dcT : (B, H) dL/dhT, dL/dcT, or None.
    cache : the RecurrentCache returned by lstm_forward.
    Returns (dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh), shapes of (x, h0, c0, W_ih, W_hh,
    b_ih, b_hh); db_ih == db_hh (both biases enter the same sum).

    Going back over the steps, with dh, dc the gradients reaching h', c' (from dout, from the
    next step, from dhT/dcT) and tc = tanh(c'):

        h' = o * tanh(c')        ->  do  = dh * tc
                                     dc += dh * o * (1 - tc^2)
        c' = f * c + i * g       ->  di = dc * g,   df = dc * c,   dg = dc * i,   dc_prev = dc * f
        gate nonlinearities      ->  da_i = di * i(1-i),  da_f = df * f(1-f),
                                     da_g = dg * (1-g^2), da_o = do * o(1-o)
        pre-activations          ->  dh_prev = da @ W_hh,  dx_t = da @ W_ih
    """
    g_ = _backward_args("lstm", cache, dout, dhT, dcT)
    T, B, H = cache.T, cache.B, cache.H
    tix = cache.step_times()
    douts = _to_steps(g_.dout, tix)  # dL/d(output of step s), zeros at padding steps
    dA = np.zeros((T, B, 4 * H), cache.dtype)  # dL/d(pre-activations), by step
    dh = g_.dhT.copy()
    dc = g_.dcT.copy()
    for s in reversed(range(T)):
        valid = (tix[s] >= 0)[:, None]
        gs = cache.gates[s]
        i, f, g, o = gs[:, 0:H], gs[:, H:2 * H], gs[:, 2 * H:3 * H], gs[:, 3 * H:4 * H]
        tc = np.tanh(cache.c[s + 1])
        dh = dh + douts[s]  # h[s+1] is both step s's output and step s+1's input
        # h' = o * tanh(c')
        do = dh * tc
        dc_s = dc + dh * o * (1 - tc * tc)
        # c' = f * c + i * g
        di = dc_s * g
        df = dc_s * cache.c[s]
        dg = dc_s * i
        dc_prev = dc_s * f
        da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), do * o * (1 - o)], axis=1)
        dA[s] = np.where(valid, da, 0)
        # Padding steps are the identity on (h, c): the gradient passes through unchanged.
        dh = np.where(valid, dA[s] @ cache.W_hh, dh)
        dc = np.where(valid, dc_prev, dc)
    xs = _to_steps(cache.x, tix)
    dW_ih, dW_hh, db_ih, db_hh = _weight_grads(dA, dA, xs, cache.h)
    dx = _to_times(dA @ cache.W_ih, tix)
    return dx, dh, dc, dW_ih, dW_hh, db_ih, db_hh


# ---------------------------------------------------------------------------------------
# GRU


def gru_forward(x, h0, W_ih, W_hh, b_ih, b_hh, lengths=None, reverse=False):
    """GRU over a batch of sequences (torch.nn.GRU, one layer, one direction).

    At each step, with x_t the input and h the previous state:

        r  = sigmoid(W_ir x_t + b_ir + W_hr h + b_hr)      reset gate
        z  = sigmoid(W_iz x_t + b_iz + W_hz h + b_hz)      update gate
        n  = tanh   (W_in x_t + b_in + r * (W_hn h + b_hn))  candidate (reset applied after W_hn)
        h' = (1 - z) * n + z * h

    W_ih = [W_ir; W_iz; W_in] (3H, I), W_hh likewise (3H, H), b_ih, b_hh (3H,).

    x : (T, B, I).  h0 : (B, H) or None (zeros).  b_ih, b_hh : (3H,) or None (no bias).
    lengths : (B,) integers or None; reverse : bool (see the module docstring).
    Returns (out (T, B, H), hT (B, H), cache).
    """
    a = _forward_args("gru", x, h0, None, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
    T, B, H = a.T, a.B, a.H
    tix = step_times(T, B, a.lengths, a.reverse)
    xs = _to_steps(a.x, tix)
    h = np.empty((T + 1, B, H), a.x.dtype)
    gates = np.zeros((T, B, 3 * H), a.x.dtype)
    hn = np.zeros((T, B, H), a.x.dtype)
    h[0] = a.h0
    for s in range(T):
        valid = (tix[s] >= 0)[:, None]
        pre_x = xs[s] @ a.W_ih.T + a.b_ih  # (B, 3H)
        pre_h = h[s] @ a.W_hh.T + a.b_hh  # (B, 3H)
        r = _sigmoid(pre_x[:, 0:H] + pre_h[:, 0:H])
        z = _sigmoid(pre_x[:, H:2 * H] + pre_h[:, H:2 * H])
        hn_s = pre_h[:, 2 * H:3 * H]  # W_hn h + b_hn
        n = np.tanh(pre_x[:, 2 * H:3 * H] + r * hn_s)
        h_new = (1 - z) * n + z * h[s]
        h[s + 1] = np.where(valid, h_new, h[s])
        gates[s] = np.where(valid, np.concatenate([r, z, n], axis=1), 0)
        hn[s] = np.where(valid, hn_s, 0)
    cache = RecurrentCache(
        kind="gru", nonlinearity=None, reverse=a.reverse, x=a.x, W_ih=a.W_ih, W_hh=a.W_hh,
        has_b_ih=a.has_b_ih, has_b_hh=a.has_b_hh, lengths=a.lengths, h=h, gates=gates, hn=hn,
    )
    return _to_times(h[1:], tix), h[T].copy(), cache


def gru_backward(dout, dhT, cache):
    """Gradients of a GRU forward.

    dout : (T, B, H) dL/dout, or None.  dhT : (B, H) dL/dhT, or None.
    cache : the RecurrentCache returned by gru_forward.
    Returns (dx, dh0, dW_ih, dW_hh, db_ih, db_hh), shapes of (x, h0, W_ih, W_hh, b_ih, b_hh).

    Going back over the steps, with dh the gradient reaching h' and hn = W_hn h + b_hn:

        h' = (1 - z) * n + z * h       ->  dn = dh * (1 - z),  dz = dh * (h - n),  dh_prev = dh * z
        n = tanh(a_n + r * hn)         ->  da_n = dn * (1 - n^2),  dr = da_n * hn,  dhn = da_n * r
        r, z = sigmoid(a_r), (a_z)     ->  da_r = dr * r(1-r),  da_z = dz * z(1-z)
        input side  [a_r, a_z, a_n]    ->  dx_t = [da_r, da_z, da_n] @ W_ih
        hidden side [a_r, a_z, hn]     ->  dh_prev += [da_r, da_z, dhn] @ W_hh

    so the input and hidden sides differ only in the n block (db_hh's n block is dhn's sum).
    """
    g_ = _backward_args("gru", cache, dout, dhT)
    T, B, H = cache.T, cache.B, cache.H
    tix = cache.step_times()
    douts = _to_steps(g_.dout, tix)
    dA_ih = np.zeros((T, B, 3 * H), cache.dtype)  # dL/d(input-side pre-activations)
    dA_hh = np.zeros((T, B, 3 * H), cache.dtype)  # dL/d(hidden-side pre-activations)
    dh = g_.dhT.copy()
    for s in reversed(range(T)):
        valid = (tix[s] >= 0)[:, None]
        gs = cache.gates[s]
        r, z, n = gs[:, 0:H], gs[:, H:2 * H], gs[:, 2 * H:3 * H]
        h_prev = cache.h[s]
        dh = dh + douts[s]
        # h' = (1 - z) * n + z * h
        dn = dh * (1 - z)
        dz = dh * (h_prev - n)
        dh_direct = dh * z
        # n = tanh(a_n + r * hn)
        da_n = dn * (1 - n * n)
        dr = da_n * cache.hn[s]
        dhn = da_n * r
        da_r = dr * r * (1 - r)
        da_z = dz * z * (1 - z)
        dA_ih[s] = np.where(valid, np.concatenate([da_r, da_z, da_n], axis=1), 0)
        dA_hh[s] = np.where(valid, np.concatenate([da_r, da_z, dhn], axis=1), 0)
        dh = np.where(valid, dh_direct + dA_hh[s] @ cache.W_hh, dh)
    xs = _to_steps(cache.x, tix)
    dW_ih, dW_hh, db_ih, db_hh = _weight_grads(dA_ih, dA_hh, xs, cache.h)
    dx = _to_times(dA_ih @ cache.W_ih, tix)
    return dx, dh, dW_ih, dW_hh, db_ih, db_hh


# ---------------------------------------------------------------------------------------
# Vanilla RNN


def _activation(pre, nonlinearity):
    if nonlinearity == "tanh":
        return np.tanh(pre)
    if nonlinearity == "relu":
        return np.where(pre < 0, pre.dtype.type(0), pre)  # NaN stays NaN, as reference.relu
    return _sigmoid(pre)


def _activation_slope(h, nonlinearity):
    """d act(a) / da in terms of the output h = act(a)."""
    if nonlinearity == "tanh":
        return 1 - h * h
    if nonlinearity == "relu":
        return (h > 0).astype(h.dtype)  # 0 at a == 0, as PyTorch
    return h * (1 - h)


def rnn_forward(x, h0, W_ih, W_hh, b_ih, b_hh, nonlinearity="tanh", lengths=None, reverse=False):
    """Elman RNN over a batch of sequences (torch.nn.RNN, one layer, one direction).

    At each step, with x_t the input and h the previous state:

        h' = act(W_ih x_t + b_ih + W_hh h + b_hh),   act = tanh, relu or sigmoid

    (torch.nn.RNN offers tanh and relu; sigmoid is an nnkern extra.)

    x : (T, B, I).  h0 : (B, H) or None (zeros).  W_ih (H, I), W_hh (H, H).
    b_ih, b_hh : (H,) or None (no bias).  nonlinearity : "tanh", "relu" or "sigmoid".
    lengths : (B,) integers or None; reverse : bool (see the module docstring).
    Returns (out (T, B, H), hT (B, H), cache).
    """
    nonlinearity = _check_nonlinearity(nonlinearity)
    a = _forward_args("rnn", x, h0, None, W_ih, W_hh, b_ih, b_hh, lengths, reverse)
    T, B, H = a.T, a.B, a.H
    tix = step_times(T, B, a.lengths, a.reverse)
    xs = _to_steps(a.x, tix)
    h = np.empty((T + 1, B, H), a.x.dtype)
    h[0] = a.h0
    for s in range(T):
        valid = (tix[s] >= 0)[:, None]
        h_new = _activation(xs[s] @ a.W_ih.T + a.b_ih + h[s] @ a.W_hh.T + a.b_hh, nonlinearity)
        h[s + 1] = np.where(valid, h_new, h[s])
    cache = RecurrentCache(
        kind="rnn", nonlinearity=nonlinearity, reverse=a.reverse, x=a.x, W_ih=a.W_ih, W_hh=a.W_hh,
        has_b_ih=a.has_b_ih, has_b_hh=a.has_b_hh, lengths=a.lengths, h=h,
    )
    return _to_times(h[1:], tix), h[T].copy(), cache


def rnn_backward(dout, dhT, cache):
    """Gradients of an RNN forward.

    dout : (T, B, H) dL/dout, or None.  dhT : (B, H) dL/dhT, or None.
    cache : the RecurrentCache returned by rnn_forward.
    Returns (dx, dh0, dW_ih, dW_hh, db_ih, db_hh), shapes of (x, h0, W_ih, W_hh, b_ih, b_hh);
    db_ih == db_hh.

    Going back over the steps, with dh the gradient reaching h' = act(a):

        da = dh * act'(a)     act' from the output: tanh 1 - h'^2, sigmoid h'(1 - h'),
                              relu 1 where h' > 0 else 0
        dh_prev = da @ W_hh,  dx_t = da @ W_ih
    """
    g_ = _backward_args("rnn", cache, dout, dhT)
    T, B, H = cache.T, cache.B, cache.H
    tix = cache.step_times()
    douts = _to_steps(g_.dout, tix)
    dA = np.zeros((T, B, H), cache.dtype)
    dh = g_.dhT.copy()
    for s in reversed(range(T)):
        valid = (tix[s] >= 0)[:, None]
        dh = dh + douts[s]
        dA[s] = np.where(valid, dh * _activation_slope(cache.h[s + 1], cache.nonlinearity), 0)
        dh = np.where(valid, dA[s] @ cache.W_hh, dh)
    xs = _to_steps(cache.x, tix)
    dW_ih, dW_hh, db_ih, db_hh = _weight_grads(dA, dA, xs, cache.h)
    dx = _to_times(dA @ cache.W_ih, tix)
    return dx, dh, dW_ih, dW_hh, db_ih, db_hh
