"""Recurrent kernels: vanilla RNN, GRU and LSTM forward and backward, time-major, PyTorch layout.

Every test runs over IMPLS: the NumPy twin (nnkern.reference.recurrent) and, once it exists,
the C++ version (nnkern.ops.recurrent), which plugs into the same tests unchanged. The twin's
gradients are checked against central finite differences (float64, tiny shapes), both
implementations against PyTorch when it is installed (packed sequences for `lengths`, the
reverse half of a bidirectional module for `reverse`), a padded batch against its sequences
run one by one, truncated BPTT in chunks against full BPTT, and bad arguments.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FD_TOL, TORCH_TOL, assert_close, finite_difference, tol

import nnkern.reference.recurrent as ref
from nnkern._cache import RecurrentCache, step_times

IMPLS = [ref]
IMPL_IDS = ["reference"]
try:
    import nnkern.ops.recurrent as _ops_recurrent
except ImportError:  # the C++ kernels are not written yet
    pass
else:
    IMPLS.append(_ops_recurrent)
    IMPL_IDS.append("ops")

# (kind, nonlinearity): every cell and every RNN nonlinearity
CELLS = [("lstm", None), ("gru", None), ("rnn", "tanh"), ("rnn", "relu"), ("rnn", "sigmoid")]
CELL_IDS = ["lstm", "gru", "rnn-tanh", "rnn-relu", "rnn-sigmoid"]
TORCH_CELLS = CELLS[:4]  # torch.nn.RNN has no sigmoid
TORCH_CELL_IDS = CELL_IDS[:4]
GATES = {"lstm": 4, "gru": 3, "rnn": 1}


def param_names(kind):
    """Forward arguments with a gradient, in the order the backward returns them."""
    states = ["h0", "c0"] if kind == "lstm" else ["h0"]
    return ["x", *states, "W_ih", "W_hh", "b_ih", "b_hh"]


def final_names(kind):
    return ["hT", "cT"] if kind == "lstm" else ["hT"]


def make_params(rng, kind, T, B, I, H, dtype=np.float64, bias=True, states=True):
    G = GATES[kind]
    p = {
        "x": rng.standard_normal((T, B, I)),
        "h0": rng.standard_normal((B, H)) * 0.5 if states else None,
        "W_ih": rng.standard_normal((G * H, I)) / np.sqrt(max(I, 1)),
        "W_hh": rng.standard_normal((G * H, H)) / np.sqrt(max(H, 1)),
        "b_ih": rng.standard_normal(G * H) * 0.3 if bias else None,
        "b_hh": rng.standard_normal(G * H) * 0.3 if bias else None,
    }
    if kind == "lstm":
        p["c0"] = rng.standard_normal((B, H)) * 0.5 if states else None
    return {k: None if a is None else a.astype(dtype) for k, a in p.items()}


def forward(impl, kind, nl, p, lengths=None, reverse=False):
    """(out, finals, cache): finals is (hT,) or (hT, cT)."""
    if kind == "lstm":
        out, hT, cT, cache = impl.lstm_forward(
            p["x"], p["h0"], p["c0"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"],
            lengths=lengths, reverse=reverse)
        return out, (hT, cT), cache
    if kind == "gru":
        out, hT, cache = impl.gru_forward(
            p["x"], p["h0"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], lengths=lengths, reverse=reverse)
    else:
        out, hT, cache = impl.rnn_forward(
            p["x"], p["h0"], p["W_ih"], p["W_hh"], p["b_ih"], p["b_hh"], nonlinearity=nl,
            lengths=lengths, reverse=reverse)
    return out, (hT,), cache


def backward(impl, kind, dout, dfinals, cache):
    """The gradients as a dict keyed by the forward argument's name (x, h0, c0, W_ih, ...)."""
    if kind == "lstm":
        grads = impl.lstm_backward(dout, dfinals[0], dfinals[1], cache)
    else:
        grads = getattr(impl, f"{kind}_backward")(dout, dfinals[0], cache)
    names = param_names(kind)
    assert len(grads) == len(names)
    return dict(zip(names, grads))


def upstream(rng, kind, T, B, H, dtype=np.float64, given=("dout", "dhT", "dcT")):
    """(dout, dfinals) with None where not in `given`."""
    dout = rng.standard_normal((T, B, H)).astype(dtype) if "dout" in given else None
    dfinals = [rng.standard_normal((B, H)).astype(dtype) if n in given else None
               for n in (["dhT", "dcT"] if kind == "lstm" else ["dhT"])]
    return dout, dfinals


def flat_outputs(out, finals):
    return np.concatenate([out.reshape(-1)] + [f.reshape(-1) for f in finals])


def flat_upstream(dout, dfinals, T, B, H):
    parts = [np.zeros((T, B, H)) if dout is None else dout]
    parts += [np.zeros((B, H)) if d is None else d for d in dfinals]
    return np.concatenate([a.reshape(-1) for a in parts])


# ---------------------------------------------------------------------------------------
# gradients against central finite differences (float64, tiny shapes)

# (T, B, I, H) and the lengths tried with it (None = all T; 0 and full length included)
FD_SHAPES = [((4, 3, 5, 4), [None, [2, 0, 4]]), ((1, 1, 1, 1), [None, [0]]), ((3, 2, 1, 2), [[1, 3]])]
FD_CASES = [(shape, lengths) for shape, ls in FD_SHAPES for lengths in ls]
FD_IDS = [f"{'x'.join(map(str, s))}-len{'' if L is None else '-'.join(map(str, L))}" for s, L in FD_CASES]
# which upstream gradients are non-None
GIVEN = [("dout", "dhT", "dcT"), ("dout",), ("dhT", "dcT"), ("dcT",)]
GIVEN_IDS = ["all", "dout-only", "final-only", "dcT-only"]


@pytest.mark.parametrize("given", GIVEN, ids=GIVEN_IDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("shape,lengths", FD_CASES, ids=FD_IDS)
@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_backward_finite_differences(rng, impl, kind, nl, shape, lengths, reverse, given):
    if given == ("dcT",) and kind != "lstm":
        given = ("dhT",)  # the same case for a cell without c: only the final state's gradient
    T, B, I, H = shape
    p = make_params(rng, kind, T, B, I, H)
    out, finals, cache = forward(impl, kind, nl, p, lengths, reverse)
    dout, dfinals = upstream(rng, kind, T, B, H, given=given)
    grads = backward(impl, kind, dout, dfinals, cache)
    dy = flat_upstream(dout, dfinals, T, B, H)
    for name in param_names(kind):

        def f(z, name=name):
            return flat_outputs(*forward(impl, kind, nl, {**p, name: z}, lengths, reverse)[:2])

        expected = finite_difference(f, p[name], dy)
        assert grads[name].shape == p[name].shape, name
        np.testing.assert_allclose(grads[name], expected, **FD_TOL, err_msg=f"d{name}")
    if lengths is not None:  # padding: no gradient into x there
        pad = np.arange(T)[:, None] >= np.asarray(lengths)[None, :]
        assert np.all(grads["x"][pad] == 0)


@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_no_upstream_gradient_gives_zeros(rng, impl, kind, nl, dtype):
    T, B, I, H = 3, 2, 4, 5
    p = make_params(rng, kind, T, B, I, H, dtype)
    _, _, cache = forward(impl, kind, nl, p, [3, 1])
    grads = backward(impl, kind, None, [None] * len(final_names(kind)), cache)
    for name, g in grads.items():
        assert g.shape == p[name].shape and g.dtype == dtype, name
        np.testing.assert_array_equal(g, np.zeros_like(g), err_msg=name)


# ---------------------------------------------------------------------------------------
# semantics


@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_none_means_zeros(rng, impl, kind, nl, dtype):
    """h0/c0 = None and bias = None are zeros; their gradients are still returned."""
    T, B, I, H = 4, 3, 2, 3
    p = make_params(rng, kind, T, B, I, H, dtype, bias=False, states=False)
    pz = {k: (np.zeros((B, H), dtype) if k in ("h0", "c0") else
              np.zeros(GATES[kind] * H, dtype) if k in ("b_ih", "b_hh") else a) for k, a in p.items()}
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    for lengths, reverse in ((None, False), ([4, 0, 2], True)):
        out, finals, cache = forward(impl, kind, nl, p, lengths, reverse)
        out_z, finals_z, cache_z = forward(impl, kind, nl, pz, lengths, reverse)
        assert not cache.has_b_ih and not cache.has_b_hh and cache_z.has_b_ih and cache_z.has_b_hh
        np.testing.assert_array_equal(out, out_z)
        for a, b in zip(finals, finals_z):
            np.testing.assert_array_equal(a, b)
        g = backward(impl, kind, dout, dfinals, cache)
        gz = backward(impl, kind, dout, dfinals, cache_z)
        for name in param_names(kind):
            np.testing.assert_array_equal(g[name], gz[name], err_msg=name)
        assert np.any(g["b_ih"] != 0) and np.any(g["h0"] != 0)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_lengths_semantics(rng, impl, kind, nl, reverse, dtype):
    """Padding outputs are zero, never read, the final state is the state after each
    sequence's last processed step, a length of 0 returns the initial state."""
    T, B, I, H = 5, 4, 3, 4
    lengths = np.array([5, 0, 3, 1], np.int32)  # int32 accepted
    p = make_params(rng, kind, T, B, I, H, dtype)
    out, finals, cache = forward(impl, kind, nl, p, lengths, reverse)
    pad = np.arange(T)[:, None] >= lengths[None, :]
    assert np.all(out[pad] == 0)
    for b, L in enumerate(lengths):
        if L == 0:
            np.testing.assert_array_equal(finals[0][b], p["h0"][b])
            if kind == "lstm":
                np.testing.assert_array_equal(finals[1][b], p["c0"][b])
        else:  # the state after the last processed time step: L-1 forward, 0 reversed
            np.testing.assert_array_equal(finals[0][b], out[0 if reverse else L - 1, b])
    # garbage in the padding changes nothing, not even through NaN * 0
    p_nan = dict(p, x=np.where(pad[:, :, None], np.nan, p["x"]).astype(dtype))
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    dout_nan = np.where(pad[:, :, None], np.nan, dout).astype(dtype)
    out2, finals2, cache2 = forward(impl, kind, nl, p_nan, lengths, reverse)
    np.testing.assert_array_equal(out2, out)
    for a, b in zip(finals2, finals):
        np.testing.assert_array_equal(a, b)
    g = backward(impl, kind, dout, dfinals, cache)
    g2 = backward(impl, kind, dout_nan, dfinals, cache2)
    for name in param_names(kind):
        np.testing.assert_array_equal(g2[name], g[name], err_msg=name)
    assert np.all(g["x"][pad] == 0)
    assert cache.lengths.dtype == np.int64


@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_reverse_is_forward_on_time_reversed_sequences(rng, impl, kind, nl, dtype):
    """reverse=True on sequence b is reverse=False on x[L_b-1::-1, b] (outputs flipped back)."""
    T, B, I, H = 5, 3, 2, 3
    lengths = [5, 2, 0]
    p = make_params(rng, kind, T, B, I, H, dtype)
    out, finals, _ = forward(impl, kind, nl, p, lengths, reverse=True)
    for b, L in enumerate(lengths):
        pb = {k: None if a is None else (a[L - 1::-1, b:b + 1] if k == "x" and L else
                                         a[:0, b:b + 1] if k == "x" else
                                         a[b:b + 1] if k in ("h0", "c0") else a) for k, a in p.items()}
        ob, fb, _ = forward(impl, kind, nl, pb)
        assert_close(out[:L, b], ob[::-1, 0], dtype)
        for a, c in zip(finals, fb):
            assert_close(a[b], c[0], dtype)


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_padded_batch_equals_sequences_alone(rng, impl, kind, nl, reverse, dtype):
    """A masked batch = each sequence run alone (batch of 1): same outputs, final states,
    per-sequence dx, dh0, dc0, and dW, db the sum over the sequences."""
    T, B, I, H = 5, 4, 3, 4
    lengths = [5, 0, 3, 1]
    p = make_params(rng, kind, T, B, I, H, dtype)
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    out, finals, cache = forward(impl, kind, nl, p, lengths, reverse)
    g = backward(impl, kind, dout, dfinals, cache)
    wsum = {n: np.zeros_like(g[n]) for n in ("W_ih", "W_hh", "b_ih", "b_hh")}
    for b, L in enumerate(lengths):
        one = {k: None if a is None else a[:, b:b + 1] if k == "x" else a[b:b + 1] if k in ("h0", "c0") else a
               for k, a in p.items()}
        # alone, trimmed to its length (T = L, no lengths) and alone with its padding kept
        trimmed = dict(one, x=one["x"][:L])
        ob, fb, cb = forward(impl, kind, nl, trimmed, None, reverse)
        op, fp, cp = forward(impl, kind, nl, one, [L], reverse)
        gb = backward(impl, kind, dout[:L, b:b + 1], [d[b:b + 1] for d in dfinals], cb)
        gp = backward(impl, kind, dout[:, b:b + 1], [d[b:b + 1] for d in dfinals], cp)
        assert_close(out[:L, b], ob[:, 0], dtype)
        assert_close(out[:, b], op[:, 0], dtype)
        for a, c, e in zip(finals, fb, fp):
            assert_close(a[b], c[0], dtype)
            assert_close(a[b], e[0], dtype)
        assert_close(g["x"][:L, b], gb["x"][:, 0], dtype)
        assert_close(g["x"][:, b], gp["x"][:, 0], dtype)
        for name in param_names(kind)[1:]:
            if name in ("h0", "c0"):
                assert_close(g[name][b], gb[name][0], dtype)
                assert_close(g[name][b], gp[name][0], dtype)
            else:
                assert_close(gb[name], gp[name], dtype)
                wsum[name] += gb[name]
    for name, s in wsum.items():
        assert_close(g[name], s, dtype, atol=10 * tol(dtype)["atol"])


# ---------------------------------------------------------------------------------------
# truncated BPTT: chunks carrying the state


def _chunk_lengths(lengths, k, K):
    return None if lengths is None else np.clip(np.asarray(lengths) - k * K, 0, K)


TBPTT_CELLS = [("lstm", None), ("gru", None), ("rnn", "tanh")]
TBPTT_IDS = ["lstm", "gru", "rnn-tanh"]


@pytest.mark.parametrize("lengths", [None, [12, 7, 2, 4]], ids=["full", "lengths"])
@pytest.mark.parametrize("kind,nl", TBPTT_CELLS, ids=TBPTT_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_chunked_bptt_equals_full_bptt(rng, impl, kind, nl, lengths, dtype):
    """Chunks carrying (hT, cT) forward and (dh0, dc0) backward give full BPTT exactly."""
    T, K, B, I, H = 12, 4, 4, 3, 5
    p = make_params(rng, kind, T, B, I, H, dtype)
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    out, finals, cache = forward(impl, kind, nl, p, lengths)
    g = backward(impl, kind, dout, dfinals, cache)

    states = [p["h0"], p["c0"]] if kind == "lstm" else [p["h0"]]
    caches, outs = [], []
    for k in range(T // K):
        pk = dict(p, x=p["x"][k * K:(k + 1) * K], h0=states[0], **({"c0": states[1]} if kind == "lstm" else {}))
        ok, states, ck = forward(impl, kind, nl, pk, _chunk_lengths(lengths, k, K))
        outs.append(ok)
        caches.append(ck)
    assert_close(np.concatenate(outs), out, dtype)
    for a, b in zip(states, finals):
        assert_close(a, b, dtype)

    carried = list(dfinals)  # the last chunk gets the true dhT, dcT
    dxs, wsum = [], {n: 0 for n in ("W_ih", "W_hh", "b_ih", "b_hh")}
    for k in reversed(range(T // K)):
        gk = backward(impl, kind, dout[k * K:(k + 1) * K], carried, caches[k])
        carried = [gk["h0"], gk["c0"]] if kind == "lstm" else [gk["h0"]]  # -> previous chunk's dhT, dcT
        dxs.insert(0, gk["x"])
        for n in wsum:
            wsum[n] = wsum[n] + gk[n]
    loose = dict(atol=10 * tol(dtype)["atol"], rtol=10 * tol(dtype)["rtol"])  # summation order
    assert_close(np.concatenate(dxs), g["x"], dtype, **loose)
    assert_close(carried[0], g["h0"], dtype, **loose)
    if kind == "lstm":
        assert_close(carried[1], g["c0"], dtype, **loose)
    for n, s in wsum.items():
        assert_close(s, g[n], dtype, **loose)


@pytest.mark.parametrize("kind,nl", TBPTT_CELLS, ids=TBPTT_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_truncated_bptt_is_the_gradient_of_the_detached_objective(rng, impl, kind, nl):
    """dhT=None (and dcT=None) at chunk edges: the sum over chunks of the chunk gradients is
    the gradient of sum_k L_k(W; start state of chunk k held constant), and it differs from
    full BPTT by exactly the gradient carried across the edges."""
    T, K, B, I, H = 6, 3, 2, 2, 3
    n_chunks = T // K
    lengths = [6, 4]
    p = make_params(rng, kind, T, B, I, H)
    dout, dfinals = upstream(rng, kind, T, B, H)
    nstate = len(final_names(kind))

    def chunk_params(q, k, start):
        return dict(q, x=q["x"][k * K:(k + 1) * K], h0=start[0], **({"c0": start[1]} if kind == "lstm" else {}))

    # forward in chunks, remembering each chunk's start state (a constant from here on)
    starts, caches = [], []
    state = [p["h0"], p["c0"]] if kind == "lstm" else [p["h0"]]
    for k in range(n_chunks):
        starts.append(state)
        _, state, ck = forward(impl, kind, nl, chunk_params(p, k, state), _chunk_lengths(lengths, k, K))
        caches.append(ck)

    # truncated backward: each chunk on its own, the last one with the true dhT, dcT
    trunc = {n: 0 for n in ("W_ih", "W_hh", "b_ih", "b_hh")}
    dxs = []
    for k in range(n_chunks):
        last = k == n_chunks - 1
        gk = backward(impl, kind, dout[k * K:(k + 1) * K], dfinals if last else [None] * nstate, caches[k])
        dxs.append(gk["x"])
        for n in trunc:
            trunc[n] = trunc[n] + gk[n]
    trunc["x"] = np.concatenate(dxs)

    # the truncated objective, by finite differences: chunk starts detached (held at `starts`)
    def objective_outputs(q):
        parts = []
        for k in range(n_chunks):
            ok, fk, _ = forward(ref, kind, nl, chunk_params(q, k, starts[k]), _chunk_lengths(lengths, k, K))
            parts.append(ok.reshape(-1))
        return np.concatenate(parts + [f.reshape(-1) for f in fk])

    dy = flat_upstream(dout, dfinals, T, B, H)
    for name in ("x", "W_ih", "W_hh", "b_ih", "b_hh"):
        expected = finite_difference(lambda z, name=name: objective_outputs({**p, name: z}), p[name], dy)
        np.testing.assert_allclose(trunc[name], expected, **FD_TOL, err_msg=f"d{name}")

    # full BPTT = truncated + what the carried gradient adds to each earlier chunk
    _, _, cache = forward(impl, kind, nl, p, lengths)
    full = backward(impl, kind, dout, dfinals, cache)
    carried = list(dfinals)
    edge = {n: 0 for n in ("W_ih", "W_hh", "b_ih", "b_hh")}
    for k in reversed(range(n_chunks)):
        gk = backward(impl, kind, dout[k * K:(k + 1) * K], carried, caches[k])
        if k < n_chunks - 1:
            ek = backward(impl, kind, None, carried, caches[k])  # only the edge's gradient
            for n in edge:
                edge[n] = edge[n] + ek[n]
        carried = [gk["h0"], gk["c0"]] if kind == "lstm" else [gk["h0"]]
    for n in edge:
        assert np.max(np.abs(edge[n])) > 1e-3, n  # truncation really drops something
        np.testing.assert_allclose(full[n], trunc[n] + edge[n], rtol=1e-10, atol=1e-12, err_msg=n)
    assert not np.allclose(full["W_hh"], trunc["W_hh"], rtol=1e-3, atol=1e-6)


# ---------------------------------------------------------------------------------------
# the cache: layout documented in nnkern/_cache.py, interchangeable between implementations


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_cache_layout(rng, impl, kind, nl, reverse, dtype):
    T, B, I, H = 4, 3, 2, 5
    G = GATES[kind]
    lengths = [4, 0, 2]
    p = make_params(rng, kind, T, B, I, H, dtype)
    out, finals, cache = forward(impl, kind, nl, p, lengths, reverse)
    assert isinstance(cache, RecurrentCache)
    assert (cache.kind, cache.nonlinearity, cache.reverse) == (kind, nl, reverse)
    assert (cache.T, cache.B, cache.I, cache.H, cache.G, cache.dtype) == (T, B, I, H, G, dtype)
    assert cache.has_b_ih and cache.has_b_hh
    np.testing.assert_array_equal(cache.lengths, lengths)
    tix = cache.step_times()
    np.testing.assert_array_equal(tix, step_times(T, B, np.array(lengths), reverse))
    expected_tix = [[0, -1, 0], [1, -1, 1], [2, -1, -1], [3, -1, -1]] if not reverse else \
        [[3, -1, 1], [2, -1, 0], [1, -1, -1], [0, -1, -1]]
    np.testing.assert_array_equal(tix, expected_tix)
    np.testing.assert_array_equal(cache.x, p["x"])
    np.testing.assert_array_equal(cache.W_ih, p["W_ih"])
    np.testing.assert_array_equal(cache.W_hh, p["W_hh"])
    assert cache.h.shape == (T + 1, B, H) and cache.h.dtype == dtype
    np.testing.assert_array_equal(cache.h0, p["h0"])
    np.testing.assert_array_equal(cache.h[T], finals[0])
    valid = tix >= 0
    for s in range(T):
        for b in range(B):
            if valid[s, b]:
                np.testing.assert_array_equal(cache.h[s + 1, b], out[tix[s, b], b])
            else:  # padding carries the state
                np.testing.assert_array_equal(cache.h[s + 1, b], cache.h[s, b])
    if kind == "lstm":
        assert cache.c.shape == (T + 1, B, H) and cache.c.dtype == dtype
        np.testing.assert_array_equal(cache.c0, p["c0"])
        np.testing.assert_array_equal(cache.c[T], finals[1])
        i, f, g_, o = np.split(cache.gates, 4, axis=2)
        # c' = f c + i g, h' = o tanh(c') at every valid step
        assert_close((f * cache.c[:-1] + i * g_)[valid], cache.c[1:][valid], dtype)
        assert_close((o * np.tanh(cache.c[1:]))[valid], cache.h[1:][valid], dtype)
    else:
        assert cache.c is None and cache.c0 is None
    if kind == "gru":
        assert cache.hn.shape == (T, B, H) and cache.hn.dtype == dtype
        Whn, bhn = p["W_hh"][2 * H:], p["b_hh"][2 * H:]
        assert_close(cache.hn[valid], (cache.h[:-1] @ Whn.T + bhn)[valid], dtype)
        r, z, n = np.split(cache.gates, 3, axis=2)
        assert_close(((1 - z) * n + z * cache.h[:-1])[valid], cache.h[1:][valid], dtype)
    else:
        assert cache.hn is None
    if kind == "rnn":
        assert cache.gates is None
    else:
        assert cache.gates.shape == (T, B, G * H) and cache.gates.dtype == dtype
        assert np.all((cache.gates[valid] >= -1) & (cache.gates[valid] <= 1))
    assert "RecurrentCache" in repr(cache)


@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_matches_reference(rng, impl, kind, nl, dtype):
    """impl against the twin: outputs, caches (read by the twin's backward) and gradients."""
    T, B, I, H = 7, 5, 6, 8
    lengths = [7, 3, 0, 1, 7]
    p = make_params(rng, kind, T, B, I, H, dtype)
    inputs = {k: None if a is None else a.copy() for k, a in p.items()}
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    for L, reverse in ((None, False), (lengths, False), (lengths, True)):
        out, finals, cache = forward(impl, kind, nl, p, L, reverse)
        r_out, r_finals, r_cache = forward(ref, kind, nl, p, L, reverse)
        assert out.shape == (T, B, H) and out.dtype == dtype
        assert_close(out, r_out, dtype)
        for a, b in zip(finals, r_finals):
            assert a.shape == (B, H) and a.dtype == dtype
            assert_close(a, b, dtype)
        g = backward(impl, kind, dout, dfinals, cache)
        r_g = backward(ref, kind, dout, dfinals, r_cache)
        x_g = backward(ref, kind, dout, dfinals, cache)  # the twin reads impl's cache
        for name in param_names(kind):
            assert g[name].shape == p[name].shape and g[name].dtype == dtype, name
            assert_close(g[name], r_g[name], dtype, atol=10 * tol(dtype)["atol"], err_msg=name)
            assert_close(x_g[name], r_g[name], dtype, atol=10 * tol(dtype)["atol"], err_msg=name)
    for k, a in p.items():  # inputs untouched
        if a is not None:
            np.testing.assert_array_equal(a, inputs[k])


# Wider layers than the tests above use, where the time loop runs on two threads and the
# packed weights (1-3 MB in float32) no longer sit in L1 or L2. (kind, nl, I, H). An input
# of 64 columns is a single dx tile, which both threads share by rows; 700 columns are 11
# tiles, also shared by rows; the others divide into whole tiles per thread.
WIDE = [("lstm", None, 200, 200), ("gru", None, 256, 240), ("rnn", "tanh", 700, 300),
        ("lstm", None, 384, 272), ("lstm", None, 64, 256)]


@pytest.mark.skipif(len(IMPLS) < 2, reason="the C++ extension is not built")
@pytest.mark.parametrize("kind,nl,I,H", WIDE, ids=[f"{k}-{i}x{h}" for k, _, i, h in WIDE])
def test_wide_layers_same_bits_on_1_and_2_threads(rng, kind, nl, I, H, dtype):
    """The split of the hidden units between threads changes no bit (recurrent.cpp), with
    lengths and reverse, and the results are the twin's."""
    import nnkern

    impl = IMPLS[1]
    T, B = 37, 5
    lengths = [37, 0, 19, 1, 36]
    p = make_params(rng, kind, T, B, I, H, dtype)
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    for L, reverse in ((None, False), (lengths, False), (lengths, True)):
        runs = []
        for threads in (1, 2):
            nnkern.set_num_threads(threads)
            try:
                out, finals, cache = forward(impl, kind, nl, p, L, reverse)
                runs.append((out, finals, backward(impl, kind, dout, dfinals, cache)))
            finally:
                nnkern.set_num_threads(2)
        (out, finals, g), (out2, finals2, g2) = runs
        np.testing.assert_array_equal(out, out2)
        for a, b in zip(finals, finals2):
            np.testing.assert_array_equal(a, b)
        r_out, r_finals, r_cache = forward(ref, kind, nl, p, L, reverse)
        assert_close(out, r_out, dtype)
        for a, b in zip(finals, r_finals):
            assert_close(a, b, dtype)
        r_g = backward(ref, kind, dout, dfinals, r_cache)
        for name in param_names(kind):
            np.testing.assert_array_equal(g[name], g2[name], err_msg=name)
            assert_close(g[name], r_g[name], dtype, atol=30 * tol(dtype)["atol"], err_msg=name)


@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_returns_fresh_arrays(rng, impl, kind, nl):
    T, B, I, H = 3, 2, 3, 2
    p = make_params(rng, kind, T, B, I, H)
    dout, dfinals = upstream(rng, kind, T, B, H)
    out, finals, cache = forward(impl, kind, nl, p)
    g = backward(impl, kind, dout, dfinals, cache)
    results = [out, *finals, *g.values()]
    for i, a in enumerate(results):
        assert a.flags.c_contiguous and a.flags.writeable
        for other in results[i + 1:]:
            assert not np.shares_memory(a, other)
        for q in [*[v for v in p.values() if v is not None], dout, *dfinals]:
            assert not np.shares_memory(a, q)
    # writing to returned arrays leaves the cache (and so the backward) intact
    g_before = backward(impl, kind, dout, dfinals, cache)
    for a in (out, *finals):
        a[...] = 7.0
    g_after = backward(impl, kind, dout, dfinals, cache)
    for name in g_before:
        np.testing.assert_array_equal(g_after[name], g_before[name])


@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_non_contiguous_inputs(rng, impl, kind, nl, dtype):
    T, B, I, H = 4, 3, 2, 3
    p = make_params(rng, kind, T, B, I, H, dtype)
    strided = {k: None if a is None else
               (np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim > 1 else np.repeat(a, 2)[::2])
               for k, a in p.items()}
    strided["W_hh"] = np.asfortranarray(p["W_hh"])
    for k, a in strided.items():
        if a is not None:
            assert not a.flags.c_contiguous, k
            np.testing.assert_array_equal(a, p[k])
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    dout_s = np.repeat(dout, 2, axis=0)[::2]
    out, finals, cache = forward(impl, kind, nl, strided, [4, 2, 0], True)
    r_out, r_finals, r_cache = forward(ref, kind, nl, p, [4, 2, 0], True)
    assert_close(out, r_out, dtype)
    g = backward(impl, kind, dout_s, dfinals, cache)
    r_g = backward(ref, kind, dout, dfinals, r_cache)
    for name in g:
        assert_close(g[name], r_g[name], dtype, err_msg=name)


@pytest.mark.parametrize("TBIH", [(0, 2, 3, 4), (3, 0, 3, 4), (3, 2, 0, 4), (3, 2, 3, 0)],
                         ids=["T0", "B0", "I0", "H0"])
@pytest.mark.parametrize("kind,nl", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_empty_dimensions(rng, impl, kind, nl, TBIH):
    T, B, I, H = TBIH
    p = make_params(rng, kind, T, B, I, H)
    dout, dfinals = upstream(rng, kind, T, B, H)
    out, finals, cache = forward(impl, kind, nl, p, np.zeros(B, np.int64) if T == 0 else None)
    assert out.shape == (T, B, H)
    if T == 0:  # no steps: the state is the initial state
        np.testing.assert_array_equal(finals[0], p["h0"])
    g = backward(impl, kind, dout, dfinals, cache)
    for name in param_names(kind):
        assert g[name].shape == p[name].shape, name
    if T == 0:
        np.testing.assert_array_equal(g["h0"], dfinals[0])
        np.testing.assert_array_equal(g["W_hh"], np.zeros_like(p["W_hh"]))
    r_out, r_finals, r_cache = forward(ref, kind, nl, p, np.zeros(B, np.int64) if T == 0 else None)
    assert_close(out, r_out, np.float64)
    r_g = backward(ref, kind, dout, dfinals, r_cache)
    for name in param_names(kind):
        assert_close(g[name], r_g[name], np.float64, err_msg=name)


# ---------------------------------------------------------------------------------------
# against PyTorch


def torch_run(torch, kind, nl, p, lengths, reverse, dout, dfinals, bias):
    """out, finals and gradients of sum(out*dout) + sum(hT*dhT) [+ sum(cT*dcT)] from torch."""
    T, B, I = p["x"].shape
    H = p["W_hh"].shape[1]
    dt = torch.float64 if p["x"].dtype == np.float64 else torch.float32
    cls = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind]
    kw = {"nonlinearity": nl} if kind == "rnn" else {}
    m = cls(I, H, num_layers=1, bias=bias, bidirectional=reverse, dtype=dt, **kw)
    sfx = "_l0_reverse" if reverse else "_l0"  # reverse: the backward half of a bidirectional layer
    params = {"W_ih": "weight_ih", "W_hh": "weight_hh"}
    if bias:
        params.update(b_ih="bias_ih", b_hh="bias_hh")
    with torch.no_grad():
        for ours, theirs in params.items():
            getattr(m, theirs + sfx).copy_(torch.from_numpy(p[ours]))
    xt = torch.tensor(p["x"], requires_grad=True)
    leaves = {}
    hx = None
    if p["h0"] is not None:
        states = []
        for name in ["h0", "c0"] if kind == "lstm" else ["h0"]:
            leaves[name] = torch.tensor(p[name], requires_grad=True)
            s = leaves[name][None]
            if reverse:  # (2, B, H): forward direction first, from zeros
                s = torch.cat([torch.zeros_like(s), s])
            states.append(s)
        hx = tuple(states) if kind == "lstm" else states[0]
    inp = xt
    if lengths is not None:
        inp = torch.nn.utils.rnn.pack_padded_sequence(
            xt, torch.as_tensor(np.asarray(lengths, np.int64)), enforce_sorted=False)
    res, fin = m(inp, hx)
    if lengths is not None:
        res, _ = torch.nn.utils.rnn.pad_packed_sequence(res, total_length=T)
    out = res[..., H:] if reverse else res
    finals = [f[-1] for f in fin] if kind == "lstm" else [fin[-1]]
    loss = (out * torch.from_numpy(dout)).sum()
    for f, d in zip(finals, dfinals):
        loss = loss + (f * torch.from_numpy(d)).sum()
    loss.backward()
    grads = {"x": xt.grad.numpy()}
    grads.update({name: t.grad.numpy() for name, t in leaves.items()})
    grads.update({ours: getattr(m, theirs + sfx).grad.numpy() for ours, theirs in params.items()})
    return out.detach().numpy(), [f.detach().numpy() for f in finals], grads


TORCH_SHAPES = [(5, 4, 3, 6), (1, 1, 1, 1)]


@pytest.mark.parametrize("bias", [True, False], ids=["bias-h0", "no-bias-no-h0"])
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("shape", TORCH_SHAPES, ids=["5x4x3x6", "1x1x1x1"])
@pytest.mark.parametrize("kind,nl", TORCH_CELLS, ids=TORCH_CELL_IDS)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_against_torch(torch, rng, impl, kind, nl, shape, with_lengths, reverse, bias, dtype):
    T, B, I, H = shape
    # packed sequences need lengths >= 1; one full length, one of 1, unsorted
    lengths = ([5, 1, 3, 5][:B] if B > 1 else [1]) if with_lengths else None
    p = make_params(rng, kind, T, B, I, H, dtype, bias=bias, states=bias)
    dout, dfinals = upstream(rng, kind, T, B, H, dtype)
    out, finals, cache = forward(impl, kind, nl, p, lengths, reverse)
    g = backward(impl, kind, dout, dfinals, cache)
    t_out, t_finals, t_g = torch_run(torch, kind, nl, p, lengths, reverse, dout, dfinals, bias)
    tt = TORCH_TOL[dtype]
    np.testing.assert_allclose(out, t_out, **tt, err_msg="out")
    for a, b, n in zip(finals, t_finals, final_names(kind)):
        np.testing.assert_allclose(a, b, **tt, err_msg=n)
    for name, expected in t_g.items():
        np.testing.assert_allclose(g[name], expected, **tt, err_msg=f"d{name}")
    assert set(t_g) == set(param_names(kind)) - (set() if bias else {"h0", "c0", "b_ih", "b_hh"})


# ---------------------------------------------------------------------------------------
# bad arguments: TypeError (dtype) / ValueError (shape, value), the message names the argument


def _base(kind, dtype=np.float64):
    return make_params(np.random.default_rng(0), kind, 4, 3, 5, 2, dtype)


def _call_forward(impl, kind, args, **kw):
    f = getattr(impl, f"{kind}_forward")
    if kind == "rnn":
        kw.setdefault("nonlinearity", "tanh")
    return f(**args, **kw)


def _forward_cases(kind):
    G = GATES[kind]
    f32 = np.float32
    cases = [
        ("x-int64", dict(x=np.ones((4, 3, 5), np.int64)), {}, TypeError, r"^x: .*int64"),
        ("x-float16", dict(x=np.ones((4, 3, 5), np.float16)), {}, TypeError, r"^x: .*float16"),
        ("x-f32-W-f64", dict(x=np.ones((4, 3, 5), f32)), {}, TypeError, r"^W_ih: .*float64.*x.*float32"),
        ("W_hh-f32", dict(W_hh=np.ones((G * 2, 2), f32)), {}, TypeError, r"^W_hh: .*float32"),
        ("h0-f32", dict(h0=np.ones((3, 2), f32)), {}, TypeError, r"^h0: .*float32"),
        ("b_hh-f32", dict(b_hh=np.ones(G * 2, f32)), {}, TypeError, r"^b_hh: .*float32"),
        ("b_ih-int", dict(b_ih=np.ones(G * 2, np.int32)), {}, TypeError, r"^b_ih: .*int32"),
        ("x-2d", dict(x=np.ones((4, 5))), {}, ValueError, r"^x: .*3-D"),
        ("x-4d", dict(x=np.ones((4, 3, 5, 1))), {}, ValueError, r"^x: .*3-D"),
        ("W_hh-1d", dict(W_hh=np.ones(G * 2)), {}, ValueError, r"^W_hh: "),
        ("W_hh-not-GHxH", dict(W_hh=np.ones((G * 2 + 1, 2))), {}, ValueError, r"^W_hh: .*G\*H, H"),
        ("W_hh-square-other-H", dict(W_hh=np.ones((G * 3, 3))), {}, ValueError, r"^W_ih: .*H = 3"),
        ("W_ih-wrong-I", dict(W_ih=np.ones((G * 2, 4))), {}, ValueError, r"^W_ih: .*I = 5"),
        ("W_ih-wrong-GH", dict(W_ih=np.ones((G * 2 + 2, 5))), {}, ValueError, r"^W_ih: "),
        ("W_ih-3d", dict(W_ih=np.ones((G * 2, 5, 1))), {}, ValueError, r"^W_ih: "),
        ("b_ih-shape", dict(b_ih=np.ones(G * 2 + 1)), {}, ValueError, r"^b_ih: "),
        ("b_hh-2d", dict(b_hh=np.ones((1, G * 2))), {}, ValueError, r"^b_hh: "),
        ("h0-wrong-B", dict(h0=np.ones((4, 2))), {}, ValueError, r"^h0: .*\(B, H\)"),
        ("h0-wrong-H", dict(h0=np.ones((3, 3))), {}, ValueError, r"^h0: "),
        ("h0-3d", dict(h0=np.ones((1, 3, 2))), {}, ValueError, r"^h0: "),
        ("lengths-too-long", {}, dict(lengths=[4, 5, 1]), ValueError, r"^lengths: .*\[0, 4\].*5"),
        ("lengths-negative", {}, dict(lengths=[4, -1, 1]), ValueError, r"^lengths: .*-1"),
        ("lengths-wrong-B", {}, dict(lengths=[4, 4]), ValueError, r"^lengths: .*\(3,\)"),
        ("lengths-2d", {}, dict(lengths=[[4, 4, 4]]), ValueError, r"^lengths: "),
        ("lengths-scalar", {}, dict(lengths=4), ValueError, r"^lengths: "),
        ("lengths-float", {}, dict(lengths=np.array([4.0, 2.0, 1.0])), TypeError, r"^lengths: .*float64"),
        ("lengths-bool", {}, dict(lengths=np.array([True, True, False])), TypeError, r"^lengths: .*bool"),
        ("reverse-str", {}, dict(reverse="yes"), TypeError, r"^reverse: "),
    ]
    if kind == "lstm":
        cases += [
            ("c0-wrong-shape", dict(c0=np.ones((3, 3))), {}, ValueError, r"^c0: "),
            ("c0-f32", dict(c0=np.ones((3, 2), f32)), {}, TypeError, r"^c0: .*float32"),
        ]
    if kind == "rnn":
        cases += [
            ("nonlinearity-gelu", {}, dict(nonlinearity="gelu"), ValueError, r"^nonlinearity: .*gelu"),
            ("nonlinearity-None", {}, dict(nonlinearity=None), ValueError, r"^nonlinearity: "),
            ("nonlinearity-upper", {}, dict(nonlinearity="TANH"), ValueError, r"^nonlinearity: "),
        ]
    return [pytest.param(kind, args, kw, exc, match, id=f"{kind}-{cid}") for cid, args, kw, exc, match in cases]


FORWARD_CASES = [c for kind in GATES for c in _forward_cases(kind)]


@pytest.mark.parametrize("kind,args,kw,exc,match", FORWARD_CASES)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_bad_forward_arguments(impl, kind, args, kw, exc, match):
    with pytest.raises(exc, match=match):
        _call_forward(impl, kind, {**_base(kind), **args}, **kw)


def _backward_cases(kind):
    f32 = np.float32
    cases = [
        ("dout-shape", dict(dout=np.ones((4, 3, 3))), ValueError, r"^dout: .*\(4, 3, 2\)"),
        ("dout-2d", dict(dout=np.ones((4, 6))), ValueError, r"^dout: "),
        ("dout-f32", dict(dout=np.ones((4, 3, 2), f32)), TypeError, r"^dout: .*float32.*float64"),
        ("dout-int", dict(dout=np.ones((4, 3, 2), np.int64)), TypeError, r"^dout: .*int64"),
        ("dhT-shape", dict(dhT=np.ones((3, 3))), ValueError, r"^dhT: .*\(3, 2\)"),
        ("dhT-f32", dict(dhT=np.ones((3, 2), f32)), TypeError, r"^dhT: "),
        ("cache-tuple", dict(cache=(1, 2)), TypeError, r"^cache: .*RecurrentCache"),
        ("cache-None", dict(cache=None), TypeError, r"^cache: "),
        ("cache-other-kind", dict(cache="other"), ValueError, r"^cache: .*_forward"),
    ]
    if kind == "lstm":
        cases += [
            ("dcT-shape", dict(dcT=np.ones((2, 2))), ValueError, r"^dcT: "),
            ("dcT-f32", dict(dcT=np.ones((3, 2), f32)), TypeError, r"^dcT: "),
        ]
    return [pytest.param(kind, args, exc, match, id=f"{kind}-{cid}") for cid, args, exc, match in cases]


BACKWARD_CASES = [c for kind in GATES for c in _backward_cases(kind)]


@pytest.mark.parametrize("kind,args,exc,match", BACKWARD_CASES)
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_bad_backward_arguments(impl, kind, args, exc, match):
    p = _base(kind)
    cache = _call_forward(impl, kind, p)[-1]
    kw = {"dout": np.ones((4, 3, 2)), "dhT": np.ones((3, 2)), "cache": cache}
    if kind == "lstm":
        kw["dcT"] = np.ones((3, 2))
    kw.update(args)
    if isinstance(kw["cache"], str):
        other = "gru" if kind != "gru" else "lstm"
        kw["cache"] = _call_forward(impl, other, _base(other))[-1]
    f = getattr(impl, f"{kind}_backward")
    with pytest.raises(exc, match=match):
        f(**kw)
