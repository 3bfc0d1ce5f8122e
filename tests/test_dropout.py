"""Dropout: the C++ mask equals the twin's bit for bit, does not depend on the thread count,
keeps the right fraction, and the values and gradients are scaled by 1 / (1 - p)."""

from __future__ import annotations

import numpy as np
import pytest

import nnkern
from nnkern import ops
from nnkern import reference as ref

SIZES = [(1,), (2,), (3,), (17,), (5, 7), (4, 33, 65), (100_003,)]


@pytest.mark.parametrize("p", [0.0, 1e-9, 0.1, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("shape", SIZES, ids=lambda s: "x".join(map(str, s)))
def test_ops_match_twin_bitwise(rng, dtype, shape, p):
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    (y1, m1), (y2, m2) = ops.dropout(x, p, 12345), ref.dropout(x, p, 12345)
    assert m1.dtype == np.bool_ and m1.shape == shape and y1.dtype == dtype
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(ops.dropout_backward(dy, m1, p), ref.dropout_backward(dy, m2, p))


@pytest.mark.parametrize("n", [1_000_001, 3_000_000])
def test_mask_does_not_depend_on_threads(n):
    x = np.ones(n, dtype=np.float32)
    masks = []
    for threads in (1, 2, 3):
        nnkern.set_num_threads(threads)
        try:
            masks.append(ops.dropout(x, 0.3, 7)[1])
        finally:
            nnkern.set_num_threads(2)
    np.testing.assert_array_equal(masks[0], masks[1])
    np.testing.assert_array_equal(masks[0], masks[2])
    # a prefix of a longer array has the same mask: it depends on (seed, index) only
    np.testing.assert_array_equal(ops.dropout(x[:1000], 0.3, 7)[1], masks[0][:1000])


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_and_scaling(rng, p):
    n = 400_000
    x = rng.standard_normal(n).astype(np.float32)
    y, mask = ops.dropout(x, p, 99)
    # keep rate within 5 standard deviations of 1 - p
    assert abs(mask.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(y[~mask], 0)
    np.testing.assert_array_equal(y[mask], x[mask] * np.float32(1 / (1 - p)))
    # E[y] = x: inverted dropout keeps the expected activation
    assert abs(ops.dropout(np.ones(n, np.float32), p, 5)[0].mean() - 1) < 0.02
    dx = ops.dropout_backward(np.ones(n, np.float32), mask, p)
    np.testing.assert_array_equal(dx, np.where(mask, np.float32(1 / (1 - p)), 0))


def test_seeds_differ_and_repeat():
    x = np.ones(10_000)
    a, b, c = (ops.dropout(x, 0.5, s)[1] for s in (1, 2, 1))
    np.testing.assert_array_equal(a, c)
    assert (a != b).mean() > 0.4  # independent masks disagree about half the time
    # neighbouring elements and neighbouring seeds are not correlated
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.05
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05
    big = ops.dropout(x, 0.5, 2**64 - 1)[1]
    np.testing.assert_array_equal(big, ref.dropout(x, 0.5, 2**64 - 1)[1])


def test_generator_seed_and_eval_mode():
    x = np.arange(12.0).reshape(3, 4)
    m1 = ops.dropout(x, 0.5, np.random.default_rng(3))[1]
    m2 = ref.dropout(x, 0.5, np.random.default_rng(3))[1]
    np.testing.assert_array_equal(m1, m2)
    for mod in (ops, ref):
        y, mask = mod.dropout(x, 0.5, 1, training=False)
        assert mask is None and y is not x
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(mod.dropout_backward(x, None, 0.5), x)


def test_strided_input(rng):
    x = rng.standard_normal((6, 10))[:, ::3]
    (y1, m1), (y2, m2) = ops.dropout(x, 0.4, 8), ref.dropout(x, 0.4, 8)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(m1, m2)


def f64(*s):
    return np.full(s, 0.5)


BAD = [
    ("dropout", lambda: ((f64(3), 1.0, 1), {}), ValueError, r"^p: expected a probability in \[0, 1\)"),
    ("dropout", lambda: ((f64(3), -0.1, 1), {}), ValueError, r"^p: "),
    ("dropout", lambda: ((f64(3), float("nan"), 1), {}), ValueError, r"^p: .*finite"),
    ("dropout", lambda: ((f64(3), "a", 1), {}), TypeError, r"^p: "),
    ("dropout", lambda: ((f64(3), 0.5, -1), {}), ValueError, r"^seed: "),
    ("dropout", lambda: ((f64(3), 0.5, 2**64), {}), ValueError, r"^seed: "),
    ("dropout", lambda: ((f64(3), 0.5, 1.5), {}), TypeError, r"^seed: "),
    ("dropout", lambda: ((f64(3), 0.5, None), {}), TypeError, r"^seed: "),
    ("dropout", lambda: ((np.ones(3, np.int64), 0.5, 1), {}), TypeError, r"^x: .*int64"),
    ("dropout", lambda: ((f64(3), 0.5, 1), {"training": 1}), TypeError, r"^training: "),
    ("dropout_backward", lambda: ((f64(3), np.ones(3), 0.5), {}), TypeError, r"^mask: .*float64"),
    ("dropout_backward", lambda: ((f64(3), np.ones(4, bool), 0.5), {}), ValueError, r"^mask: shape \(4,\)"),
    ("dropout_backward", lambda: ((f64(3), np.ones(3, bool), 1.0), {}), ValueError, r"^p: "),
    ("dropout_backward", lambda: ((np.ones(3, np.int32), np.ones(3, bool), 0.5), {}), TypeError, r"^dy: "),
]


@pytest.mark.parametrize("name,make,exc,match", [pytest.param(*b, id=f"{b[0]}-{i}") for i, b in enumerate(BAD)])
def test_bad_arguments(name, make, exc, match):
    msgs = []
    for mod in (ops, ref):
        args, kwargs = make()
        with pytest.raises(exc, match=match) as info:
            getattr(mod, name)(*args, **kwargs)
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1]


def test_core_rejects_bad_buffers():
    from nnkern import _core

    with pytest.raises(TypeError):
        _core.dropout(f64(4), f64(4), np.ones(4, np.uint8), 0.5, 1)
    with pytest.raises(ValueError):
        _core.dropout(f64(4), f64(4), np.ones(3, bool), 0.5, 1)
    with pytest.raises(ValueError):
        _core.dropout(f64(4), f64(4), np.ones(4, bool), 1.5, 1)
    with pytest.raises(ValueError):
        _core.dropout_backward(f64(4), np.ones(4, bool), f64(3), 0.5)
