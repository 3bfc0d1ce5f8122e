"""Initialisers: shapes, dtypes, seeds, the distributions' bounds and spreads against
torch.nn.init's formulas, orthogonality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnkern import ops
from nnkern import reference as ref

RANDOM = ["xavier_uniform", "xavier_normal", "he_uniform", "he_normal", "lecun_normal", "orthogonal"]


@pytest.mark.parametrize("name", RANDOM)
def test_shape_dtype_and_seed(name, dtype):
    f = getattr(ops, name)
    a = f((64, 32), 7, dtype=dtype)
    assert a.shape == (64, 32) and a.dtype == dtype
    np.testing.assert_array_equal(a, f((64, 32), 7, dtype=dtype))
    np.testing.assert_array_equal(a, getattr(ref, name)((64, 32), 7, dtype=dtype))
    assert not np.array_equal(a, f((64, 32), 8, dtype=dtype))
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(f((3, 4), g1), getattr(ref, name)((3, 4), g2))
    assert not np.array_equal(f((3, 4), g1), f((3, 4), np.random.default_rng(5)))  # g1 advanced


def _torch_fans(torch, shape):
    return torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("shape", [(300, 200), (64, 16, 3, 3), (1000, 10)])
def test_spread_matches_torch_formulas(torch, shape):
    fan_in, fan_out = _torch_fans(torch, shape)
    gain = torch.nn.init.calculate_gain("relu")
    a = ops.xavier_uniform(shape, 1, gain=2.0, dtype=np.float64)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
    assert abs(a.std() / (bound / math.sqrt(3)) - 1) < 0.05
    a = ops.xavier_normal(shape, 2, dtype=np.float64)
    assert abs(a.std() / math.sqrt(2 / (fan_in + fan_out)) - 1) < 0.05
    for mode, fan in (("fan_in", fan_in), ("fan_out", fan_out)):
        a = ops.he_uniform(shape, 3, mode=mode, dtype=np.float64)
        bound = gain * math.sqrt(3 / fan)
        assert np.abs(a).max() <= bound and np.abs(a).max() > 0.99 * bound
        a = ops.he_normal(shape, 4, mode=mode, dtype=np.float64)
        assert abs(a.std() / (gain / math.sqrt(fan)) - 1) < 0.05
    a = ops.he_normal(shape, 4, nonlinearity="leaky_relu", a=0.2, dtype=np.float64)
    assert abs(a.std() / (torch.nn.init.calculate_gain("leaky_relu", 0.2) / math.sqrt(fan_in)) - 1) < 0.05
    a = ops.lecun_normal(shape, 5, dtype=np.float64)
    assert abs(a.std() * math.sqrt(fan_in) - 1) < 0.05


@pytest.mark.parametrize("shape", [(5, 5), (3, 8), (8, 3), (4, 2, 3)])
def test_orthogonal(shape):
    w = ops.orthogonal(shape, 11, gain=1.5, dtype=np.float64)
    m = w.reshape(shape[0], -1) / 1.5
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_zeros_ones():
    assert ops.zeros((2, 3)).dtype == np.float32 and not ops.zeros((2, 3)).any()
    np.testing.assert_array_equal(ops.ones(4, dtype=np.float64), np.ones(4))
    np.testing.assert_array_equal(ref.ones(4), ops.ones(4))


@pytest.mark.parametrize("mod", [ops, ref], ids=["ops", "reference"])
def test_bad_arguments(mod):
    with pytest.raises(ValueError, match="^shape: expected at least 2 dimensions"):
        mod.xavier_uniform((5,), 1)
    with pytest.raises(TypeError, match="^shape: "):
        mod.he_normal((5, 2.0), 1)
    with pytest.raises(ValueError, match="^shape: "):
        mod.zeros((-1, 2))
    with pytest.raises(ValueError, match="^mode: "):
        mod.he_uniform((5, 3), 1, mode="fan_avg")
    with pytest.raises(ValueError, match="^nonlinearity: "):
        mod.he_uniform((5, 3), 1, nonlinearity="gelu")
    with pytest.raises(TypeError, match="^dtype: "):
        mod.ones((2, 2), dtype=np.int32)
    with pytest.raises(TypeError, match="^seed: "):
        mod.orthogonal((3, 3), "abc")
    with pytest.raises(ValueError, match="^shape: .*zero fan_in"):
        mod.he_normal((3, 0), 1)
