"""nnkern.nn: layers' backward against finite differences (float64), recurrent stacks and
state dicts against torch.nn (when installed), state-dict loading and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import FD_TOL, TORCH_TOL, finite_difference
from nnkern import nn

F64 = np.float64


def _loss_grad_check(model, x, rng, forward=None, backward=None):
    """Check dL/dx and every parameter gradient of sum(forward(x) * dout) by finite differences."""
    forward = forward or model.forward
    backward = backward or model.backward
    out = forward(x)
    dout = rng.standard_normal(np.shape(out))
    model.zero_grad()
    dx = backward(dout)
    if dx is not None:
        np.testing.assert_allclose(dx, finite_difference(forward, x, dout), **FD_TOL)
    for name, p in model.named_parameters():
        saved = p.copy()

        def f(z, p=p):
            p[...] = z
            return forward(x)

        fd = finite_difference(f, saved, dout)
        p[...] = saved
        np.testing.assert_allclose(model.grads[name], fd, err_msg=name, **FD_TOL)


@pytest.mark.parametrize("layer", [
    lambda: nn.Dense(5, 3, seed=1, dtype=F64),
    lambda: nn.Dense(5, 3, bias=False, seed=1, dtype=F64),
    lambda: nn.Sigmoid(), lambda: nn.Tanh(), lambda: nn.ReLU(), lambda: nn.LeakyReLU(0.1),
    lambda: nn.Softmax(),
    lambda: nn.Sequential(nn.Dense(5, 4, seed=2, dtype=F64), nn.Tanh(), nn.Dense(4, 2, seed=3, dtype=F64)),
], ids=["dense", "dense-nobias", "sigmoid", "tanh", "relu", "leaky", "softmax", "sequential"])
def test_feedforward_gradients(layer, rng):
    m = layer()
    x = rng.standard_normal((4, 5)) + 0.05  # keep ReLU kinks away from 0
    _loss_grad_check(m, x, rng)


def test_embedding(rng):
    m = nn.Embedding(7, 3, padding_idx=0, seed=1, dtype=F64)
    assert np.all(m.weight[0] == 0)
    ids = np.array([[1, 0, 3], [3, 6, 1]])
    out = m.forward(ids)
    np.testing.assert_array_equal(out, m.weight[ids])
    dout = rng.standard_normal(out.shape)
    assert m.backward(dout) is None
    expected = np.zeros_like(m.weight)
    np.add.at(expected, ids.ravel(), dout.reshape(-1, 3))
    expected[0] = 0
    np.testing.assert_allclose(m.grads["weight"], expected)
    with pytest.raises(ValueError, match="ids: 7 is out of range"):
        m.forward(np.array([7]))
    with pytest.raises(TypeError, match="ids: expected an integer array"):
        m.forward(np.array([1.0]))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_recurrent_gradients(kind, bidirectional, rng):
    m = getattr(nn, kind)(3, 4, num_layers=2, bidirectional=bidirectional, seed=1, dtype=F64)
    x = rng.standard_normal((4, 2, 3))
    lengths = np.array([4, 2])
    _loss_grad_check(m, x, rng, forward=lambda z: m.forward(z, lengths=lengths)[0],
                     backward=lambda d: m.backward(d)[0])


def test_recurrent_state_gradients(rng):
    m = nn.LSTM(3, 4, num_layers=2, seed=1, dtype=F64)
    x = rng.standard_normal((3, 2, 3))
    h0, c0 = rng.standard_normal((2, 2, 2, 4))
    (out, (hT, cT)) = m.forward(x, (h0, c0))
    dout, dh, dc = rng.standard_normal(out.shape), rng.standard_normal(hT.shape), rng.standard_normal(cT.shape)
    m.zero_grad()
    _, (dh0, dc0) = m.backward(dout, (dh, dc))

    def total(h, c):
        o, (a, b) = m.forward(x, (h, c))
        return o, a, b

    def f_h(z):
        o, a, b = total(z, c0)
        return np.concatenate([o.ravel(), a.ravel(), b.ravel()])

    def f_c(z):
        o, a, b = total(h0, z)
        return np.concatenate([o.ravel(), a.ravel(), b.ravel()])

    d = np.concatenate([dout.ravel(), dh.ravel(), dc.ravel()])
    np.testing.assert_allclose(dh0, finite_difference(f_h, h0, d), **FD_TOL)
    np.testing.assert_allclose(dc0, finite_difference(f_c, c0, d), **FD_TOL)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_recurrent_matches_torch(torch, kind, batch_first, rng, dtype):
    T, B, I, H = 6, 4, 5, 7
    m = getattr(nn, kind)(I, H, num_layers=2, bidirectional=True, batch_first=batch_first, seed=1, dtype=dtype)
    tm = getattr(torch.nn, kind)(I, H, num_layers=2, bidirectional=True, batch_first=batch_first)
    tm = tm.double() if dtype == np.float64 else tm
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})  # ours loads into torch
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    lengths = np.array([6, 3, 1, 5])
    out, state = m.forward(x, lengths=lengths)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lengths), batch_first=batch_first,
                                                     enforce_sorted=False)
    ot, st = tm(packed)
    ot, _ = torch.nn.utils.rnn.pad_packed_sequence(ot, batch_first=batch_first, total_length=T)
    tol = TORCH_TOL[dtype]
    np.testing.assert_allclose(out, ot.detach().numpy(), **tol)
    hs, hst = (state[0], st[0]) if kind == "LSTM" else (state, st)
    np.testing.assert_allclose(hs, hst.detach().numpy(), **tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, _ = m.backward(dout)
    ot.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tol)
    for name, p in tm.named_parameters():
        np.testing.assert_allclose(m.grads[name], p.grad.numpy(), err_msg=name, **tol)


def test_torch_state_dict_loads_unchanged(torch):
    tm = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True)
    assert list(m.state_dict()) == list(tm.state_dict())
    m.load_state_dict(tm.state_dict())
    for k, v in tm.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v.numpy())


def test_state_dict_round_trip_and_npz(tmp_path, rng):
    a = nn.Sequential(nn.Dense(4, 3, seed=1), nn.ReLU(), nn.Dense(3, 2, seed=2))
    b = nn.Sequential(nn.Dense(4, 3, seed=3), nn.ReLU(), nn.Dense(3, 2, seed=4))
    assert list(a.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    a.save(tmp_path / "m.npz")
    b.load(tmp_path / "m.npz")
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_bad_state_dict_leaves_model_unchanged():
    m = nn.GRU(3, 4, num_layers=2)
    before = m.state_dict()
    bad = dict(before)
    bad["weight_hh_l1"] = np.zeros((5, 4), np.float32)
    bad["weight_ih_l0"] = np.ones_like(before["weight_ih_l0"])  # would be written first
    with pytest.raises(ValueError, match=r"state_dict\['weight_hh_l1'\]: expected shape \(12, 4\)"):
        m.load_state_dict(bad)
    missing = dict(before)
    del missing["bias_hh_l0"]
    with pytest.raises(KeyError, match="missing keys \\['bias_hh_l0'\\]"):
        m.load_state_dict(missing)
    with pytest.raises(KeyError, match="unexpected keys \\['extra'\\]"):
        m.load_state_dict({**before, "extra": np.zeros(1)})
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_recurrent_bad_input(rng):
    m = nn.LSTM(3, 4, num_layers=2)
    x = rng.standard_normal((5, 2, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="x: expected 3 input features"):
        m.forward(x[..., :2])
    with pytest.raises(ValueError, match="x: expected a 3-D"):
        m.forward(x[0])
    with pytest.raises(TypeError, match="state: expected a pair"):
        m.forward(x, np.zeros((2, 2, 4), np.float32))
    with pytest.raises(ValueError, match=r"state\[0\]: expected shape \(2, 2, 4\)"):
        m.forward(x, (np.zeros((1, 2, 4), np.float32), np.zeros((2, 2, 4), np.float32)))
    with pytest.raises(ValueError, match="lengths: expected shape"):
        m.forward(x, lengths=np.array([5]))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nn.GRU(3, 4).backward(np.zeros((5, 2, 4), np.float32))
    with pytest.raises(ValueError, match="dropout: expected a probability"):
        nn.LSTM(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="gelu")
    out, _ = m.forward(x)
    with pytest.raises(ValueError, match="dout: expected shape"):
        m.backward(out[:, :1])


def test_dropout_between_layers_train_and_eval(rng):
    m = nn.LSTM(3, 6, num_layers=2, dropout=0.5, seed=0, dtype=F64)
    x = rng.standard_normal((4, 2, 3))
    a, _ = m.forward(x)
    b, _ = m.forward(x)
    assert not np.allclose(a, b)  # a fresh mask per forward in training mode
    m.eval()
    c, _ = m.forward(x)
    d, _ = m.forward(x)
    np.testing.assert_array_equal(c, d)
    m.train()
    _loss_grad_check_with_fixed_mask(m, x, rng)


def _loss_grad_check_with_fixed_mask(m, x, rng):
    # Each evaluation restarts the layer's generator where the checked forward started, so
    # every forward draws the same dropout masks.
    state = m._rng.bit_generator.state
    out, _ = m.forward(x)
    dout = rng.standard_normal(out.shape)
    m.zero_grad()
    dx, _ = m.backward(dout)

    def f(z):
        m._rng.bit_generator.state = state
        return m.forward(z)[0]

    np.testing.assert_allclose(dx, finite_difference(f, x, dout), **FD_TOL)


def test_dropout_layer(rng):
    d = nn.Dropout(0.3, seed=0)
    x = rng.standard_normal((200, 50))
    y = d.forward(x)
    kept = y != 0
    assert 0.6 < kept.mean() < 0.8
    np.testing.assert_allclose(y[kept], x[kept] / 0.7)
    g = d.backward(np.ones_like(x))
    np.testing.assert_allclose(g, kept / 0.7)
    d.eval()
    np.testing.assert_array_equal(d.forward(x), x)
    np.testing.assert_array_equal(d.backward(x), x)
    with pytest.raises(ValueError, match="p: expected a probability"):
        nn.Dropout(1.0)


def test_batchnorm_layer_gradients_and_torch(rng, torch):
    bn = nn.BatchNorm1d(3, dtype=F64)
    bn.weight[...] = rng.standard_normal(3)
    bn.bias[...] = rng.standard_normal(3)
    x = rng.standard_normal((6, 3, 4))
    state = bn.state_dict()

    def fwd(z):  # training mode moves the running statistics: restore them each call
        bn.running_mean[...] = state["running_mean"]
        bn.running_var[...] = state["running_var"]
        return bn.forward(z)

    _loss_grad_check(bn, x, rng, forward=fwd)
    bn.load_state_dict(state)
    tb = torch.nn.BatchNorm1d(3).double()
    tb.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    for _ in range(3):
        bn.forward(x)
        tb(torch.from_numpy(x))
    for k, v in tb.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[k], v.numpy(), rtol=1e-12, err_msg=k)
    bn.eval()
    tb.eval()
    np.testing.assert_allclose(bn.forward(x), tb(torch.from_numpy(x)).detach().numpy(), rtol=1e-10)
