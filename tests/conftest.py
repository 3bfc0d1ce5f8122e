"""Shared test settings: tolerances (defined once), seeded generators, optional peers."""

from __future__ import annotations

import numpy as np
import pytest

import nnkern

# ops (C++) vs reference (NumPy) on the same input, per dtype.
TOL = {
    np.float32: dict(rtol=1e-4, atol=1e-5),
    np.float64: dict(rtol=1e-10, atol=1e-12),
}
# Central finite differences in float64 (step FD_EPS): truncation error ~eps^2.
FD_EPS = 1e-6
FD_TOL = dict(rtol=1e-5, atol=1e-7)
# Against PyTorch (different summation order and exp/tanh implementations).
TORCH_TOL = {
    np.float32: dict(rtol=1e-4, atol=1e-5),
    np.float64: dict(rtol=1e-9, atol=1e-11),
}

DTYPES = [np.float32, np.float64]


def tol(dtype) -> dict:
    return TOL[np.dtype(dtype).type]


def assert_close(actual, expected, dtype=None, **kw):
    """assert_allclose at the dtype's tolerance, printing the first differing entries."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    opts = dict(tol(dtype or expected.dtype))
    opts.update(kw)
    np.testing.assert_allclose(actual, expected, **opts)


def finite_difference(f, x: np.ndarray, dy: np.ndarray, eps: float = FD_EPS) -> np.ndarray:
    """Gradient of sum(f(x) * dy) with respect to x by central differences (float64)."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    flat = x.reshape(-1)
    gflat = g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = np.sum(np.asarray(f(x), dtype=np.float64) * dy)
        flat[i] = old - eps
        fm = np.sum(np.asarray(f(x), dtype=np.float64) * dy)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


@pytest.fixture
def rng():
    return np.random.default_rng(20261127)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


@pytest.fixture(scope="session")
def torch():
    """PyTorch when importable (CI installs it), else the test is skipped."""
    t = pytest.importorskip("torch")
    t.set_num_threads(2)
    return t


@pytest.fixture(autouse=True, scope="session")
def _threads():
    nnkern.set_num_threads(2)
