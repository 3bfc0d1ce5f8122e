"""Losses: nnkern.ops (C++) against nnkern.reference (NumPy), the twins against finite
differences, both against torch.nn.functional, and the argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FD_TOL, TORCH_TOL, assert_close, finite_difference

import nnkern
from nnkern import ops
from nnkern import reference as ref

REDUCTIONS = ["mean", "sum", "none"]
# Losses of the form NAME(pred, target, reduction, **kw) over same-shaped float arrays.
ELEMENTWISE = [
    "mse_loss", "mae_loss", "huber_loss", "log_cosh_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits",
]
ALL = ELEMENTWISE + ["cross_entropy"]
# Extra keyword arguments each elementwise loss is tested with.
VARIANTS = {
    "mse_loss": [{}],
    "mae_loss": [{}],
    "huber_loss": [{}, {"delta": 0.3}],
    "log_cosh_loss": [{}],
    "binary_cross_entropy": [{}],
    "binary_cross_entropy_with_logits": [{}, {"pos_weight": "per-class"}],
}
CASES = [(name, kw) for name in ELEMENTWISE for kw in VARIANTS[name]]
CASE_IDS = [name + "".join(f"-{k}" for k in kw) for name, kw in CASES]


def pair(name, shape, dtype, rng, scale=1.0):
    """(pred, target) valid for the loss: probabilities for BCE, else scaled normals."""
    if name == "binary_cross_entropy":
        return (rng.uniform(0.02, 0.98, shape).astype(dtype), rng.uniform(0, 1, shape).astype(dtype))
    pred = (scale * rng.standard_normal(shape)).astype(dtype)
    target = (scale * rng.standard_normal(shape)).astype(dtype)
    if name == "binary_cross_entropy_with_logits":
        target = rng.uniform(0, 1, shape).astype(dtype)
    return pred, target


def resolve(kw, pred, rng):
    """Replace the "per-class" placeholder by a pos_weight array of pred's last dimension."""
    kw = dict(kw)
    if kw.get("pos_weight") == "per-class":
        C = pred.shape[-1] if pred.ndim else 1
        kw["pos_weight"] = rng.uniform(0.2, 3.0, C).astype(pred.dtype)
    return kw


def both(name, *args, **kw):
    """(ops result, reference result) of NAME on the same arguments."""
    return getattr(ops, name)(*args, **kw), getattr(ref, name)(*args, **kw)


def check_pair(a, b, dtype, **tol):
    assert type(a) is type(b), (type(a), type(b))
    assert np.asarray(a).dtype == np.dtype(dtype)
    assert np.shape(a) == np.shape(b)
    assert_close(a, b, dtype, **tol)


def ce_inputs(N, C, dtype, rng, kind, scale=1.0):
    logits = (scale * rng.standard_normal((N, C))).astype(dtype)
    if kind == "labels":
        target = rng.integers(0, C, N)
        target[1::3] = -100  # ignored rows
    else:
        target = rng.dirichlet(np.ones(C), N).astype(dtype)
    return logits, target


# ---------------------------------------------------------------------------------------
# The API


def test_every_loss_in_both_namespaces():
    names = set(ALL) | {n + "_backward" for n in ALL}
    assert set(ops.losses.__all__) == names
    assert set(ref.losses.__all__) == names
    for n in names:
        assert getattr(ops, n).__doc__ == getattr(ref, n).__doc__
        assert getattr(ref, n).__doc__


# ---------------------------------------------------------------------------------------
# ops against reference


@pytest.mark.parametrize("name,kw", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (7,), (2, 3, 4), (), (40001,)])
def test_elementwise_ops_match_reference(name, kw, shape, dtype, rng):
    pred, target = pair(name, shape, dtype, rng)
    kw = resolve(kw, pred, rng)
    for red in REDUCTIONS:
        check_pair(*both(name, pred, target, red, **kw), dtype)
        check_pair(*both(name + "_backward", pred, target, red, **kw), dtype)


@pytest.mark.parametrize("name,kw", CASES, ids=CASE_IDS)
def test_elementwise_extreme_inputs(name, kw, dtype, rng):
    shape = (9, 11)
    if name == "binary_cross_entropy":
        # perfectly confident predictions, right and wrong, and soft targets
        pred = rng.choice([0.0, 1.0, 1e-30, 1 - 1e-7, 0.5], shape).astype(dtype)
        target = rng.choice([0.0, 1.0, 0.3], shape).astype(dtype)
    else:
        pred, target = pair(name, shape, dtype, rng)
        pred = rng.choice([-1e4, -300.0, -1.0, 0.0, 1e-3, 50.0, 1e4], shape).astype(dtype)
        if name != "binary_cross_entropy_with_logits":
            target = rng.choice([-1e4, 0.0, 1.0, 1e4], shape).astype(dtype)
    kw = resolve(kw, pred, rng)
    for red in REDUCTIONS:
        loss, loss_ref = both(name, pred, target, red, **kw)
        assert np.all(np.isfinite(loss)), (red, loss)
        check_pair(loss, loss_ref, dtype)
        grad, grad_ref = both(name + "_backward", pred, target, red, **kw)
        assert np.all(np.isfinite(grad))
        check_pair(grad, grad_ref, dtype)


def test_extreme_values_are_right(rng):
    d = np.array([-1e4, -1e6, 1e4, 1e30, 0.0])
    z = np.zeros_like(d)
    assert_close(ops.log_cosh_loss(d, z, "none"), np.abs(d) - np.log(2) * (d != 0))
    assert_close(ops.log_cosh_loss_backward(d, z, "none"), np.sign(d))
    p = np.array([0.0, 0.0, 1.0, 1.0])
    t = np.array([0.0, 1.0, 0.0, 1.0])
    assert_close(ops.binary_cross_entropy(p, t, "none"), [0.0, 100.0, 100.0, 0.0])
    x = np.array([-1e4, 1e4, -1e4, 1e4], dtype=np.float32)
    t = np.array([0, 0, 1, 1], dtype=np.float32)
    assert_close(ops.binary_cross_entropy_with_logits(x, t, "none"), [0, 1e4, 1e4, 0])


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("N,C", [(1, 1), (1, 2), (7, 5), (64, 3), (33, 1001)])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.15])
def test_cross_entropy_ops_match_reference(kind, N, C, label_smoothing, dtype, rng):
    logits, target = ce_inputs(N, C, dtype, rng, kind, scale=3.0)
    for red in REDUCTIONS:
        kw = dict(reduction=red, label_smoothing=label_smoothing)
        check_pair(*both("cross_entropy", logits, target, **kw), dtype)
        check_pair(*both("cross_entropy_backward", logits, target, **kw), dtype)


@pytest.mark.parametrize("kind", ["labels", "probs"])
def test_cross_entropy_extreme_logits(kind, dtype, rng):
    logits, target = ce_inputs(16, 9, dtype, rng, kind)
    logits = rng.uniform(-1e4, 1e4, logits.shape).astype(dtype)
    logits[0] = 1e4  # a tie at the top
    for red in REDUCTIONS:
        for eps in (0.0, 0.1):
            loss, loss_ref = both("cross_entropy", logits, target, red, label_smoothing=eps)
            assert np.all(np.isfinite(loss))
            check_pair(loss, loss_ref, dtype)
            check_pair(*both("cross_entropy_backward", logits, target, red, label_smoothing=eps), dtype)


def test_cross_entropy_single_sample_and_ignore_index(rng):
    x = rng.standard_normal(6)
    for red in REDUCTIONS:
        check_pair(*both("cross_entropy", x, np.int64(2), red), np.float64)
        check_pair(*both("cross_entropy", x, np.abs(x) / np.abs(x).sum(), red), np.float64)
        g, g_ref = both("cross_entropy_backward", x, 2, red)
        assert g.shape == (6,)
        check_pair(g, g_ref, np.float64)
    assert ops.cross_entropy(x, np.int64(1), "none").shape == ()
    # ignore_index may be a real class; int32 labels are accepted
    X = rng.standard_normal((5, 4))
    y = np.array([0, 2, 2, 3, 1], dtype=np.int32)
    for red in REDUCTIONS:
        loss, loss_ref = both("cross_entropy", X, y, red, ignore_index=2)
        check_pair(loss, loss_ref, np.float64)
        g = ops.cross_entropy_backward(X, y, red, ignore_index=2)
        assert np.all(g[[1, 2]] == 0)
    keep = [0, 3, 4]
    assert_close(ops.cross_entropy(X, y, ignore_index=2), ops.cross_entropy(X[keep], y[keep]))
    # every row ignored: the mean of nothing is NaN, the sum 0, the gradient 0 (as PyTorch)
    for impl in (ops, ref):
        for eps in (0.0, 0.3):
            assert np.isnan(impl.cross_entropy(X, np.full(5, 7), ignore_index=7, label_smoothing=eps))
            assert impl.cross_entropy(X, np.full(5, 7), "sum", ignore_index=7, label_smoothing=eps) == 0
            assert not impl.cross_entropy_backward(X, np.full(5, 7), ignore_index=7, label_smoothing=eps).any()


# ---------------------------------------------------------------------------------------
# Twins against central finite differences (float64)


def _away_from_kinks(name, pred, target, kw):
    """Move pred off the points where the loss is not differentiable (d = 0, |d| = delta)."""
    if name in ("mae_loss", "huber_loss"):
        delta = kw.get("delta", 1.0)
        d = pred - target
        d = np.where(np.abs(d) < 0.05, d + 0.1, d)
        if name == "huber_loss":
            d = np.where(np.abs(np.abs(d) - delta) < 0.05, d * 1.2, d)
        pred = target + d
    return pred


@pytest.mark.parametrize("name,kw", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (4,)])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_backward_finite_differences(name, kw, shape, reduction, rng):
    pred, target = pair(name, shape, np.float64, rng)
    pred = _away_from_kinks(name, pred, target, kw)
    kw = resolve(kw, pred, rng)
    f = getattr(ref, name)
    fd = finite_difference(lambda p: f(p, target, reduction, **kw), pred, np.ones(np.shape(f(pred, target, reduction, **kw))))
    assert_close(getattr(ref, name + "_backward")(pred, target, reduction, **kw), fd, **FD_TOL)


@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("N,C", [(1, 1), (1, 3), (5, 4)])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.2])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_backward_finite_differences(kind, N, C, label_smoothing, reduction, rng):
    logits, target = ce_inputs(N, C, np.float64, rng, kind, scale=2.0)
    if kind == "probs":
        target = target * rng.uniform(0.5, 1.5, (N, 1))  # rows need not sum to 1
    kw = dict(reduction=reduction, label_smoothing=label_smoothing)
    dy = np.ones(np.shape(ref.cross_entropy(logits, target, **kw)))
    fd = finite_difference(lambda x: ref.cross_entropy(x, target, **kw), logits, dy)
    assert_close(ref.cross_entropy_backward(logits, target, **kw), fd, **FD_TOL)


# ---------------------------------------------------------------------------------------
# Against PyTorch


def _torch_loss(torch, name, p, t, reduction, kw):
    F = torch.nn.functional
    if name == "mse_loss":
        return F.mse_loss(p, t, reduction=reduction)
    if name == "mae_loss":
        return F.l1_loss(p, t, reduction=reduction)
    if name == "huber_loss":
        return F.huber_loss(p, t, reduction=reduction, delta=kw.get("delta", 1.0))
    if name == "log_cosh_loss":  # not in torch: its definition, for moderate d
        loss = torch.log(torch.cosh(p - t))
        return {"mean": loss.mean, "sum": loss.sum, "none": lambda: loss}[reduction]()
    if name == "binary_cross_entropy":
        return F.binary_cross_entropy(p, t, reduction=reduction)
    if name == "binary_cross_entropy_with_logits":
        w = kw.get("pos_weight")
        w = None if w is None else torch.from_numpy(w)
        return F.binary_cross_entropy_with_logits(p, t, reduction=reduction, pos_weight=w)
    raise AssertionError(name)


def _torch_value_and_grad(torch, loss_fn, x):
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    loss = loss_fn(xt)
    (loss.sum() if loss.ndim else loss).backward()
    return loss.detach().numpy(), xt.grad.numpy()


def _check_torch(value, grad, ours_value, ours_grad, dtype):
    tol = TORCH_TOL[np.dtype(dtype).type]
    assert_close(ours_value, value, **tol)
    assert_close(ours_grad, grad, **tol)


@pytest.mark.parametrize("name,kw", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_elementwise_against_torch(name, kw, reduction, dtype, rng, torch):
    shape = (6, 7)
    pred, target = pair(name, shape, dtype, rng, scale=2.0)
    pred = _away_from_kinks(name, pred, target, kw)
    if name == "binary_cross_entropy":  # confident predictions too
        pred[0, :4] = [0.0, 1.0, 0.0, 1.0]
        target[0, :4] = [0.0, 0.0, 1.0, 1.0]
    if name == "binary_cross_entropy_with_logits":
        pred[0, :3] = [-1e4, 1e4, 0.0]
    kw = resolve(kw, pred, rng)
    tt = torch.from_numpy(target)
    value, grad = _torch_value_and_grad(torch, lambda p: _torch_loss(torch, name, p, tt, reduction, kw), pred)
    for impl in (ops, ref):
        ours = getattr(impl, name)(pred, target, reduction, **kw)
        ours_grad = getattr(impl, name + "_backward")(pred, target, reduction, **kw)
        _check_torch(value, grad, ours, ours_grad, dtype)


@pytest.mark.parametrize("kind", ["labels", "probs", "all-ignored", "single"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_against_torch(kind, label_smoothing, reduction, dtype, rng, torch):
    if kind == "single":
        logits = rng.standard_normal(5).astype(dtype)
        target = np.int64(3)
    else:
        logits, target = ce_inputs(9, 6, dtype, rng, "probs" if kind == "probs" else "labels", scale=3.0)
        logits[1] *= 3000.0  # large logits
        if kind == "all-ignored":
            target[:] = -100
    tt = torch.from_numpy(np.asarray(target))
    F = torch.nn.functional
    value, grad = _torch_value_and_grad(
        torch,
        lambda x: F.cross_entropy(x, tt, reduction=reduction, label_smoothing=label_smoothing),
        logits,
    )
    for impl in (ops, ref):
        kw = dict(reduction=reduction, label_smoothing=label_smoothing)
        ours = impl.cross_entropy(logits, target, **kw)
        ours_grad = impl.cross_entropy_backward(logits, target, **kw)
        _check_torch(value, grad, ours, ours_grad, dtype)


# ---------------------------------------------------------------------------------------
# Layout, empty arrays, NaN, threads


@pytest.mark.parametrize("name,kw", CASES, ids=CASE_IDS)
def test_non_contiguous_inputs(name, kw, dtype, rng):
    p_big, t_big = pair(name, (12, 10), dtype, rng)
    views = [(p_big[::2, 1::3], t_big[1::2, 2::3]), (p_big.T, t_big.T), (p_big[:, 3], t_big[::-1, 0])]
    for pred, target in views:
        assert not pred.flags.c_contiguous
        k = resolve(kw, pred, rng)
        if "pos_weight" in k:
            k["pos_weight"] = np.repeat(k["pos_weight"], 2)[::2]  # a strided pos_weight
        pc, tc = np.ascontiguousarray(pred), np.ascontiguousarray(target)
        for red in REDUCTIONS:
            assert_close(getattr(ops, name)(pred, target, red, **k), getattr(ref, name)(pc, tc, red, **k), dtype)
            assert_close(
                getattr(ops, name + "_backward")(pred, target, red, **k),
                getattr(ref, name + "_backward")(pc, tc, red, **k),
                dtype,
            )


def test_cross_entropy_non_contiguous(dtype, rng):
    big = rng.standard_normal((10, 14)).astype(dtype)
    labels = rng.integers(0, 7, 20)[::2]
    probs = rng.dirichlet(np.ones(10), 7).astype(dtype).T  # (10, 7) transposed view
    for logits, target in [(big[:, ::2], labels), (big.T[:7].T[:, :7], labels), (big[:, 7:], probs.T.copy().T)]:
        for red in REDUCTIONS:
            xc, tc = np.ascontiguousarray(logits), np.ascontiguousarray(target)
            assert_close(ops.cross_entropy(logits, target, red), ref.cross_entropy(xc, tc, red), dtype)
            assert_close(
                ops.cross_entropy_backward(logits, target, red), ref.cross_entropy_backward(xc, tc, red), dtype
            )


@pytest.mark.parametrize("name", ALL)
def test_empty_inputs(name, dtype):
    if name == "cross_entropy":
        args_list = [
            (np.zeros((0, 4), dtype), np.zeros(0, np.int64)),
            (np.zeros((0, 4), dtype), np.zeros((0, 4), dtype)),
            (np.zeros((0, 0), dtype), np.zeros(0, np.int64)),
        ]
    else:
        args_list = [(np.zeros((0, 3), dtype), np.zeros((0, 3), dtype)), (np.zeros((3, 0), dtype), np.zeros((3, 0), dtype))]
    for args in args_list:
        for impl in (ops, ref):
            f, b = getattr(impl, name), getattr(impl, name + "_backward")
            s, m, none = f(*args, "sum"), f(*args, "mean"), f(*args, "none")
            assert s == 0 and np.asarray(s).dtype == dtype
            assert np.isnan(m) and np.asarray(m).dtype == dtype
            assert none.shape == args[0].shape[: none.ndim] and none.size == 0
            assert b(*args, "mean").shape == args[0].shape
    if name == "binary_cross_entropy_with_logits":
        p = np.zeros((3, 0), dtype)
        for impl in (ops, ref):
            assert impl.binary_cross_entropy_with_logits(p, p, "sum", pos_weight=np.zeros(0, dtype)) == 0
            assert impl.binary_cross_entropy_with_logits_backward(p, p, pos_weight=np.zeros(0, dtype)).shape == (3, 0)


@pytest.mark.parametrize("name", ALL)
def test_nan_propagates(name, dtype, rng):
    if name == "cross_entropy":
        x, t = ce_inputs(4, 5, dtype, rng, "labels")
        t[:] = [0, 1, 2, 3]
    else:
        x, t = pair(name, (4, 5), dtype, rng)
    x[1, 2] = np.nan
    for impl in (ops, ref):
        f, b = getattr(impl, name), getattr(impl, name + "_backward")
        assert np.isnan(f(x, t, "mean")) and np.isnan(f(x, t, "sum"))
        none = f(x, t, "none")
        g = b(x, t, "none")
        if name == "cross_entropy":  # the whole row
            assert np.isnan(none[1]) and not np.isnan(none[[0, 2, 3]]).any()
            assert np.isnan(g[1]).all() and not np.isnan(g[[0, 2, 3]]).any()
        else:
            assert np.isnan(none[1, 2]) and np.isnan(none).sum() == 1
            assert np.isnan(g[1, 2]) and np.isnan(g).sum() == 1


def test_result_does_not_depend_on_thread_count(rng):
    p, t = pair("log_cosh_loss", (200_001,), np.float32, rng)
    x, y = ce_inputs(3000, 37, np.float32, rng, "labels")
    results = []
    try:
        for n in (1, 2, 3):
            nnkern.set_num_threads(n)
            results.append(
                (ops.log_cosh_loss(p, t), ops.mse_loss(p, t, "sum"), ops.cross_entropy(x, y),
                 ops.cross_entropy(x, y, "sum", label_smoothing=0.1))
            )
    finally:
        nnkern.set_num_threads(2)
    assert results[0] == results[1] == results[2]


def test_float32_sum_overflows_to_inf_quietly():
    big = np.full(4, 1e19, dtype=np.float32)  # each square fits in float32, their sum does not
    for impl in (ops, ref):
        assert impl.mse_loss(big, 0 * big, "sum") == np.inf
        assert impl.mse_loss(big, 0 * big, "mean") == np.float32(1e38)


# ---------------------------------------------------------------------------------------
# Bad input: same exception, same message, naming the argument, from ops and reference


def raises_same(exc, match, name, *args, **kw):
    """ops.NAME and reference.NAME both raise exc with one message that matches `match`."""
    msgs = []
    for impl in (ops, ref):
        with pytest.raises(exc, match=match) as info:
            getattr(impl, name)(*args, **kw)
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1]


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("suffix", ["", "_backward"])
def test_elementwise_bad_input(name, suffix, rng):
    fn = name + suffix
    p, t = pair(name, (3, 4), np.float64, rng)
    raises_same(TypeError, "^pred: .*dtype int64", fn, p.astype(np.int64), t)
    raises_same(TypeError, "^target: .*float32", fn, p, t.astype(np.float32))
    raises_same(TypeError, "^target: .*dtype bool", fn, p, t > 0.5)
    raises_same(ValueError, r"^target: shape \(4, 3\)", fn, p, t.T.copy())
    raises_same(ValueError, "^target: shape", fn, p, t[:, :2])
    raises_same(ValueError, "^reduction: .*'avg'", fn, p, t, "avg")
    raises_same(ValueError, "^reduction: ", fn, p, t, None)


def test_loss_specific_bad_input(rng):
    p, t = pair("binary_cross_entropy", (3, 4), np.float32, rng)
    for fn in ("binary_cross_entropy", "binary_cross_entropy_backward"):
        bad = p.copy()
        bad[1, 2] = 1.5
        bad[2, 0] = -0.25
        raises_same(ValueError, r"^pred: expected values in \[0, 1\], got 1.5 at flat index 6", fn, bad, t)
        bad_t = t.copy()
        bad_t.flat[10] = -1.0
        raises_same(ValueError, r"^target: expected values in \[0, 1\], got -1.0 at flat index 10", fn, p, bad_t)
    big = rng.uniform(0, 1, 50_000)
    big[41_234] = 1.0000001  # found by the kernel in a later block, on another thread
    raises_same(ValueError, "^pred: .* at flat index 41234", "binary_cross_entropy", big, big.clip(0, 1))
    for fn in ("huber_loss", "huber_loss_backward"):
        raises_same(ValueError, "^delta: must be > 0", fn, p, t, delta=0.0)
        raises_same(ValueError, "^delta: ", fn, p, t, delta=-1)
        raises_same(TypeError, "^delta: ", fn, p, t, delta="big")
    for fn in ("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward"):
        raises_same(ValueError, r"^pos_weight: expected shape \(4,\)", fn, p, t, pos_weight=np.ones(3, np.float32))
        raises_same(TypeError, "^pos_weight: ", fn, p, t, pos_weight=np.ones(4))
        raises_same(TypeError, "^pos_weight: ", fn, p, t, pos_weight=np.ones(4, int))


@pytest.mark.parametrize("fn", ["cross_entropy", "cross_entropy_backward"])
def test_cross_entropy_bad_input(fn, rng):
    x = rng.standard_normal((4, 3))
    y = np.array([0, 2, -100, 1])
    raises_same(ValueError, r"^target: class label 3 at index 1 is out of range \[0, 3\)", fn, x, np.array([0, 3, 1, 1]))
    raises_same(ValueError, "^target: class label -1 at index 3", fn, x, np.array([0, 1, 2, -1]))
    raises_same(ValueError, "^target: class label -100 at index 2", fn, x, y, ignore_index=-1)
    raises_same(ValueError, "^target: class label 5", fn, x[0], 5)
    raises_same(ValueError, r"^logits: expected .*shape \(2, 2, 3\)", fn, x.reshape(2, 2, 3), y)
    raises_same(ValueError, r"^logits: expected .*shape \(\)", fn, np.float64(1.0), 0)
    raises_same(TypeError, "^logits: .*int64", fn, x.astype(np.int64), y)
    raises_same(ValueError, r"^target: class labels must have shape \(4,\)", fn, x, y[:3])
    raises_same(ValueError, r"^target: class labels must have shape \(4,\)", fn, x, y.reshape(4, 1))
    raises_same(ValueError, "^target: class probabilities must have logits' shape", fn, x, np.ones((4, 2)))
    raises_same(TypeError, "^target: dtype float32 does not match", fn, x, np.ones((4, 3), np.float32))
    raises_same(TypeError, "^target: expected integer class labels", fn, x, y > 0)
    raises_same(ValueError, "^reduction: ", fn, x, y, "mean ")
    raises_same(ValueError, "^label_smoothing: must be <= 1", fn, x, y, label_smoothing=1.5)
    raises_same(ValueError, "^label_smoothing: must be >= 0", fn, x, y, label_smoothing=-0.1)
    raises_same(TypeError, "^ignore_index: expected an int", fn, x, y, ignore_index=1.0)


def test_core_rejects_inconsistent_buffers():
    """A direct call into _core with mismatched sizes raises instead of reading out of bounds."""
    from nnkern import _core

    with pytest.raises(ValueError, match="target"):
        _core.mse_loss(np.zeros(3), np.zeros(2), None)
    with pytest.raises(ValueError, match="logits"):
        _core.cross_entropy(np.zeros(6), np.zeros(2, np.int64), None, 2, 4, -100, 0.0)
    with pytest.raises(ValueError, match="pos_weight"):
        _core.binary_cross_entropy_with_logits(np.zeros(6), np.zeros(6), np.zeros(2), None, 3)
    with pytest.raises(ValueError):
        _core.binary_cross_entropy_with_logits(np.zeros(6), np.zeros(6), None, None, 0)
