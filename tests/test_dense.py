"""Dense layer: y = x @ W^T + b with W (O, I) as torch.nn.Linear, and its backward."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FD_TOL, TORCH_TOL, assert_close, finite_difference

from nnkern import ops, reference

MODULES = [ops, reference]
MOD_IDS = ["ops", "reference"]

# (batch shape of x, I, O)
SHAPES = [
    ((1,), 1, 1),
    ((), 5, 3),  # x of shape (I,)
    ((3,), 5, 7),
    ((17,), 33, 9),
    ((1,), 64, 1),
    ((64,), 1, 3),
    ((2, 3), 4, 5),  # 3-D x
    ((2, 1, 3), 7, 2),  # 4-D x
    ((300,), 257, 129),  # large enough for a multithreaded GEMM
    # the blocked GEMM: several contraction blocks, a partial last panel of columns and a
    # partial last tile of rows, threads splitting panels (many) or rows (few panels)
    ((700,), 1100, 200),
    ((130,), 600, 70),
    ((150,), 70, 1300),
]
SHAPE_IDS = [f"x{'x'.join(map(str, lead + (i,)))}-o{o}" for lead, i, o in SHAPES]


@pytest.mark.parametrize("lead,I,O", SHAPES[-4:], ids=SHAPE_IDS[-4:])
def test_same_bits_on_1_and_2_threads(rng, dtype, lead, I, O):
    import nnkern

    x, W, b = make(rng, dtype, lead, I, O)
    dy = rng.standard_normal(lead + (O,)).astype(dtype)
    runs = []
    try:
        for n in (1, 2):
            nnkern.set_num_threads(n)
            runs.append((ops.dense(x, W, b), *ops.dense_backward(dy, x, W)))
    finally:
        nnkern.set_num_threads(2)
    for a, c in zip(*runs):
        np.testing.assert_array_equal(a, c)


def make(rng, dtype, lead, I, O, bias=True):
    x = rng.standard_normal(lead + (I,)).astype(dtype)
    W = (rng.standard_normal((O, I)) / np.sqrt(max(I, 1))).astype(dtype)
    b = rng.standard_normal(O).astype(dtype) if bias else None
    return x, W, b


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("lead,I,O", SHAPES, ids=SHAPE_IDS)
def test_forward_matches_twin(rng, dtype, lead, I, O, bias):
    x, W, b = make(rng, dtype, lead, I, O, bias)
    inputs = [a.copy() for a in (x, W) + ((b,) if bias else ())]
    expected = reference.dense(x, W, b)
    assert expected.shape == lead + (O,) and expected.dtype == dtype
    y = ops.dense(x, W, b)
    assert y.shape == lead + (O,) and y.dtype == dtype
    assert_close(y, expected, dtype)
    for a, before in zip((x, W, b), inputs):  # inputs untouched
        np.testing.assert_array_equal(a, before)
    # positional and keyword forms, out= filled and returned, by both implementations
    assert_close(ops.dense(x, W, b=b), expected, dtype)
    for mod in MODULES:
        out = np.full(lead + (O,), np.nan, dtype)
        assert mod.dense(x, W, b, out=out) is out
        assert_close(out, expected, dtype)


@pytest.mark.parametrize("lead,I,O", SHAPES, ids=SHAPE_IDS)
def test_backward_matches_twin(rng, dtype, lead, I, O):
    x, W, _ = make(rng, dtype, lead, I, O)
    dy = rng.standard_normal(lead + (O,)).astype(dtype)
    dx, dW, db = ops.dense_backward(dy, x, W)
    rdx, rdW, rdb = reference.dense_backward(dy, x, W)
    assert (dx.shape, dW.shape, db.shape) == (x.shape, W.shape, (O,))
    assert dx.dtype == dW.dtype == db.dtype == dtype
    # dW and db sum over the batch: float32 tolerance scales with its size
    n = int(np.prod(lead, dtype=np.int64))
    assert_close(dx, rdx, dtype)
    assert_close(dW, rdW, dtype, atol=1e-5 * max(1, np.sqrt(n)) if dtype == np.float32 else 1e-12)
    assert_close(db, rdb, dtype, atol=1e-5 * max(1, np.sqrt(n)) if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("lead,I,O", [((1,), 1, 1), ((2,), 3, 4), ((2, 2), 3, 2), ((), 4, 3)],
                         ids=["1x1", "2x3-o4", "2x2x3-o2", "x4-o3"])
def test_backward_finite_differences(rng, mod, lead, I, O):
    x, W, b = make(rng, np.float64, lead, I, O)
    dy = rng.standard_normal(lead + (O,))
    dx, dW, db = mod.dense_backward(dy, x, W)
    np.testing.assert_allclose(dx, finite_difference(lambda z: reference.dense(z, W, b), x, dy), **FD_TOL)
    np.testing.assert_allclose(dW, finite_difference(lambda z: reference.dense(x, z, b), W, dy), **FD_TOL)
    np.testing.assert_allclose(db, finite_difference(lambda z: reference.dense(x, W, z), b, dy), **FD_TOL)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("lead,I,O", [((4,), 6, 5), ((2, 3), 4, 5), ((), 3, 2), ((64,), 200, 100)],
                         ids=["4x6-o5", "2x3x4-o5", "x3-o2", "64x200-o100"])
def test_against_torch(torch, rng, dtype, lead, I, O, bias):
    x, W, b = make(rng, dtype, lead, I, O, bias)
    dy = rng.standard_normal(lead + (O,)).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True) if bias else None
    yt = torch.nn.functional.linear(xt, Wt, bt)
    yt.backward(torch.tensor(dy))
    tt = TORCH_TOL[dtype]
    np.testing.assert_allclose(ops.dense(x, W, b), yt.detach().numpy(), **tt)
    dx, dW, db = ops.dense_backward(dy, x, W)
    np.testing.assert_allclose(dx, xt.grad.numpy(), **tt)
    np.testing.assert_allclose(dW, Wt.grad.numpy(), **tt)
    if bias:
        np.testing.assert_allclose(db, bt.grad.numpy(), **tt)


# ---------------------------------------------------------------------------------------
# empty dimensions


@pytest.mark.parametrize("lead", [(0,), (2, 0), (0, 3)], ids=str)
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_empty_batch(rng, dtype, mod, lead):
    I, O = 4, 3
    x = np.empty(lead + (I,), dtype)
    W = rng.standard_normal((O, I)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    for bias in (b, None):
        y = mod.dense(x, W, bias)
        assert y.shape == lead + (O,) and y.dtype == dtype
    dy = np.empty(lead + (O,), dtype)
    dx, dW, db = mod.dense_backward(dy, x, W)
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_array_equal(dW, np.zeros((O, I), dtype))
    np.testing.assert_array_equal(db, np.zeros(O, dtype))
    assert dW.dtype == db.dtype == dtype


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_no_input_features(rng, dtype, mod):
    # I = 0: the contraction is empty, so y = b (and 0 without a bias).
    N, O = 5, 3
    x = np.empty((N, 0), dtype)
    W = np.empty((O, 0), dtype)
    b = rng.standard_normal(O).astype(dtype)
    y = mod.dense(x, W, b)
    assert y.shape == (N, O) and y.dtype == dtype
    np.testing.assert_array_equal(y, np.broadcast_to(b, (N, O)))
    out = np.full((N, O), np.nan, dtype)
    assert mod.dense(x, W, b, out=out) is out
    np.testing.assert_array_equal(out, np.broadcast_to(b, (N, O)))
    out[...] = np.nan
    mod.dense(x, W, None, out=out)
    np.testing.assert_array_equal(out, np.zeros((N, O), dtype))
    dy = rng.standard_normal((N, O)).astype(dtype)
    dx, dW, db = mod.dense_backward(dy, x, W)
    assert dx.shape == (N, 0) and dW.shape == (O, 0)
    assert_close(db, dy.sum(axis=0), dtype)


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_no_output_features(rng, dtype, mod):
    N, I = 5, 3
    x = rng.standard_normal((N, I)).astype(dtype)
    W = np.empty((0, I), dtype)
    y = mod.dense(x, W, np.empty(0, dtype))
    assert y.shape == (N, 0)
    dx, dW, db = mod.dense_backward(np.empty((N, 0), dtype), x, W)
    np.testing.assert_array_equal(dx, np.zeros((N, I), dtype))
    assert dW.shape == (0, I) and db.shape == (0,)


# ---------------------------------------------------------------------------------------
# layouts and out=


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_non_contiguous_inputs(rng, dtype, mod):
    N, I, O = 6, 5, 4
    x = rng.standard_normal((N, 2 * I)).astype(dtype)[:, ::2]
    W = np.asfortranarray(rng.standard_normal((O, I)).astype(dtype))  # e.g. a transposed (I, O)
    Wt = rng.standard_normal((I, O)).astype(dtype).T
    b = rng.standard_normal(2 * O).astype(dtype)[::-2]
    dy = rng.standard_normal((O, N)).astype(dtype).T
    for WW in (W, Wt):
        assert not x.flags.c_contiguous and not WW.flags.c_contiguous and not b.flags.c_contiguous
        xc, Wc, bc = (np.ascontiguousarray(a) for a in (x, WW, b))
        assert_close(mod.dense(x, WW, b), reference.dense(xc, Wc, bc), dtype)
        for got, want in zip(mod.dense_backward(dy, x, WW),
                             reference.dense_backward(np.ascontiguousarray(dy), xc, Wc)):
            assert_close(got, want, dtype)
    # reversed batch of a 3-D x
    x3 = rng.standard_normal((3, 4, I)).astype(dtype)[::-1]
    assert_close(mod.dense(x3, W, b), reference.dense(np.ascontiguousarray(x3), np.ascontiguousarray(W),
                                                      np.ascontiguousarray(b)), dtype)


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_backward_returns_fresh_arrays(rng, mod):
    x, W, _ = make(rng, np.float64, (3,), 4, 2)
    dy = rng.standard_normal((3, 2))
    dx, dW, db = mod.dense_backward(dy, x, W)
    for g in (dx, dW, db):
        assert g.flags.c_contiguous and g.flags.writeable
        for a in (dy, x, W):
            assert not np.shares_memory(g, a)


def _bad_outs(dtype, shape):
    other = np.float64 if dtype == np.float32 else np.float32
    ro = np.empty(shape, dtype)
    ro.flags.writeable = False
    return [
        ("wrong-shape", np.empty(shape[:-1] + (shape[-1] + 1,), dtype), ValueError),
        ("wrong-shape-transposed", np.empty(shape[::-1], dtype), ValueError),
        ("wrong-dtype", np.empty(shape, other), TypeError),
        ("non-contiguous", np.empty(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2], ValueError),
        ("read-only", ro, ValueError),
    ]


@pytest.mark.parametrize("bad", ["wrong-shape", "wrong-shape-transposed", "wrong-dtype", "non-contiguous", "read-only"])
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_bad_out(rng, dtype, mod, bad):
    x, W, b = make(rng, dtype, (4,), 3, 5)
    (_, out, exc), = [o for o in _bad_outs(dtype, (4, 5)) if o[0] == bad]
    with pytest.raises(exc, match=r"\bout\b"):
        mod.dense(x, W, b, out=out)


# ---------------------------------------------------------------------------------------
# embedding_backward: the scatter-add behind nn.Embedding


@pytest.mark.parametrize("shape,V,D", [((7,), 5, 3), ((40, 33), 11, 64), ((300, 70), 50, 100), ((0,), 4, 8)])
def test_embedding_backward_matches_twin(rng, dtype, shape, V, D):
    # repeated ids sum their rows; the large case runs on several threads (columns split)
    ids = rng.integers(0, V, shape)
    dout = rng.standard_normal(shape + (D,)).astype(dtype)
    start = rng.standard_normal((V, D)).astype(dtype)
    a, b = start.copy(), start.copy()
    assert ops.embedding_backward(dout, ids, a) is a
    reference.embedding_backward(dout, ids, b)
    assert_close(a, b, dtype)
    expect = start.astype(np.float64)
    for i, row in zip(ids.reshape(-1), dout.reshape(-1, D)):
        expect[i] += row
    assert_close(a, expect.astype(dtype), dtype)


@pytest.mark.parametrize("mod", [ops, reference], ids=["ops", "reference"])
def test_embedding_backward_bad_input(mod):
    g = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="ids"):
        mod.embedding_backward(np.zeros((2, 3), np.float32), [1, 4], g)
    with pytest.raises(ValueError, match="ids"):
        mod.embedding_backward(np.zeros((1, 3), np.float32), [-1], g)
    with pytest.raises(ValueError, match="dout"):
        mod.embedding_backward(np.zeros((2, 2), np.float32), [1, 2], g)
    with pytest.raises(TypeError, match="dout"):
        mod.embedding_backward(np.zeros((1, 3), np.float64), [1], g)
    with pytest.raises(TypeError, match="ids"):
        mod.embedding_backward(np.zeros((1, 3), np.float32), [1.5], g)
    ro = g.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="dweight"):
        mod.embedding_backward(np.zeros((1, 3), np.float32), [1], ro)
    assert not g.any()  # nothing written by a refused call
