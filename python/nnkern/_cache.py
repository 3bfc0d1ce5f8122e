"""What a recurrent forward saves for its backward, shared by nnkern.ops and nnkern.reference.

Both implementations of ``lstm_forward``, ``gru_forward`` and ``rnn_forward`` return a
:class:`RecurrentCache` with the same fields in the same layout, so a cache made by one can be
passed to the other's backward (the tests do exactly that).

Processing order. Every saved per-step array is indexed by the *step* s = 0 .. T-1 in the
order the recurrence runs, not by time. For sequence b of length L_b (T without `lengths`):

    forward  (reverse=False): step s processes time t = s            for s < L_b
    backward (reverse=True):  step s processes time t = L_b - 1 - s  for s < L_b
    steps s >= L_b are padding: the state is carried unchanged, h[s + 1, b] = h[s, b]

so padding is always at the end of the step axis, the state before step s is h[s] and after it
h[s + 1], and a backward is one clean loop s = T-1 .. 0. :func:`step_times` gives the map
(-1 for padding). Only ``out`` (returned by the forward, not saved) is in time order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RecurrentCache", "AttentionCache", "step_times", "NUM_GATES"]

# G: gates stacked in W_ih (G*H, I), W_hh (G*H, H), b_ih, b_hh (G*H,), PyTorch's order.
NUM_GATES = {"lstm": 4, "gru": 3, "rnn": 1}  # LSTM i,f,g,o   GRU r,z,n   RNN one


def step_times(T: int, B: int, lengths: np.ndarray | None, reverse: bool) -> np.ndarray:
    """The time index each sequence processes at each step: an int64 array (T, B).

    tix[s, b] = s (forward) or lengths[b] - 1 - s (reverse) for s < lengths[b], and -1 for the
    padding steps s >= lengths[b]. Without `lengths` every sequence has length T.
    """
    s = np.arange(T, dtype=np.int64)[:, None]  # (T, 1)
    L = np.full((1, B), T, np.int64) if lengths is None else np.asarray(lengths, np.int64)[None, :]
    t = (L - 1 - s) if reverse else np.broadcast_to(s, (T, B))
    return np.where(s < L, t, -1).astype(np.int64)


@dataclass(eq=False, repr=False)
class RecurrentCache:
    """The saved state of one recurrent forward, consumed by the matching backward.

    Letters: T time steps, B batch, I input features, H hidden size, G gates (4 LSTM,
    3 GRU, 1 RNN). dtype is x's (float32 or float64) for every float array. "Step" means the
    processing order described in the module docstring (step s of sequence b is time
    step_times(...)[s, b]); "padding step" means s >= lengths[b].

    kind : str
        "lstm", "gru" or "rnn": the forward that made the cache.
    nonlinearity : str or None
        "tanh", "relu" or "sigmoid" for "rnn"; None for "lstm" and "gru".
    reverse : bool
        True if each sequence ran from its last valid step back to time 0.
    x : ndarray (T, B, I)
        The input, in time order (a reference to the caller's array when it was already
        C-contiguous of the right dtype: do not modify it in place before the backward).
    W_ih : ndarray (G*H, I)
    W_hh : ndarray (G*H, H)
        The weights (references, as x).
    has_b_ih, has_b_hh : bool
        Whether the forward had each bias (a None bias is zero; the backward does not need
        the bias values, only the saved activations below).
    lengths : ndarray (B,) int64, or None
        Each sequence's length, 0 <= lengths[b] <= T; None means every length is T.
    h : ndarray (T+1, B, H)
        Hidden states by step: h[0] = h0 (zeros if h0 was None), h[s+1] = the state after step
        s; at padding steps h[s+1, b] = h[s, b], so h[T] is the returned hT.
    c : ndarray (T+1, B, H), or None
        LSTM cell states, laid out as h (c[0] = c0, c[T] = cT). None for "gru" and "rnn".
    gates : ndarray (T, B, G*H), or None
        Gate activations by step, after their nonlinearity, in PyTorch's order:
        LSTM [i | f | g | o] = [sigmoid | sigmoid | tanh | sigmoid] of the pre-activations;
        GRU  [r | z | n]     = [sigmoid | sigmoid | tanh].
        None for "rnn" (its only activation is h[s+1] itself). Entries at padding steps are
        unspecified (the twin writes zeros) and are never read.
    hn : ndarray (T, B, H), or None
        GRU only: W_hn h[s] + b_hn, the hidden-to-hidden term of the n gate before the reset
        gate multiplies it (the backward needs it for dr and dW_hn). Padding entries
        unspecified. None for "lstm" and "rnn".

    Derived (properties): h0 = h[0], c0 = c[0] (None unless LSTM), T, B, I, H, G, dtype, and
    step_times() -> (T, B) int64.
    """

    kind: str
    nonlinearity: str | None
    reverse: bool
    x: np.ndarray
    W_ih: np.ndarray
    W_hh: np.ndarray
    has_b_ih: bool
    has_b_hh: bool
    lengths: np.ndarray | None
    h: np.ndarray
    c: np.ndarray | None = None
    gates: np.ndarray | None = None
    hn: np.ndarray | None = None

    @property
    def h0(self) -> np.ndarray:
        return self.h[0]

    @property
    def c0(self) -> np.ndarray | None:
        return None if self.c is None else self.c[0]

    @property
    def T(self) -> int:
        return self.x.shape[0]

    @property
    def B(self) -> int:
        return self.x.shape[1]

    @property
    def I(self) -> int:  # noqa: E743 - the glossary's letter
        return self.x.shape[2]

    @property
    def H(self) -> int:
        return self.W_hh.shape[1]

    @property
    def G(self) -> int:
        return NUM_GATES[self.kind]

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    def step_times(self) -> np.ndarray:
        """(T, B) int64: the time index of step s for sequence b, -1 at padding steps."""
        return step_times(self.T, self.B, self.lengths, self.reverse)

    def __repr__(self) -> str:
        extra = f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity else ""
        lengths = "None" if self.lengths is None else np.array2string(self.lengths, threshold=8)
        return (
            f"RecurrentCache(kind={self.kind!r}{extra}, reverse={self.reverse}, "
            f"T={self.T}, B={self.B}, I={self.I}, H={self.H}, dtype={self.dtype}, lengths={lengths})"
        )


@dataclass(eq=False, repr=False)
class AttentionCache:
    """What an attention forward saves for its backward (shared by nnkern.ops and
    nnkern.reference, so either backward takes either forward's cache).

    Letters: B batch, Tq queries, Tk keys, D (Dq, Dk) features, Dv value features, A the
    additive attention's hidden size.

    kind : str
        "sdpa" (scaled dot-product) or "additive".
    q, k, v : ndarray (B, Tq, D), (B, Tk, D), (B, Tk, Dv)
        The inputs (references to the caller's arrays when they were already C-contiguous:
        do not modify them in place before the backward).
    mask : bool ndarray (B, Tq, Tk) or (B, Tk), or None
        True where a query may attend.
    scale : float
        The factor on q k^T ("sdpa"; 1.0 for "additive").
    weights : ndarray (B, Tq, Tk)
        The attention weights P (softmax of the scores; zero where masked, and zero rows for
        queries with nothing to attend to).
    W_q, W_k, w_v : ndarray (A, Dq), (A, Dk), (A,), or None
        The additive attention's parameters (references); None for "sdpa".
    hidden : ndarray (B, Tq, Tk, A), or None
        The additive attention's tanh(W_q q_i + W_k k_j); None for "sdpa".
    """

    kind: str
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    mask: np.ndarray | None
    scale: float
    weights: np.ndarray
    W_q: np.ndarray | None = None
    W_k: np.ndarray | None = None
    w_v: np.ndarray | None = None
    hidden: np.ndarray | None = None

    def __repr__(self) -> str:
        B, Tq, _ = self.q.shape
        return (f"AttentionCache(kind={self.kind!r}, B={B}, Tq={Tq}, Tk={self.k.shape[1]}, "
                f"masked={self.mask is not None}, dtype={self.q.dtype})")
