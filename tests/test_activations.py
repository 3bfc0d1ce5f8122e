"""Activations: sigmoid, tanh, relu, leaky_relu, softmax, log_softmax and their backwards.

ops (C++) against the NumPy twins on random, extreme, NaN, empty and strided inputs; the twins'
backwards against central finite differences; both against PyTorch when it is installed.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FD_TOL, TORCH_TOL, assert_close, finite_difference, tol

from nnkern import ops, reference

MODULES = [ops, reference]
MOD_IDS = ["ops", "reference"]

# (name, extra keyword arguments) of every elementwise forward; leaky_relu at its default
# slope and at another one.
ELEMENTWISE = [
    ("sigmoid", {}),
    ("tanh", {}),
    ("relu", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"alpha": 0.2}),
]
ELEM_IDS = ["sigmoid", "tanh", "relu", "leaky_relu", "leaky_relu-0.2"]
SOFTMAXES = ["softmax", "log_softmax"]
ALL_FORWARDS = [n for n, _ in ELEMENTWISE[:4]] + SOFTMAXES
# The ReLUs' backwards take the forward input x; the others take the forward output y.
SAVES_INPUT = {"relu", "leaky_relu"}

# The elementwise kernels go parallel from 32768 elements and stream outputs of 8 MiB and
# more (2^21 float32, 2^20 float64): sizes on both sides of both.
ELEM_SHAPES = [
    (1,), (1, 1), (7,), (3, 5), (2, 3, 4), (17, 33),
    (32_767,), (32_768,), (4, 8_193), (181, 191), (3, 7, 1_601), (1_050, 2_000),
]
# softmax rows are reduced in blocks of 2048 elements (K above it merges blocks), and
# outputs of 8 MiB and more are streamed: (263, 8000) is 8.4 MB in float32.
SOFTMAX_SHAPES = [
    (1,), (1, 1), (7,), (3, 5), (5, 1), (2, 3, 5), (4, 1, 6), (181, 191), (2, 130, 129),
    (3, 2_048), (3, 2_049), (2, 5, 4_097), (263, 8_000),
]
# every axis, negative ones too; the largest shape only along its first and last axes
SOFTMAX_CASES = [
    (s, a) for s in SOFTMAX_SHAPES
    for a in (range(-len(s), len(s)) if np.prod(s) < 1e6 else (0, -1))
]
SOFTMAX_IDS = [f"{'x'.join(map(str, s))}-axis{a}" for s, a in SOFTMAX_CASES]


def forward(mod, name, x, **kw):
    return getattr(mod, name)(x, **kw)


def backward(mod, name, dy, saved, **kw):
    return getattr(mod, name + "_backward")(dy, saved, **kw)


def saved_for(name, x, **kw):
    """What `name`'s backward takes from the forward: x for the ReLUs, else y (by the twin)."""
    return x if name in SAVES_INPUT else forward(reference, name, x, **kw)


def away_from_zero(rng, shape):
    """Random values with |x| >= 0.1: finite differences of the ReLUs need no kink nearby."""
    x = rng.uniform(0.1, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return np.asarray(x, dtype=np.float64)


def check_forward_matches_twin(name, x, kw):
    dtype = x.dtype
    x_before = x.copy()
    expected = forward(reference, name, x, **kw)
    y = forward(ops, name, x, **kw)
    assert y.shape == x.shape and y.dtype == dtype
    assert_close(y, expected, dtype)
    np.testing.assert_array_equal(x, x_before)  # the input is not modified

    # out= is filled and returned, by both implementations
    for mod in MODULES:
        out = np.full(x.shape, np.nan, dtype=dtype)
        r = forward(mod, name, x, out=out, **kw)
        assert r is out
        assert_close(out, expected, dtype)


def check_backward_matches_twin(rng, name, x, kw):
    dtype = x.dtype
    dy = rng.standard_normal(x.shape).astype(dtype)
    saved = saved_for(name, x, **kw)
    expected = backward(reference, name, dy, saved, **kw)
    dx = backward(ops, name, dy, saved, **kw)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert_close(dx, expected, dtype)
    for mod in MODULES:
        out = np.full(x.shape, np.nan, dtype=dtype)
        r = backward(mod, name, dy, saved, out=out, **kw)
        assert r is out
        assert_close(out, expected, dtype)


# ---------------------------------------------------------------------------------------
# ops against the twins on random inputs


@pytest.mark.parametrize("shape", ELEM_SHAPES, ids=str)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_forward_matches_twin(rng, dtype, name, kw, shape):
    x = np.asarray(rng.standard_normal(shape) * 4).astype(dtype)
    check_forward_matches_twin(name, x, kw)


@pytest.mark.parametrize("shape", ELEM_SHAPES, ids=str)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_backward_matches_twin(rng, dtype, name, kw, shape):
    x = np.asarray(rng.standard_normal(shape) * 4).astype(dtype)
    check_backward_matches_twin(rng, name, x, kw)


@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES, ids=SOFTMAX_IDS)
@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_forward_matches_twin(rng, dtype, name, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    check_forward_matches_twin(name, x, {"axis": axis})


@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES, ids=SOFTMAX_IDS)
@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_backward_matches_twin(rng, dtype, name, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    check_backward_matches_twin(rng, name, x, {"axis": axis})


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_zero_dimensional(dtype, mod, name, kw):
    # "any shape" includes (): a 0-d array in gives a 0-d array out, as NumPy's ufuncs do.
    x = np.array(-0.75, dtype=dtype)
    y = forward(mod, name, x, **kw)
    assert y.shape == () and y.dtype == dtype, f"{name} of a 0-d array has shape {y.shape}"
    assert_close(y, forward(reference, name, np.array([-0.75], dtype), **kw)[0], dtype)
    out = np.empty((), dtype)
    assert forward(mod, name, x, out=out, **kw) is out
    saved = x if name in SAVES_INPUT else y
    dx = backward(mod, name, np.array(2.0, dtype), saved, **kw)
    assert dx.shape == () and dx.dtype == dtype


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_softmax_default_axis_is_last(rng, mod):
    x = rng.standard_normal((3, 4, 5))
    for name in SOFTMAXES:
        np.testing.assert_array_equal(forward(mod, name, x), forward(mod, name, x, axis=2))
        y = forward(mod, name, x)
        dy = rng.standard_normal(x.shape)
        np.testing.assert_array_equal(backward(mod, name, dy, y), backward(mod, name, dy, y, axis=-1))
    # a NumPy integer is an int
    np.testing.assert_array_equal(mod.softmax(x, axis=np.int64(1)), mod.softmax(x, axis=1))


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_leaky_relu_alpha(rng, dtype, mod):
    x = rng.standard_normal((4, 9)).astype(dtype)
    np.testing.assert_array_equal(mod.leaky_relu(x), mod.leaky_relu(x, alpha=0.01))
    np.testing.assert_array_equal(mod.leaky_relu(x, alpha=0.0), mod.relu(x))
    np.testing.assert_array_equal(mod.leaky_relu(x, alpha=1.0), x)
    expected = np.where(x < 0, x * dtype(0.25), x)
    assert_close(mod.leaky_relu(x, alpha=np.float32(0.25)), expected, dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(mod.leaky_relu_backward(dy, x, alpha=0.0), mod.relu_backward(dy, x))
    np.testing.assert_array_equal(mod.leaky_relu_backward(dy, x), mod.leaky_relu_backward(dy, x, 0.01))


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_relu_backward_at_zero(dtype, mod):
    # relu'(0) = 0 as in PyTorch; leaky_relu'(0) = alpha (the x > 0 branch is not taken).
    x = np.array([-1.0, -0.0, 0.0, 1.0], dtype=dtype)
    dy = np.array([2.0, 3.0, 5.0, 7.0], dtype=dtype)
    np.testing.assert_array_equal(mod.relu(x), [0, 0, 0, 1])
    np.testing.assert_array_equal(mod.relu_backward(dy, x), [0, 0, 0, 7])
    assert_close(mod.leaky_relu_backward(dy, x, alpha=0.5), np.array([1.0, 1.5, 2.5, 7.0], dtype), dtype)


# ---------------------------------------------------------------------------------------
# backward against central finite differences (float64)


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_backward_finite_differences(rng, mod, name, kw):
    shape = (3, 4)
    x = away_from_zero(rng, shape) if name in SAVES_INPUT else rng.standard_normal(shape) * 2
    dy = rng.standard_normal(shape)
    expected = finite_difference(lambda z: forward(reference, name, z, **kw), x, dy)
    saved = x if name in SAVES_INPUT else forward(mod, name, x, **kw)
    np.testing.assert_allclose(backward(mod, name, dy, saved, **kw), expected, **FD_TOL)


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize(
    "shape,axis", [((5,), 0), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), -1)]
)
@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_backward_finite_differences(rng, mod, name, shape, axis):
    x = rng.standard_normal(shape) * 2
    dy = rng.standard_normal(shape)
    expected = finite_difference(lambda z: forward(reference, name, z, axis=axis), x, dy)
    y = forward(mod, name, x, axis=axis)
    np.testing.assert_allclose(backward(mod, name, dy, y, axis=axis), expected, **FD_TOL)


# ---------------------------------------------------------------------------------------
# extreme inputs: no inf or NaN where the true value is finite

EXTREMES = [1e4, -1e4, 0.0, 1.0, -1.0, 9.0, -9.0, 20.0, -20.0, 50.0, -50.0, 88.0, -88.0,
            89.0, -104.0, 700.0, -745.0, 9_999.0, -9_999.0]


@pytest.mark.parametrize("n_tiles", [1, 2_000], ids=["short", "parallel"])
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_elementwise_extreme_inputs(dtype, mod, n_tiles):
    x = np.tile(np.array(EXTREMES, dtype=dtype), n_tiles)
    s = mod.sigmoid(x)
    assert np.all(np.isfinite(s))
    assert np.all((s >= 0) & (s <= 1)), f"sigmoid outside [0, 1]: {s[(s < 0) | (s > 1)]}"
    assert np.all(s[x == 1e4] == 1) and np.all(s[x == -1e4] == 0)
    assert np.all(s[x == 0] == 0.5)
    assert_close(s, reference.sigmoid(x), dtype)
    t = mod.tanh(x)
    assert np.all(np.isfinite(t)) and np.all(np.abs(t) <= 1)
    assert np.all(t[x == 1e4] == 1) and np.all(t[x == -1e4] == -1)
    assert_close(t, reference.tanh(x), dtype)
    for name in ("relu", "leaky_relu"):
        y = forward(mod, name, x)
        assert np.all(np.isfinite(y))
        assert_close(y, forward(reference, name, x), dtype)
    dy = np.ones_like(x)
    for name in ("sigmoid", "tanh"):
        g = backward(mod, name, dy, forward(mod, name, x))
        assert np.all(np.isfinite(g))


EXTREME_ROWS = [
    [1e4, -1e4, 0.0, 5.0],
    [1e4, 1e4, 1e4, 1e4],
    [-1e4, -1e4, -1e4, -1e4],
    [1e4, -1e4, 1e4, -1e4],
    [-1e4, 0.0, 1e-3, -5.0],
    [9_000.0, 9_001.0, -9_000.0, 0.0],
]


@pytest.mark.parametrize("layout", ["rows", "columns", "parallel-rows"])
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_softmax_extreme_inputs(dtype, mod, layout):
    x = np.array(EXTREME_ROWS, dtype=dtype)
    if layout == "parallel-rows":
        x = np.tile(x, (1, 2_000))  # (6, 8000): above the parallel threshold
    axis = -1
    if layout == "columns":
        x, axis = np.ascontiguousarray(x.T), 0
    y = mod.softmax(x, axis=axis)
    assert np.all(np.isfinite(y))
    assert np.all((y >= 0) & (y <= 1))
    np.testing.assert_allclose(y.sum(axis=axis), 1.0, rtol=0, atol=1e-5 if dtype == np.float32 else 1e-12)
    assert_close(y, reference.softmax(x, axis=axis), dtype)
    ly = mod.log_softmax(x, axis=axis)
    assert np.all(np.isfinite(ly)), f"log_softmax not finite: {ly}"
    assert np.all(ly <= 0)
    assert_close(ly, reference.log_softmax(x, axis=axis), dtype)
    # known values: equal entries, and two equal maxima far above the rest
    rows = y if axis == -1 else y.T
    k = rows.shape[1]
    assert_close(rows[1], np.full(k, 1 / k, dtype), dtype)
    assert_close(rows[3, :4], np.array([0.5, 0, 0.5, 0], dtype) * (4 / k), dtype)
    dy = np.ones_like(x)
    assert np.all(np.isfinite(mod.softmax_backward(dy, y, axis=axis)))
    assert np.all(np.isfinite(mod.log_softmax_backward(dy, ly, axis=axis)))


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_log_softmax_accurate_at_large_magnitude(rng, dtype, mod, axis):
    """log_softmax of inputs near +-1e4 is accurate to the dtype's tolerance.

    The inputs are exact in the dtype and the true values are O(1) (computed in float64 from
    the same inputs), so x_k - m is exact and nothing forces an error of ulp(1e4) ~ 1e-3
    (float32); forming x_k - (m + log(sum)) instead of (x_k - m) - log(sum) does.
    PyTorch's float32 log_softmax meets this tolerance.
    """
    for offset in (1e4, -1e4):
        x = (offset + rng.standard_normal((6, 9))).astype(dtype)
        x[0] = offset  # equal entries: log(1/9) exactly
        x = x if axis == -1 else np.ascontiguousarray(x.T)
        exact = reference.log_softmax(x.astype(np.float64), axis=axis)
        assert_close(mod.log_softmax(x, axis=axis), exact.astype(dtype), dtype)


@pytest.mark.parametrize("shape,masked", [((4, 7), slice(0, 5)), ((4, 4_096), slice(0, 2_048)),
                                          ((4, 5_000), slice(100, 4_500)), ((3, 2_049), slice(2_048, None))],
                         ids=["short", "one-block", "blocks", "last-block"])
@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_minus_inf_masking(rng, dtype, mod, name, axis, shape, masked):
    """-inf entries (masked logits, as in attention) get probability 0 / log-probability -inf
    and the rest of the slice is finite, as in NumPy and PyTorch, wherever the -inf entries
    fall (including an entire block of a long row)."""
    x = rng.standard_normal(shape).astype(dtype)
    x[:, masked] = -np.inf
    if axis == 0:
        x = np.ascontiguousarray(x.T)
    y = forward(mod, name, x, axis=axis)
    expected = forward(reference, name, x, axis=axis)
    assert not np.any(np.isnan(y)), f"{np.isnan(y).sum()} NaN in {name} of a row with -inf entries"
    assert_close(y, expected, dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = backward(mod, name, dy, y, axis=axis)
    assert not np.any(np.isnan(dx))
    assert_close(dx, backward(reference, name, dy, expected, axis=axis), dtype)


# ---------------------------------------------------------------------------------------
# PyTorch semantics


def _torch_forward(torch, name, t, kw):
    F = torch.nn.functional
    if name == "sigmoid":
        return torch.sigmoid(t)
    if name == "tanh":
        return torch.tanh(t)
    if name == "relu":
        return torch.relu(t)
    if name == "leaky_relu":
        return F.leaky_relu(t, negative_slope=kw.get("alpha", 0.01))
    if name == "softmax":
        return torch.softmax(t, dim=kw["axis"])
    if name == "log_softmax":
        return torch.log_softmax(t, dim=kw["axis"])
    raise AssertionError(name)


def check_against_torch(torch, rng, name, x, kw):
    dtype = x.dtype.type
    xt = torch.tensor(x, requires_grad=True)
    yt = _torch_forward(torch, name, xt, kw)
    dy = rng.standard_normal(x.shape).astype(dtype)
    yt.backward(torch.tensor(dy))
    y = forward(ops, name, x, **kw)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TORCH_TOL[dtype])
    saved = x if name in SAVES_INPUT else y
    np.testing.assert_allclose(backward(ops, name, dy, saved, **kw), xt.grad.numpy(), **TORCH_TOL[dtype])


@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4), (40_000,)], ids=str)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_against_torch(torch, rng, dtype, name, kw, shape):
    x = np.asarray(rng.standard_normal(shape) * 4).astype(dtype)
    check_against_torch(torch, rng, name, x, kw)


@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_against_torch_at_zero(torch, rng, dtype, name, kw):
    x = np.array([-2.0, -0.0, 0.0, 3.0, 1e4, -1e4], dtype=dtype)
    check_against_torch(torch, rng, name, x, kw)


@pytest.mark.parametrize(
    "shape,axis", [((4, 7), -1), ((4, 7), 0), ((2, 3, 5), 0), ((2, 3, 5), 1), ((2, 3, 5), 2), ((64, 600), -1)]
)
@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_against_torch(torch, rng, dtype, name, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    check_against_torch(torch, rng, name, x, {"axis": axis})


# ---------------------------------------------------------------------------------------
# NaN propagates as in NumPy; empty arrays give empty results


@pytest.mark.parametrize("size", [7, 40_000], ids=["short", "parallel"])
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_nan_propagates(rng, dtype, mod, name, kw, size):
    x = rng.standard_normal(size).astype(dtype)
    nan_at = np.array(sorted({0, 3, size // 2, size - 1}))
    x[nan_at] = np.nan
    y = forward(mod, name, x, **kw)
    np.testing.assert_array_equal(np.flatnonzero(np.isnan(y)), nan_at)
    clean = np.delete(x, nan_at)
    assert_close(np.delete(y, nan_at), forward(reference, name, clean, **kw), dtype)


@pytest.mark.parametrize(
    "shape,axis,nan_index",
    [((4, 6), -1, (1, 2)), ((4, 6), 0, (1, 2)), ((2, 3, 4), 1, (1, 0, 3)), ((8, 5_000), -1, (3, 17)),
     ((8, 5_000), 0, (3, 17)), ((1, 1), -1, (0, 0))],
)
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_nan_row(rng, dtype, mod, name, shape, axis, nan_index):
    x = rng.standard_normal(shape).astype(dtype)
    x[nan_index] = np.nan
    y = forward(mod, name, x, axis=axis)
    # NumPy semantics: the slice along `axis` through the NaN is NaN, nothing else is.
    expected_nan = np.broadcast_to(np.isnan(x).any(axis=axis, keepdims=True), shape)
    np.testing.assert_array_equal(np.isnan(y), expected_nan)
    assert_close(y, forward(reference, name, x, axis=axis), dtype)  # NaN == NaN here


EMPTY_SHAPES = [(0,), (0, 5), (3, 0), (2, 0, 3)]


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name,kw", ELEMENTWISE, ids=ELEM_IDS)
def test_elementwise_empty(dtype, mod, name, kw, shape):
    x = np.empty(shape, dtype=dtype)
    y = forward(mod, name, x, **kw)
    assert y.shape == shape and y.dtype == dtype
    dx = backward(mod, name, np.empty(shape, dtype), np.empty(shape, dtype), **kw)
    assert dx.shape == shape and dx.dtype == dtype
    out = np.empty(shape, dtype)
    assert forward(mod, name, x, out=out, **kw) is out


@pytest.mark.parametrize("shape", EMPTY_SHAPES, ids=str)
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name", SOFTMAXES)
def test_softmax_empty(dtype, mod, name, shape):
    x = np.empty(shape, dtype=dtype)
    for axis in range(-len(shape), len(shape)):
        y = forward(mod, name, x, axis=axis)
        assert y.shape == shape and y.dtype == dtype
        dx = backward(mod, name, np.empty(shape, dtype), y, axis=axis)
        assert dx.shape == shape and dx.dtype == dtype
        out = np.empty(shape, dtype)
        assert forward(mod, name, x, axis=axis, out=out) is out


# ---------------------------------------------------------------------------------------
# non-contiguous inputs are copied, never mis-read


def _views(rng, dtype):
    a = (rng.standard_normal((6, 10)) * 3).astype(dtype)
    b = (rng.standard_normal((4, 5, 6)) * 3).astype(dtype)
    big = (rng.standard_normal((200, 400)) * 3).astype(dtype)
    return {
        "every-other-column": a[:, ::2],
        "transpose": a.T,
        "reversed-rows": a[::-1],
        "negative-strides": a[::-1, ::-3],
        "transpose-3d": b.transpose(2, 0, 1),
        "fortran": np.asfortranarray(a),
        "big-every-other-column": big[:, ::2],
        "big-transpose": big.T,
    }


VIEW_NAMES = list(_views(np.random.default_rng(0), np.float64))


@pytest.mark.parametrize("view", VIEW_NAMES)
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_non_contiguous_inputs(rng, dtype, mod, view):
    x = _views(rng, dtype)[view]
    assert not x.flags.c_contiguous
    xc = np.ascontiguousarray(x)
    dy = _views(np.random.default_rng(1), dtype)[view]
    dyc = np.ascontiguousarray(dy)
    for name, kw in ELEMENTWISE:
        assert_close(forward(mod, name, x, **kw), forward(reference, name, xc, **kw), dtype)
        # the saved array strided too: the input view itself, or the output in Fortran order
        saved = x if name in SAVES_INPUT else np.asfortranarray(forward(reference, name, xc, **kw))
        saved_c = np.ascontiguousarray(saved)
        assert not saved.flags.c_contiguous
        assert_close(
            backward(mod, name, dy, saved, **kw), backward(reference, name, dyc, saved_c, **kw), dtype
        )
    for name in SOFTMAXES:
        for axis in (0, -1):
            expected = forward(reference, name, xc, axis=axis)
            assert_close(forward(mod, name, x, axis=axis), expected, dtype)
            y_strided = np.asfortranarray(expected)
            assert_close(
                backward(mod, name, dy, y_strided, axis=axis),
                backward(reference, name, dyc, expected, axis=axis),
                dtype,
            )


# ---------------------------------------------------------------------------------------
# out=


def _calls(name, x, dy):
    """(label, f(out)) for the forward and backward of `name` on x."""
    kw = {"axis": 0} if name in SOFTMAXES else {}
    saved = x if name in SAVES_INPUT else forward(reference, name, x, **kw)
    return [
        (name, lambda mod, out: forward(mod, name, x, out=out, **kw)),
        (name + "_backward", lambda mod, out: backward(mod, name, dy, saved, out=out, **kw)),
    ]


def _bad_outs(dtype):
    other = np.float64 if dtype == np.float32 else np.float32
    ro = np.empty((4, 5), dtype)
    ro.flags.writeable = False
    return [
        ("wrong-shape", np.empty((4, 6), dtype), ValueError),
        ("wrong-shape-transposed", np.empty((5, 4), dtype), ValueError),
        ("wrong-shape-flat", np.empty(20, dtype), ValueError),
        ("wrong-dtype", np.empty((4, 5), other), TypeError),
        ("int-dtype", np.empty((4, 5), np.int64), TypeError),
        ("non-contiguous", np.empty((4, 10), dtype)[:, ::2], ValueError),
        ("fortran-order", np.empty((4, 5), dtype, order="F"), ValueError),
        ("read-only", ro, ValueError),
        ("list", [[0.0] * 5] * 4, TypeError),
    ]


BAD_OUT_IDS = [label for label, _, _ in _bad_outs(np.float64)]


@pytest.mark.parametrize("bad", BAD_OUT_IDS)
@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name", ALL_FORWARDS)
def test_bad_out(rng, dtype, mod, name, bad):
    x = rng.standard_normal((4, 5)).astype(dtype)
    dy = rng.standard_normal((4, 5)).astype(dtype)
    (_, out, exc), = [b for b in _bad_outs(dtype) if b[0] == bad]
    for label, call in _calls(name, x, dy):
        before = np.array(out, copy=True)
        with pytest.raises(exc, match=r"\bout\b"):
            call(mod, out)
        np.testing.assert_array_equal(np.asarray(out), before)  # untouched on error


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name", ALL_FORWARDS)
def test_out_may_alias_the_input(rng, dtype, mod, name):
    # out=x (in place), as NumPy ufuncs allow: the result equals the out-of-place one.
    x = (rng.standard_normal((3, 4, 5)) * 3).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    axes = range(-3, 3) if name in SOFTMAXES else [None]
    for axis in axes:
        kw = {} if axis is None else {"axis": axis}
        expected = forward(reference, name, x, **kw)
        buf = x.copy()
        assert forward(mod, name, buf, out=buf, **kw) is buf
        assert_close(buf, expected, dtype, err_msg=f"{name}(x, out=x, {kw})")
        saved = x.copy() if name in SAVES_INPUT else expected.copy()
        expected_dx = backward(reference, name, dy, saved, **kw)
        g = dy.copy()
        assert backward(mod, name, g, saved, out=g, **kw) is g
        assert_close(g, expected_dx, dtype, err_msg=f"{name}_backward(dy, saved, out=dy, {kw})")
        s = saved.copy()
        assert backward(mod, name, dy, s, out=s, **kw) is s
        assert_close(s, expected_dx, dtype, err_msg=f"{name}_backward(dy, saved, out=saved, {kw})")


# ---------------------------------------------------------------------------------------
# reproducibility: the same input gives the same bits wherever the arrays live in memory


def _at_offset(a, offset):
    """A C-contiguous copy of `a` starting `offset` elements into a fresh buffer."""
    buf = np.empty(a.size + 16, a.dtype)
    v = buf[offset : offset + a.size].reshape(a.shape)
    v[...] = a
    return v


@pytest.mark.parametrize("shape", [(30, 101), (3, 4_100)], ids=str)
@pytest.mark.parametrize("name", ALL_FORWARDS)
def test_result_does_not_depend_on_buffer_alignment(rng, dtype, name, shape):
    """Two calls on equal inputs give bitwise equal results, whatever the (element-aligned)
    addresses of the input and output arrays: numpy hands out buffers at varying offsets
    from a SIMD boundary, so an address-dependent result is not reproducible run to run."""
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    kw = {"axis": -1} if name in SOFTMAXES else {}
    saved = x if name in SAVES_INPUT else forward(ops, name, x, **kw)
    y0 = forward(ops, name, _at_offset(x, 0), out=_at_offset(x, 0), **kw).copy()
    g0 = backward(ops, name, _at_offset(dy, 0), _at_offset(saved, 0), out=_at_offset(x, 0), **kw).copy()
    bad_y, bad_g = [], []
    for offset in range(1, 16):
        y = forward(ops, name, _at_offset(x, offset), out=_at_offset(x, (offset * 7) % 16), **kw)
        if not np.array_equal(y, y0):
            bad_y.append(offset)
        g = backward(
            ops, name, _at_offset(dy, offset), _at_offset(saved, (offset * 3) % 16),
            out=_at_offset(x, (offset * 5) % 16), **kw,
        )
        if not np.array_equal(g, g0):
            bad_g.append(offset)
    assert not bad_y and not bad_g, (
        f"{name}: forward differs bitwise at offsets {bad_y}, backward at {bad_g}"
    )


@pytest.mark.parametrize("name", ALL_FORWARDS)
def test_streamed_result_does_not_depend_on_buffer_alignment(name):
    """The same above the streaming threshold, where the output blocks follow the output's
    cache lines: every element offset of the output within a line gives the same bits, for
    the forward and the backward, float32 (float64 would take 16 MB per array)."""
    rng = np.random.default_rng(11)
    shape = (4, 600_001)  # 9.6 MB: streamed; rows of several blocks with a ragged last one
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    kw = {"axis": -1} if name in SOFTMAXES else {}
    saved = x if name in SAVES_INPUT else forward(ops, name, x, **kw)
    y0 = forward(ops, name, x, **kw)
    g0 = backward(ops, name, dy, saved, **kw)
    bad_y, bad_g = [], []
    for offset in (1, 3, 4, 8, 13, 15):
        if not np.array_equal(forward(ops, name, x, out=_at_offset(x, offset), **kw), y0):
            bad_y.append(offset)
        if not np.array_equal(backward(ops, name, dy, saved, out=_at_offset(x, offset), **kw), g0):
            bad_g.append(offset)
    assert not bad_y and not bad_g, (
        f"{name}: forward differs bitwise at output offsets {bad_y}, backward at {bad_g}"
    )


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(70, 40000), (3000, 1500), (256, 32768)])
def test_streamed_pipelined_rows(name, shape):
    """Outputs above the streaming threshold take the row-pipelined path (float32, AVX-512
    builds): same values as the twin, in place as out of place, and the same bits for 1 and 2
    threads, with -inf rows, a NaN and rows of several blocks with a ragged last one."""
    import nnkern

    rng = np.random.default_rng(5)
    x = (rng.standard_normal(shape) * 5).astype(np.float32)
    x[1] = -np.inf
    x[2, 5] = np.nan
    x[3, : shape[1] // 2] = -np.inf
    f = getattr(ops, name)
    y = f(x)
    with np.errstate(invalid="ignore"):
        ref = getattr(reference, name)(x)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5, equal_nan=True)
    z = x.copy()
    f(z, out=z)
    np.testing.assert_array_equal(z, y)
    nnkern.set_num_threads(1)
    try:
        np.testing.assert_array_equal(f(x), y)
    finally:
        nnkern.set_num_threads(2)
