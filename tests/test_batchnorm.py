"""Batch normalization: ops vs the twin, finite differences for the backward, torch's
BatchNorm1d in training and eval mode including the running statistics, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FD_TOL, TORCH_TOL, assert_close, finite_difference

from nnkern import ops
from nnkern import reference as ref

# (40, 2500): channels in three chunks of the kernels' channel loops, the last one partial
SHAPES = [(2, 1), (5, 3), (64, 33), (300, 130), (40, 2500), (100, 1100), (4, 3, 7), (3, 5, 1), (9, 2, 2000)]


def _inputs(rng, shape, dtype, offset=0.0):
    C = shape[1]
    x = (rng.standard_normal(shape) * 2 + offset).astype(dtype)
    gamma = rng.standard_normal(C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    rm = rng.standard_normal(C).astype(dtype)
    rv = rng.uniform(0.5, 2, C).astype(dtype)
    return x, gamma, beta, rm, rv


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_ops_match_twin(rng, dtype, shape, training, affine):
    x, gamma, beta, rm, rv = _inputs(rng, shape, dtype, offset=3.0)
    if not affine:
        gamma = beta = None
    dy = rng.standard_normal(shape).astype(dtype)
    rm1, rv1, rm2, rv2 = rm.copy(), rv.copy(), rm.copy(), rv.copy()
    y1, c1 = ops.batchnorm_forward(x, gamma, beta, rm1, rv1, training=training, momentum=0.2)
    y2, c2 = ref.batchnorm_forward(x, gamma, beta, rm2, rv2, training=training, momentum=0.2)
    assert y1.dtype == dtype and y1.shape == shape
    assert_close(y1, y2)
    assert_close(rm1, rm2)
    assert_close(rv1, rv2)
    for a, b in zip(ops.batchnorm_backward(dy, c1), ref.batchnorm_backward(dy, c2)):
        assert a.dtype == dtype
        assert_close(a, b, atol=1e-4 if dtype == np.float32 else 1e-11)
    # the caches are interchangeable
    for a, b in zip(ops.batchnorm_backward(dy, c2), ref.batchnorm_backward(dy, c1)):
        assert_close(a, b, atol=1e-4 if dtype == np.float32 else 1e-11)


def test_no_running_statistics_uses_batch_statistics(rng, dtype):
    x, gamma, beta, _, _ = _inputs(rng, (20, 4), dtype)
    for mod in (ops, ref):
        y_eval, c = mod.batchnorm_forward(x, gamma, beta, None, None, training=False)
        y_train, _ = mod.batchnorm_forward(x, gamma, beta, None, None, training=True)
        assert c.batch_stats
        assert_close(y_eval, y_train)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3)], ids=["NC", "NCL"])
def test_backward_finite_differences(rng, shape, training):
    x, gamma, beta, rm, rv = _inputs(rng, shape, np.float64)
    dy = rng.standard_normal(shape)

    def fwd(x_, g_=gamma, b_=beta):
        return ref.batchnorm_forward(x_, g_, b_, rm.copy(), rv.copy(), training=training)[0]

    _, cache = ref.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), training=training)
    dx, dgamma, dbeta = ref.batchnorm_backward(dy, cache)
    np.testing.assert_allclose(dx, finite_difference(fwd, x, dy), **FD_TOL)
    np.testing.assert_allclose(dgamma, finite_difference(lambda g: fwd(x, g), gamma, dy), **FD_TOL)
    np.testing.assert_allclose(dbeta, finite_difference(lambda b: fwd(x, gamma, b), beta, dy), **FD_TOL)
    _, cache = ops.batchnorm_forward(x, gamma, beta, rm.copy(), rv.copy(), training=training)
    for a, b in zip(ops.batchnorm_backward(dy, cache), (dx, dgamma, dbeta)):
        assert_close(a, b)


@pytest.mark.parametrize("shape", [(16, 5), (8, 3, 6)], ids=["NC", "NCL"])
def test_matches_torch_batchnorm1d_train_then_eval(torch, rng, dtype, shape):
    C = shape[1]
    tdt = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    bn = torch.nn.BatchNorm1d(C, momentum=0.3, eps=1e-4).to(tdt)
    gamma = rng.standard_normal(C).astype(dtype)
    beta = rng.standard_normal(C).astype(dtype)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(gamma))
        bn.bias.copy_(torch.tensor(beta))
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    tol = TORCH_TOL[dtype]
    for step in range(4):  # a few training batches, then eval
        training = step < 3
        bn.train(training)
        x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        xt = torch.tensor(x, requires_grad=True)
        bn.zero_grad()
        yt = bn(xt)
        yt.backward(torch.tensor(dy))
        y, cache = ops.batchnorm_forward(x, gamma, beta, rm, rv, training=training, momentum=0.3, eps=1e-4)
        dx, dgamma, dbeta = ops.batchnorm_backward(dy, cache)
        assert_close(y, yt.detach().numpy(), **tol)
        assert_close(rm, bn.running_mean.numpy(), **tol)
        assert_close(rv, bn.running_var.numpy(), **tol)
        assert_close(dx, xt.grad.numpy(), **tol)
        assert_close(dgamma, bn.weight.grad.numpy(), **tol)
        assert_close(dbeta, bn.bias.grad.numpy(), **tol)


# (1100, 2100): 9 MB, so the outputs take the streaming-store path, in channel chunks.
# (200, 3000) and (400, 5300): short and wide, so the training forward works in column blocks
# (of different widths for 1 and 2 threads), the second through streaming stores.
@pytest.mark.parametrize("shape", [(3000, 37), (1100, 2100), (200, 3000), (400, 5300)])
def test_result_does_not_depend_on_threads(rng, shape):
    import nnkern

    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    C = shape[1]
    out = []
    for n in (1, 2):
        nnkern.set_num_threads(n)
        try:
            rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
            y, c = ops.batchnorm_forward(x, None, None, rm, rv)
            out.append((y, rm, rv, *ops.batchnorm_backward(dy, c)))
        finally:
            nnkern.set_num_threads(2)
    for a, b in zip(*out):
        np.testing.assert_array_equal(a, b)
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)
    y, c = ref.batchnorm_forward(x, None, None, rm, rv)
    for a, b in zip(out[0], (y, rm, rv, *ref.batchnorm_backward(dy, c))):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_strided_input_and_running_stats(rng):
    x = rng.standard_normal((10, 8))
    rm_view, rv_view = np.zeros(16)[::2], np.ones(16)[::2]
    rm, rv = np.zeros(8), np.ones(8)
    y1, _ = ops.batchnorm_forward(x.T.copy().T, None, None, rm_view, rv_view)  # x Fortran-ordered
    y2, _ = ref.batchnorm_forward(x, None, None, rm, rv)
    assert_close(y1, y2)
    assert_close(rm_view, rm)
    assert_close(rv_view, rv)


def f64(*s):
    return np.full(s, 0.5)


BAD = [
    ("x-1d", lambda: ((f64(4), None, None, None, None), {}), ValueError, r"^x: .*\(N, C\)"),
    ("x-4d", lambda: ((f64(2, 2, 2, 2), None, None, None, None), {}), ValueError, r"^x: "),
    ("x-int", lambda: ((np.ones((3, 2), np.int64), None, None, None, None), {}), TypeError, r"^x: .*int64"),
    ("gamma-shape", lambda: ((f64(3, 2), f64(3), None, None, None), {}), ValueError, r"^gamma: expected shape \(2,\)"),
    ("beta-f32", lambda: ((f64(3, 2), None, np.ones(2, np.float32), None, None), {}), TypeError, r"^beta: "),
    ("running-one", lambda: ((f64(3, 2), None, None, f64(2), None), {}), ValueError, r"^running_mean, running_var"),
    ("running-shape", lambda: ((f64(3, 2), None, None, f64(3), f64(3)), {}), ValueError, r"^running_mean: "),
    ("running-list", lambda: ((f64(3, 2), None, None, [0.0, 0.0], [1.0, 1.0]), {}), TypeError, r"^running_mean: "),
    ("momentum", lambda: ((f64(3, 2), None, None, None, None), {"momentum": 1.5}), ValueError, r"^momentum: "),
    ("eps-zero", lambda: ((f64(3, 2), None, None, None, None), {"eps": 0.0}), ValueError, r"^eps: "),
    ("training-str", lambda: ((f64(3, 2), None, None, None, None), {"training": "yes"}), TypeError, r"^training: "),
    ("one-value-per-channel", lambda: ((f64(1, 4), None, None, f64(4), f64(4)), {}), ValueError,
     r"^x: expected more than 1 value per channel"),
]


@pytest.mark.parametrize("make,exc,match", [pytest.param(m, e, r, id=i) for i, m, e, r in BAD])
def test_bad_forward_arguments(make, exc, match):
    msgs = []
    for mod in (ops, ref):
        args, kwargs = make()
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        before = [a.copy() for a in arrays]
        with pytest.raises(exc, match=match) as info:
            mod.batchnorm_forward(*args, **kwargs)
        msgs.append(str(info.value))
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)
    assert msgs[0] == msgs[1]


def test_bad_backward_arguments(rng):
    x = rng.standard_normal((4, 3))
    for mod in (ops, ref):
        _, cache = mod.batchnorm_forward(x, None, None, None, None)
        with pytest.raises(ValueError, match=r"^dy: shape \(3, 4\)"):
            mod.batchnorm_backward(np.zeros((3, 4)), cache)
        with pytest.raises(TypeError, match=r"^dy: .*float32"):
            mod.batchnorm_backward(np.zeros((4, 3), np.float32), cache)
        with pytest.raises(TypeError, match=r"^cache: "):
            mod.batchnorm_backward(np.zeros((4, 3)), (x, None))
