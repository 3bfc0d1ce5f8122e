"""Models and their pieces: masked losses, the Attention layer, Seq2Seq (full gradient by
finite differences, decoding, learning a small task) and the Autoencoder."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FD_TOL, finite_difference
from nnkern import nn, reference

F64 = np.float64


def _param_fd(model, loss_of, rel=2e-5):
    """Every parameter gradient of model (already filled by one backward of loss_of()) against
    central differences of the scalar loss_of()."""
    for name, p in model.named_parameters():
        fd = np.zeros_like(p)
        for i in range(p.size):
            old = p.flat[i]
            p.flat[i] = old + 1e-6
            a = loss_of()
            p.flat[i] = old - 1e-6
            b = loss_of()
            p.flat[i] = old
            fd.flat[i] = (a - b) / 2e-6
        g = model.grads[name]
        scale = max(np.abs(fd).max(), 1e-8)
        assert np.abs(g - fd).max() <= rel * scale + 1e-9, (name, np.abs(g - fd).max(), scale)


# ---------------------------------------------------------------------------------------
# losses


@pytest.mark.parametrize("cls,name", [(nn.MSELoss, "mse_loss"), (nn.MAELoss, "mae_loss"),
                                      (nn.HuberLoss, "huber_loss"),
                                      (nn.BCEWithLogitsLoss, "binary_cross_entropy_with_logits")])
def test_elementwise_losses_with_mask(cls, name, rng):
    pred = rng.standard_normal((4, 3, 2))
    target = rng.random((4, 3, 2))
    mask = rng.random((4, 3)) > 0.4
    loss = cls()
    value = loss.forward(pred, target, mask)
    per = getattr(reference, name)(pred, target, reduction="none")
    np.testing.assert_allclose(value, per[mask].mean(), rtol=1e-12)
    g = loss.backward()
    assert np.all(g[~mask] == 0)
    f = lambda z: getattr(reference, name)(z, target, reduction="none") * (mask[..., None] / (mask.sum() * 2))  # noqa: E731
    np.testing.assert_allclose(g, finite_difference(f, pred, np.ones_like(pred)), **FD_TOL)
    assert np.isclose(cls(reduction="sum").forward(pred, target, mask), per[mask].sum())


def test_cross_entropy_loss_with_mask_and_ignore_index(rng):
    logits = rng.standard_normal((3, 4, 5))
    target = rng.integers(0, 5, (3, 4))
    target[0, 1] = -100
    mask = rng.random((3, 4)) > 0.3
    loss = nn.CrossEntropyLoss()
    value = loss.forward(logits, target, mask)
    counts = mask & (target != -100)
    per = reference.cross_entropy(logits.reshape(-1, 5), np.where(counts, target, -100).ravel(), reduction="none")
    np.testing.assert_allclose(value, per.sum() / counts.sum(), rtol=1e-12)
    g = loss.backward()
    assert g.shape == logits.shape and np.all(g[~counts] == 0)

    def f(z):
        return reference.cross_entropy(z.reshape(-1, 5), np.where(counts, target, -100).ravel(),
                                       reduction="none").reshape(3, 4) / counts.sum()

    np.testing.assert_allclose(g, finite_difference(f, logits, np.ones((3, 4))), **FD_TOL)
    with pytest.raises(ValueError, match="target: expected shape"):
        loss.forward(logits, target[:, :2])
    with pytest.raises(TypeError, match="mask: expected a boolean"):
        loss.forward(logits, target, mask.astype(int))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.MSELoss().backward()


# ---------------------------------------------------------------------------------------
# Attention layer


@pytest.mark.parametrize("kind", ["dot", "scaled_dot", "additive"])
def test_attention_layer_gradients(kind, rng):
    att = nn.Attention(kind, 4, 4, 3, seed=0, dtype=F64)
    q, k = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 5, 4))
    mask = rng.random((2, 5)) > 0.3
    mask[:, 0] = True
    out = att.forward(q, k, mask=mask)
    dout = rng.standard_normal(out.shape)
    att.zero_grad()
    dq, dk, dv = att.backward(dout)
    assert dv is None  # v was k: its gradient is in dk
    np.testing.assert_allclose(dq, finite_difference(lambda z: att.forward(z, k, mask=mask), q, dout), **FD_TOL)
    np.testing.assert_allclose(dk, finite_difference(lambda z: att.forward(q, z, mask=mask), k, dout), **FD_TOL)
    att.forward(q, k, mask=mask)
    _param_fd(att, lambda: float(np.sum(att.forward(q, k, mask=mask) * dout)))
    np.testing.assert_allclose(att.weights.sum(-1), 1.0, rtol=1e-12)


# ---------------------------------------------------------------------------------------
# Seq2Seq


def _batch(rng, B=2, Ts=5, Td=4, V=7):
    src = rng.integers(3, V, (B, Ts))
    tgt = rng.integers(3, V, (B, Td))
    tgt_in = np.concatenate([np.ones((B, 1), np.int64), tgt[:, :-1]], axis=1)
    return src, tgt, tgt_in


@pytest.mark.parametrize("cell,bidirectional,attention", [
    ("lstm", True, "additive"), ("gru", False, "scaled_dot"), ("rnn", True, "dot"), ("lstm", False, None),
])
def test_seq2seq_full_gradient(cell, bidirectional, attention, rng):
    m = nn.Seq2Seq(7, 7, embed_size=3, hidden_size=3, cell=cell, bidirectional=bidirectional,
                   attention=attention, num_layers=2 if cell == "gru" else 1, seed=0, dtype=F64)
    src, tgt, tgt_in = _batch(rng)
    src_len = np.array([5, 3])
    tgt_len = np.array([4, 2])
    tmask = np.arange(4)[None, :] < tgt_len[:, None]
    loss = nn.CrossEntropyLoss()

    def loss_of():
        return float(loss.forward(m.forward(src, tgt_in, src_len, tgt_len), tgt, tmask))

    loss_of()
    m.zero_grad()
    assert m.backward(loss.backward()) is None
    _param_fd(m, loss_of)


def test_seq2seq_decoding(rng):
    m = nn.Seq2Seq(7, 7, embed_size=4, hidden_size=5, seed=1, dtype=F64).eval()
    src, _, _ = _batch(rng, B=3)
    g = m.greedy(src, max_len=6)
    assert g.shape == (3, 6)
    beams = m.beam_search(src, beam_size=1, max_len=6, length_penalty=0.0)
    for row, seq in zip(g, beams):  # beam size 1 is greedy
        assert list(row[: len(seq)]) == seq
    wide = m.beam_search(src, beam_size=4, max_len=6)
    assert len(wide) == 3 and all(len(s) <= 6 for s in wide)


def test_seq2seq_learns_to_reverse(rng):
    """A tiny model trained with plain Adam (written here) learns to reverse 3-digit strings."""
    V, BOS, EOS = 8, 1, 2
    m = nn.Seq2Seq(V, V, embed_size=16, hidden_size=32, cell="gru", attention="scaled_dot", seed=0)
    loss = nn.CrossEntropyLoss()
    params, grads = m.parameters(), m.gradients()
    mom = [np.zeros_like(p) for p in params]
    sq = [np.zeros_like(p) for p in params]
    for step in range(1, 301):
        src = rng.integers(3, V, (32, 3))
        tgt = np.concatenate([src[:, ::-1], np.full((32, 1), EOS)], axis=1)
        tgt_in = np.concatenate([np.full((32, 1), BOS), tgt[:, :-1]], axis=1)
        loss.forward(m.forward(src, tgt_in), tgt)
        m.zero_grad()
        m.backward(loss.backward())
        for p, g, a, b in zip(params, grads, mom, sq):
            a[...] = 0.9 * a + 0.1 * g
            b[...] = 0.999 * b + 0.001 * g * g
            p -= 0.01 * (a / (1 - 0.9**step)) / (np.sqrt(b / (1 - 0.999**step)) + 1e-8)
    m.eval()
    src = rng.integers(3, V, (100, 3))
    out = m.greedy(src, max_len=4)
    acc = np.mean(np.all(out[:, :3] == src[:, ::-1], axis=1))
    assert acc >= 0.9, acc


# ---------------------------------------------------------------------------------------
# Autoencoder


@pytest.mark.parametrize("tied", [False, True])
def test_autoencoder_gradients(tied, rng):
    a = nn.Autoencoder([5, 4, 2], activation="tanh", tied=tied, seed=0, dtype=F64)
    x = rng.standard_normal((3, 5))
    assert a.encode(x).shape == (3, 2)
    y = a.forward(x)
    dout = rng.standard_normal(y.shape)
    a.zero_grad()
    dx = a.backward(dout)
    np.testing.assert_allclose(dx, finite_difference(a.forward, x, dout), **FD_TOL)
    a.forward(x)
    _param_fd(a, lambda: float(np.sum(a.forward(x) * dout)))
    names = [n for n, _ in a.named_parameters()]
    assert ("dec0.weight" in names) != tied


def test_autoencoder_denoising_mask(rng):
    a = nn.Autoencoder([6, 3], noise=0.5, seed=0, dtype=F64)
    x = rng.standard_normal((4, 6))
    state = a._rng.bit_generator.state
    y = a.forward(x)
    dout = rng.standard_normal(y.shape)
    a.zero_grad()
    dx = a.backward(dout)

    def f(z):
        a._rng.bit_generator.state = state
        return a.forward(z)

    np.testing.assert_allclose(dx, finite_difference(f, x, dout), **FD_TOL)
    a.eval()
    np.testing.assert_array_equal(a.forward(x), a.forward(x))
    with pytest.raises(ValueError, match="x: expected shape"):
        a.forward(x[:, :5])


# ---------------------------------------------------------------------------------------
# Gradient diagnostics


@pytest.mark.parametrize("cell", ["RNN", "GRU", "LSTM"])
def test_hidden_gradient_norms_match_full_bptt(cell, rng):
    from nnkern import ops

    layer = getattr(nn, cell)(3, 5, seed=0, dtype=F64)
    x = rng.standard_normal((8, 2, 3))
    norms = nn.hidden_gradient_norms(layer, x)
    assert norms.shape == (8,) and np.isclose(norms[-1], np.sqrt(10))
    p = layer.params
    args = (p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"])
    ones = np.ones((2, 5))
    for t in (0, 3, 6):  # ||dL/dh_t|| by one full backward over the steps after t
        if cell == "LSTM":
            cache = ops.lstm_forward(x, None, None, *args)[3]
            c = ops.lstm_forward(x[t + 1:], cache.h[t + 1], cache.c[t + 1], *args)[3]
            dh = ops.lstm_backward(None, ones, None, c)[1]
        elif cell == "GRU":
            cache = ops.gru_forward(x, None, *args)[2]
            dh = ops.gru_backward(None, ones, ops.gru_forward(x[t + 1:], cache.h[t + 1], *args)[2])[1]
        else:
            cache = ops.rnn_forward(x, None, *args)[2]
            dh = ops.rnn_backward(None, ones, ops.rnn_forward(x[t + 1:], cache.h[t + 1], *args)[2])[1]
        np.testing.assert_allclose(norms[t], np.linalg.norm(dh), rtol=1e-10)


def test_vanishing_exploding_and_clipping(rng):
    x = rng.standard_normal((40, 4, 3))
    small = nn.RNN(3, 16, nonlinearity="sigmoid", seed=0, dtype=F64)
    n = nn.hidden_gradient_norms(small, x)
    assert n[0] < 1e-6 * n[-1]  # sigmoid: vanishes
    big = nn.RNN(3, 16, nonlinearity="relu", seed=0, dtype=F64)
    big.weight_hh_l0[...] = np.eye(16) * 1.5
    big.bias_ih_l0[...] = 1.0
    n = nn.hidden_gradient_norms(big, x)
    assert n[0] > 1e4 * n[-1]  # relu with gain 1.5: explodes
    c = nn.hidden_gradient_norms(big, x, clip=10.0)
    assert c.max() <= 10.0 + 1e-9
    lstm = nn.LSTM(3, 16, seed=0, dtype=F64)
    assert nn.hidden_gradient_norms(lstm, x)[0] > nn.hidden_gradient_norms(small, x)[0]
    with pytest.raises(ValueError, match="layer: expected"):
        nn.hidden_gradient_norms(nn.LSTM(3, 4, num_layers=2), x)


# ---------------------------------------------------------------------------------------
# fit, History, flat parameters


class _PlainSGD:
    def __init__(self, params, lr):
        self.params, self.lr = params, lr

    def step(self, grads):
        for p, g in zip(self.params, grads):
            p -= self.lr * g


class _StopAfter:
    def __init__(self, n):
        self.n, self.calls = n, 0

    def update(self, metrics, params):
        assert "loss" in metrics and "val_loss" in metrics and len(params) == 4
        self.calls += 1
        return self.calls >= self.n


def _regression(rng):
    X = rng.standard_normal((200, 4)).astype(np.float32)
    Y = (X[:, :1] * 0.5 - X[:, 1:2]).astype(np.float32)
    return X, Y


def test_fit_trains_and_records(rng, tmp_path, capsys):
    m = nn.Sequential(nn.Dense(4, 8, seed=0), nn.Tanh(), nn.Dense(8, 1, seed=1))
    X, Y = _regression(rng)
    h = nn.fit(m, nn.MSELoss(), _PlainSGD(m.parameters(), 0.05), (X, Y), val_data=(X[:50], Y[:50]),
               epochs=15, batch_size=32, seed=0)
    assert h.epochs == 15 and len(h["loss"]) == len(h["val_loss"]) == 15
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    assert "epoch 15/15" in capsys.readouterr().err
    np.testing.assert_allclose(nn.evaluate(m, nn.MSELoss(), (X[:50], Y[:50])), h["val_loss"][-1], rtol=1e-6)
    wrote = h.plot(tmp_path / "h.png")
    assert wrote == (tmp_path / "h.png").exists()


def test_fit_callbacks_stop_and_bad_input(rng):
    m = nn.Sequential(nn.Dense(4, 8, seed=0), nn.Tanh(), nn.Dense(8, 1, seed=1))
    X, Y = _regression(rng)
    stop = _StopAfter(3)
    h = nn.fit(m, nn.MSELoss(), _PlainSGD(m.parameters(), 0.05), (X, Y), val_data=(X, Y), epochs=10,
               callbacks=[stop], progress=False)
    assert h.epochs == 3 and h.stopped_early
    with pytest.raises(ValueError, match="same number of examples"):
        nn.fit(m, nn.MSELoss(), _PlainSGD(m.parameters(), 0.1), (X, Y[:10]), progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        nn.fit(m, nn.MSELoss(), _PlainSGD(m.parameters(), 0.1), (X, Y), batch_size=0)
    with pytest.raises(FloatingPointError, match="loss: nan"):
        Xn = X.copy()
        Xn[0] = np.nan
        nn.fit(m, nn.MSELoss(), _PlainSGD(m.parameters(), 0.1), (Xn, Y), batch_size=500, progress=False)


def test_flatten_parameters_keeps_values_and_training(rng):
    m = nn.LSTM(3, 4, num_layers=2, seed=0)
    before = m.state_dict()
    m.flatten_parameters()
    ps = m.parameters()
    base = ps[0].base
    assert base is not None and all(p.base is base for p in ps)
    assert all(g.base is m.gradients()[0].base for g in m.gradients())
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    out, _ = m.forward(x)
    m.zero_grad()
    m.backward(np.ones_like(out))
    assert all(np.any(g != 0) for g in m.gradients())


# ---------------------------------------------------------------------------------------
# CharRNN


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_char_rnn_gradient_state_and_sampling(cell, rng):
    m = nn.CharRNN(6, 3, 4, cell=cell, seed=0, dtype=F64)
    x = rng.integers(0, 6, (5, 2))
    y = rng.integers(0, 6, (5, 2))
    loss = nn.CrossEntropyLoss()

    def loss_of():
        return float(loss.forward(m.forward(x), y))

    loss_of()
    m.zero_grad()
    m.backward(loss.backward())
    _param_fd(m, loss_of)
    # carrying the state across chunks equals running the whole sequence at once
    full = m.forward(np.concatenate([x, y]))
    a = m.forward(x)
    b = m.forward(y, m.state)
    np.testing.assert_allclose(np.concatenate([a, b]), full, rtol=1e-12)
    s1 = m.sample([1, 2], 10, seed=3)
    assert len(s1) == 10 and s1 == m.sample([1, 2], 10, seed=3) and all(0 <= t < 6 for t in s1)
