"""Attention: scaled dot-product and additive, forward and backward.

C++ against the NumPy twin (both dtypes, with and without masks of either shape, empty
rows), the twin against float64 finite differences, and both against PyTorch when installed.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import FD_TOL, TORCH_TOL, assert_close, finite_difference
from nnkern import ops, reference

MODS = [ops, reference]
SHAPES = [  # B, Tq, Tk, D, Dv
    (1, 1, 1, 1, 1),
    (2, 3, 5, 4, 6),
    (3, 7, 2, 5, 3),
    (4, 16, 33, 8, 9),
]


def _inputs(rng, dtype, B, Tq, Tk, D, Dv, Dk=None):
    q = rng.standard_normal((B, Tq, D)).astype(dtype)
    k = rng.standard_normal((B, Tk, Dk or D)).astype(dtype)
    v = rng.standard_normal((B, Tk, Dv)).astype(dtype)
    return q, k, v


def _masks(rng, B, Tq, Tk):
    full = rng.random((B, Tq, Tk)) > 0.4
    full[0, 0] = False  # a query with nothing to attend to
    keys = rng.random((B, Tk)) > 0.3
    keys[:, 0] = True
    return {"none": None, "full": full, "keys": keys}


def _additive_params(rng, dtype, A, Dq, Dk):
    s = 1 / np.sqrt(max(Dq, Dk))
    return (
        (rng.standard_normal((A, Dq)) * s).astype(dtype),
        (rng.standard_normal((A, Dk)) * s).astype(dtype),
        rng.standard_normal(A).astype(dtype),
    )


# ---------------------------------------------------------------------------------------
# ops against the twin


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mask_kind", ["none", "full", "keys"])
def test_sdpa_matches_twin(rng, dtype, shape, mask_kind):
    q, k, v = _inputs(rng, dtype, *shape)
    mask = _masks(rng, shape[0], shape[1], shape[2])[mask_kind]
    out, cache = ops.scaled_dot_product_attention(q, k, v, mask)
    out_r, cache_r = reference.scaled_dot_product_attention(q, k, v, mask)
    assert out.dtype == dtype and out.shape == (shape[0], shape[1], shape[4])
    assert_close(out, out_r)
    assert_close(cache.weights, cache_r.weights)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for a, b in zip(ops.scaled_dot_product_attention_backward(dout, cache),
                    reference.scaled_dot_product_attention_backward(dout, cache_r)):
        assert a.dtype == dtype
        assert_close(a, b)
    # either backward takes either forward's cache
    for a, b in zip(ops.scaled_dot_product_attention_backward(dout, cache_r),
                    reference.scaled_dot_product_attention_backward(dout, cache)):
        assert_close(a, b)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("mask_kind", ["none", "full", "keys"])
def test_additive_matches_twin(rng, dtype, shape, mask_kind):
    B, Tq, Tk, D, Dv = shape
    q, k, v = _inputs(rng, dtype, B, Tq, Tk, D, Dv, Dk=D + 2)
    W_q, W_k, w_v = _additive_params(rng, dtype, 6, D, D + 2)
    mask = _masks(rng, B, Tq, Tk)[mask_kind]
    out, cache = ops.additive_attention(q, k, v, W_q, W_k, w_v, mask)
    out_r, cache_r = reference.additive_attention(q, k, v, W_q, W_k, w_v, mask)
    assert_close(out, out_r)
    assert_close(cache.weights, cache_r.weights)
    assert_close(cache.hidden, cache_r.hidden)
    dout = rng.standard_normal(out.shape).astype(dtype)
    for a, b in zip(ops.additive_attention_backward(dout, cache),
                    reference.additive_attention_backward(dout, cache_r)):
        assert a.dtype == dtype
        assert_close(a, b)


@pytest.mark.parametrize("mod", MODS, ids=["ops", "reference"])
def test_empty_rows_give_zeros_not_nan(mod, dtype, rng):
    q, k, v = _inputs(rng, dtype, 2, 3, 4, 5, 6)
    mask = np.ones((2, 3, 4), bool)
    mask[1, 2] = False
    out, cache = mod.scaled_dot_product_attention(q, k, v, mask)
    assert np.all(out[1, 2] == 0) and np.all(cache.weights[1, 2] == 0)
    assert np.isfinite(out).all()
    dq, dk, dv = mod.scaled_dot_product_attention_backward(np.ones_like(out), cache)
    assert np.all(dq[1, 2] == 0)
    assert all(np.isfinite(g).all() for g in (dq, dk, dv))
    # every key masked for a whole batch item
    keys = np.ones((2, 4), bool)
    keys[0] = False
    out, cache = mod.scaled_dot_product_attention(q, k, v, keys)
    assert np.all(out[0] == 0) and np.isfinite(out).all()


@pytest.mark.parametrize("mod", MODS, ids=["ops", "reference"])
def test_weights_are_a_distribution_over_allowed_keys(mod, rng):
    q, k, v = _inputs(rng, np.float64, 3, 5, 7, 4, 2)
    mask = _masks(rng, 3, 5, 7)["full"]
    _, cache = mod.scaled_dot_product_attention(q, k, v, mask)
    w = cache.weights
    assert np.all(w[~mask] == 0)
    rows = mask.any(-1)
    np.testing.assert_allclose(w.sum(-1)[rows], 1.0, rtol=1e-12)


def test_scale_default_and_explicit(rng):
    q, k, v = _inputs(rng, np.float64, 2, 3, 4, 16, 5)
    a, _ = ops.scaled_dot_product_attention(q, k, v)
    b, _ = ops.scaled_dot_product_attention(q, k, v, scale=0.25)
    np.testing.assert_allclose(a, b, rtol=1e-12)
    c, _ = ops.scaled_dot_product_attention(q, k, v, scale=1.0)
    assert not np.allclose(a, c)


def test_noncontiguous_inputs(rng, dtype):
    q, k, v = _inputs(rng, dtype, 3, 4, 10, 6, 8)
    qs, ks, vs = q[:, :, ::2], k[:, ::2, ::2], v[:, ::2]
    mask = (rng.random((3, 5, 4)) > 0.2).transpose(0, 2, 1)  # a strided (3, 4, 5) view
    out, _ = ops.scaled_dot_product_attention(qs, ks, vs, mask)
    ref, _ = reference.scaled_dot_product_attention(qs.copy(), ks.copy(), vs.copy(), mask.copy())
    assert_close(out, ref)


def test_bitwise_same_for_1_and_2_threads(rng):
    import nnkern

    q, k, v = _inputs(rng, np.float32, 16, 32, 40, 16, 16)
    W_q, W_k, w_v = _additive_params(rng, np.float32, 12, 16, 16)
    dout = rng.standard_normal((16, 32, 16)).astype(np.float32)
    res = []
    for n in (1, 2):
        nnkern.set_num_threads(n)
        try:
            o1, c1 = ops.scaled_dot_product_attention(q, k, v)
            o2, c2 = ops.additive_attention(q, k, v, W_q, W_k, w_v)
            res.append([o1, o2, *ops.scaled_dot_product_attention_backward(dout, c1),
                        *ops.additive_attention_backward(dout, c2)])
        finally:
            nnkern.set_num_threads(2)
    for a, b in zip(*res):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# The twin against finite differences (float64)


@pytest.mark.parametrize("mask_kind", ["none", "full", "keys"])
def test_sdpa_backward_finite_differences(rng, mask_kind):
    q, k, v = _inputs(rng, np.float64, 2, 3, 4, 3, 2)
    mask = _masks(rng, 2, 3, 4)[mask_kind]
    f = reference.scaled_dot_product_attention
    out, cache = f(q, k, v, mask, 0.7)
    dout = rng.standard_normal(out.shape)
    dq, dk, dv = reference.scaled_dot_product_attention_backward(dout, cache)
    np.testing.assert_allclose(dq, finite_difference(lambda z: f(z, k, v, mask, 0.7)[0], q, dout), **FD_TOL)
    np.testing.assert_allclose(dk, finite_difference(lambda z: f(q, z, v, mask, 0.7)[0], k, dout), **FD_TOL)
    np.testing.assert_allclose(dv, finite_difference(lambda z: f(q, k, z, mask, 0.7)[0], v, dout), **FD_TOL)


@pytest.mark.parametrize("mask_kind", ["none", "full"])
def test_additive_backward_finite_differences(rng, mask_kind):
    q, k, v = _inputs(rng, np.float64, 2, 3, 4, 3, 2, Dk=5)
    W_q, W_k, w_v = _additive_params(rng, np.float64, 4, 3, 5)
    mask = _masks(rng, 2, 3, 4)[mask_kind]
    f = reference.additive_attention
    args = [q, k, v, W_q, W_k, w_v]
    out, cache = f(*args, mask)
    dout = rng.standard_normal(out.shape)
    grads = reference.additive_attention_backward(dout, cache)
    for i, g in enumerate(grads):
        def fi(z, i=i):
            a = list(args)
            a[i] = z
            return f(*a, mask)[0]
        np.testing.assert_allclose(g, finite_difference(fi, args[i], dout), **FD_TOL)


# ---------------------------------------------------------------------------------------
# PyTorch


@pytest.mark.parametrize("mask_kind", ["none", "full", "keys"])
def test_sdpa_matches_torch(torch, rng, dtype, mask_kind):
    q, k, v = _inputs(rng, dtype, 3, 6, 9, 8, 5)
    mask = _masks(rng, 3, 6, 9)[mask_kind]
    if mask is not None and mask.ndim == 3:
        mask[mask.sum(-1) == 0, 0] = True  # torch gives NaN for rows with nothing to attend to
    out, cache = ops.scaled_dot_product_attention(q, k, v, mask)
    qt, kt, vt = (torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v))
    tm = None
    if mask is not None:
        tm = torch.from_numpy(mask if mask.ndim == 3 else mask[:, None, :].repeat(6, axis=1))
    ot = torch.nn.functional.scaled_dot_product_attention(qt, kt, vt, attn_mask=tm)
    tol = TORCH_TOL[dtype]
    np.testing.assert_allclose(out, ot.detach().numpy(), **tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    ot.backward(torch.from_numpy(dout))
    for ours, t in zip(ops.scaled_dot_product_attention_backward(dout, cache), (qt, kt, vt)):
        np.testing.assert_allclose(ours, t.grad.numpy(), **tol)


def test_additive_matches_torch(torch, rng, dtype):
    B, Tq, Tk, Dq, Dk, Dv, A = 2, 3, 5, 4, 6, 3, 7
    q, k, v = _inputs(rng, dtype, B, Tq, Tk, Dq, Dv, Dk=Dk)
    W_q, W_k, w_v = _additive_params(rng, dtype, A, Dq, Dk)
    mask = _masks(rng, B, Tq, Tk)["keys"]
    out, cache = ops.additive_attention(q, k, v, W_q, W_k, w_v, mask)
    ts = [torch.from_numpy(a.copy()).requires_grad_() for a in (q, k, v, W_q, W_k, w_v)]
    qt, kt, vt, Wqt, Wkt, wvt = ts
    hid = torch.tanh((qt @ Wqt.T)[:, :, None, :] + (kt @ Wkt.T)[:, None, :, :])
    s = (hid @ wvt).masked_fill(~torch.from_numpy(mask)[:, None, :], float("-inf"))
    ot = torch.softmax(s, -1) @ vt
    tol = TORCH_TOL[dtype]
    np.testing.assert_allclose(out, ot.detach().numpy(), **tol)
    dout = rng.standard_normal(out.shape).astype(dtype)
    ot.backward(torch.from_numpy(dout))
    for ours, t in zip(ops.additive_attention_backward(dout, cache), ts):
        np.testing.assert_allclose(ours, t.grad.numpy(), **tol)


# ---------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize("mod", MODS, ids=["ops", "reference"])
def test_bad_input(mod, rng):
    q, k, v = _inputs(rng, np.float32, 2, 3, 4, 5, 6)
    f = mod.scaled_dot_product_attention
    with pytest.raises(TypeError, match="k: dtype float64"):
        f(q, k.astype(np.float64), v)
    with pytest.raises(TypeError, match="q: expected a float32 or float64"):
        f(q.astype(np.int32), k, v)
    with pytest.raises(ValueError, match="q: expected a 3-D"):
        f(q[0], k, v)
    with pytest.raises(ValueError, match="k: feature size"):
        f(q, k[:, :, :4], v)
    with pytest.raises(ValueError, match="v: 3 steps"):
        f(q, k, v[:, :3])
    with pytest.raises(ValueError, match="batch sizes differ"):
        f(q, k[:1], v[:1])
    with pytest.raises(TypeError, match="mask: expected a boolean"):
        f(q, k, v, np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="mask: expected shape"):
        f(q, k, v, np.ones((2, 4, 3), bool))
    with pytest.raises(ValueError, match="scale: must be finite"):
        f(q, k, v, scale=float("nan"))
    out, cache = f(q, k, v)
    with pytest.raises(ValueError, match="dout: expected shape"):
        mod.scaled_dot_product_attention_backward(out[:, :2], cache)
    with pytest.raises(TypeError, match="dout: dtype float64"):
        mod.scaled_dot_product_attention_backward(out.astype(np.float64), cache)
    with pytest.raises(TypeError, match="cache: expected the AttentionCache of a sdpa"):
        mod.scaled_dot_product_attention_backward(out, object())
    W_q, W_k, w_v = _additive_params(rng, np.float32, 4, 5, 5)
    with pytest.raises(ValueError, match="W_q: expected shape"):
        mod.additive_attention(q, k, v, W_q[:, :4], W_k, w_v)
    with pytest.raises(ValueError, match="w_v: expected a 1-D"):
        mod.additive_attention(q, k, v, W_q, W_k, w_v[None])
    with pytest.raises(TypeError, match="cache: expected the AttentionCache of a additive"):
        mod.additive_attention_backward(out, cache)


@pytest.mark.parametrize("mod", MODS, ids=["ops", "reference"])
def test_empty_batch_and_steps(mod, dtype):
    z = np.zeros
    out, cache = mod.scaled_dot_product_attention(z((0, 3, 4), dtype), z((0, 5, 4), dtype), z((0, 5, 2), dtype))
    assert out.shape == (0, 3, 2)
    out, cache = mod.scaled_dot_product_attention(z((2, 3, 4), dtype), z((2, 0, 4), dtype), z((2, 0, 2), dtype))
    assert out.shape == (2, 3, 2) and np.all(out == 0)
    dq, dk, dv = mod.scaled_dot_product_attention_backward(np.ones((2, 3, 2), dtype), cache)
    assert np.all(dq == 0) and dk.shape == (2, 0, 4) and dv.shape == (2, 0, 2)


def test_direct_core_calls_with_bad_sizes_do_not_crash():
    # Wrong buffer sizes straight into the compiled module: an exception, never a crash.
    code = """
import numpy as np
from nnkern import _core
q = np.zeros((2, 3, 4), np.float32)
for call in (
    lambda: _core.sdpa_forward(q, q, q, None, 1.0, np.zeros((2, 3, 4), np.float32),
                               np.zeros(5, np.float32), 2, 3, 3, 4, 4),
    lambda: _core.sdpa_forward(q, q, q, np.zeros(3, np.uint8), 1.0, q.copy(),
                               np.zeros((2, 3, 3), np.float32), 2, 3, 3, 4, 4),
    lambda: _core.sdpa_forward(q, q, q, None, 1.0, q.copy(), np.zeros((2, 3, 3), np.float32),
                               2**62, 3, 3, 4, 4),
):
    try:
        call()
    except (TypeError, ValueError):
        pass
    else:
        raise SystemExit("no error")
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr
