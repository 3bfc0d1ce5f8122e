"""Optimizer updates, clipping and the max-norm constraint: ops vs the NumPy twins, 20-step
trajectories against torch.optim for every option combination, the nnkern.optim objects
(flat buffers, folded clipping, state_dict), bad input, EarlyStopping."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import DTYPES, TORCH_TOL, assert_close

from nnkern import _validate, ops, optim
from nnkern import reference as ref

STEPS = 20
SHAPE = (7, 13)

# Every option combination of each update (as the issue lists them); ids name them.
SGD_OPTS = [dict(momentum=0.0, weight_decay=wd) for wd in (0.0, 0.01)] + [
    dict(momentum=0.9, dampening=d, nesterov=n, weight_decay=wd)
    for d, n in ((0.0, False), (0.0, True), (0.1, False)) for wd in (0.0, 0.01)
]
RPROP_OPTS = [dict(etas=e, step_sizes=s) for e in ((0.5, 1.2), (0.3, 1.5)) for s in ((1e-6, 50.0), (1e-4, 0.05))]
RMSPROP_OPTS = [dict(centered=c, momentum=m, weight_decay=wd, alpha=a)
                for c in (False, True) for m in (0.0, 0.5) for wd in (0.0, 0.01) for a in (0.99, 0.4)]
ADAM_OPTS = [dict(amsgrad=a, decoupled=d, weight_decay=wd, beta1=b1)
             for a in (False, True) for d in (False, True) for wd in (0.0, 0.05) for b1 in (0.9, 0.3)]


def _id(opts):
    return ",".join(f"{k}={v}" for k, v in opts.items())


def _grads(rng, dtype, shape=SHAPE, steps=STEPS):
    return [rng.standard_normal(shape).astype(dtype) for _ in range(steps)]


# ---------------------------------------------------------------------------------------
# the functional updates: one trajectory per namespace


def _run(mod, kind, opts, p0, grads, lr):
    """A trajectory of `kind` steps with mod's kernel; returns (param, state arrays)."""
    p = p0.copy()
    z = [np.zeros_like(p) for _ in range(3)]
    for t, g in enumerate(grads, 1):
        if kind == "sgd":
            mod.sgd_step(p, g, z[0], t, lr, **opts)
        elif kind == "rprop":
            if t == 1:
                z[1][...] = lr
            mod.rprop_step(p, g, z[0], z[1], **opts)
        elif kind == "rmsprop":
            mod.rmsprop_step(p, g, z[0], t, lr=lr, momentum_buffer=z[1], grad_avg=z[2], **opts)
        else:
            mod.adam_step(p, g, z[0], z[1], t, lr=lr, max_exp_avg_sq=z[2], **opts)
    return p, z


ALL = ([("sgd", o) for o in SGD_OPTS] + [("rprop", o) for o in RPROP_OPTS]
       + [("rmsprop", o) for o in RMSPROP_OPTS] + [("adam", o) for o in ADAM_OPTS])
ALL_IDS = [f"{k}[{_id(o)}]" for k, o in ALL]


@pytest.mark.parametrize("kind,opts", ALL, ids=ALL_IDS)
def test_ops_match_twin_trajectory(rng, dtype, kind, opts):
    p0 = rng.standard_normal(SHAPE).astype(dtype)
    grads = _grads(rng, dtype)
    p1, z1 = _run(ops, kind, opts, p0, grads, 0.01)
    p2, z2 = _run(ref, kind, opts, p0, grads, 0.01)
    assert_close(p1, p2)
    for a, b in zip(z1, z2):
        assert_close(a, b)


def _torch_opt(torch, kind, opts, params, lr):
    o = dict(opts)
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr, **o)
    if kind == "rprop":
        return torch.optim.Rprop(params, lr=lr, **o)
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, **o)
    b1 = o.pop("beta1", 0.9)
    cls = torch.optim.AdamW if o.pop("decoupled", False) else torch.optim.Adam
    return cls(params, lr=lr, betas=(b1, 0.999), weight_decay=o.pop("weight_decay", 0.0), **o)


def _torch_run(torch, kind, opts, p0, grads, lr):
    p = torch.tensor(p0.copy(), requires_grad=True)
    opt = _torch_opt(torch, kind, opts, [p], lr)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    return p.detach().numpy()


@pytest.mark.parametrize("kind,opts", ALL, ids=ALL_IDS)
def test_trajectory_matches_torch(torch, rng, dtype, kind, opts):
    p0 = rng.standard_normal(SHAPE).astype(dtype)
    grads = _grads(rng, dtype)
    expected = _torch_run(torch, kind, opts, p0, grads, 0.01)
    p, _ = _run(ops, kind, opts, p0, grads, 0.01)
    assert_close(p, expected, **TORCH_TOL[dtype])


# ---------------------------------------------------------------------------------------
# the optimizer objects


def _object(kind, opts, params, lr, **kw):
    o = dict(opts)
    if kind == "sgd":
        if o.get("momentum", 0.0):
            return optim.Momentum(params, lr=lr, **o, **kw)
        return optim.SGD(params, lr=lr, **o, **kw)
    if kind == "rprop":
        return optim.RProp(params, lr=lr, **o, **kw)
    if kind == "rmsprop":
        return optim.RMSProp(params, lr=lr, **o, **kw)
    b1 = o.pop("beta1", 0.9)
    cls = optim.AdamW if o.pop("decoupled", False) else optim.Adam
    return cls(params, lr=lr, betas=(b1, 0.999), weight_decay=o.pop("weight_decay"), **o, **kw)


OBJ_SHAPES = [(6, 5), (5,), (1,), (3, 2, 4)]


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "separate"])
@pytest.mark.parametrize("kind,opts", ALL, ids=ALL_IDS)
def test_objects_match_torch(torch, rng, kind, opts, flat):
    dtype = np.float64  # tight: any semantic slip shows
    p0 = [rng.standard_normal(s) for s in OBJ_SHAPES]
    grads = [[rng.standard_normal(s) for s in OBJ_SHAPES] for _ in range(STEPS)]
    params = optim.flatten(p0) if flat else [p.copy() for p in p0]
    opt = _object(kind, opts, params, 0.01)
    assert (opt._flat is not None) == flat
    tp = [torch.tensor(p.copy(), requires_grad=True) for p in p0]
    topt = _torch_opt(torch, kind, opts, tp, 0.01)
    for gs in grads:
        opt.step(gs)
        for t, g in zip(tp, gs):
            t.grad = torch.tensor(g)
        topt.step()
    for p, t in zip(params, tp):
        assert_close(p, t.detach().numpy(), **TORCH_TOL[dtype])


@pytest.mark.parametrize("kind", ["sgd", "rprop", "rmsprop", "adam"])
def test_clipping_folded_into_the_step_matches_torch(torch, rng, kind):
    opts = {"sgd": SGD_OPTS[3], "rprop": RPROP_OPTS[0], "rmsprop": RMSPROP_OPTS[5], "adam": ADAM_OPTS[5]}[kind]
    p0 = [rng.standard_normal(s).astype(np.float32) for s in OBJ_SHAPES]
    params = optim.flatten(p0)
    opt = _object(kind, opts, params, 0.01, clip_norm=0.5)
    tp = [torch.tensor(p.copy(), requires_grad=True) for p in p0]
    topt = _torch_opt(torch, kind, opts, tp, 0.01)
    for _ in range(STEPS):
        opt.zero_grad()
        for g in opt.grads:  # gradients written straight into the optimizer's flat buffer
            g[...] = rng.standard_normal(g.shape)
        for t, g in zip(tp, opt.grads):
            t.grad = torch.tensor(g.copy())
        before = [g.copy() for g in opt.grads]
        total = opt.step()
        expected = torch.nn.utils.clip_grad_norm_(tp, 0.5)
        topt.step()
        assert total.dtype == np.float32
        assert_close(total, expected.numpy(), **TORCH_TOL[np.float32])
        for g, b in zip(opt.grads, before):  # the folded clip reads the gradients only
            np.testing.assert_array_equal(g, b)
    for p, t in zip(params, tp):
        assert_close(p, t.detach().numpy(), rtol=1e-4, atol=2e-5)


def test_flat_and_separate_give_identical_bits(rng):
    p0 = [rng.standard_normal(s).astype(np.float32) for s in OBJ_SHAPES]
    grads = [[rng.standard_normal(s).astype(np.float32) for s in OBJ_SHAPES] for _ in range(5)]
    a, b = optim.flatten(p0), [p.copy() for p in p0]
    oa, ob = optim.Adam(a, lr=0.1, amsgrad=True), optim.Adam(b, lr=0.1, amsgrad=True)
    for gs in grads:
        oa.step(optim.flatten(gs))  # flat params, flat grads: one segment
        ob.step(gs)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_state_dict_round_trip(rng):
    p0 = [rng.standard_normal(s) for s in OBJ_SHAPES]
    grads = [[rng.standard_normal(s) for s in OBJ_SHAPES] for _ in range(6)]
    a = optim.flatten(p0)
    oa = optim.Adam(a, lr=0.05, amsgrad=True)
    for gs in grads[:3]:
        oa.step(gs)
    sd = oa.state_dict()
    assert sorted(sd["state"][0]) == ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"]
    assert sd["state"][0]["step"] == 3 and sd["param_groups"][0]["params"] == [0, 1, 2, 3]
    b = [p.copy() for p in a]
    ob = optim.Adam(b, lr=0.9)
    with pytest.raises(ValueError, match="max_exp_avg_sq"):
        ob.load_state_dict(sd)  # ob has no amsgrad state...
    ob = optim.Adam(b, lr=0.9, amsgrad=True)
    ob.load_state_dict(sd)
    assert ob.lr == 0.05 and ob.step_count == 3
    sd["state"][0]["exp_avg"][...] = 123.0  # a copy: the optimizer's state is its own
    assert not np.any(oa.state[0]["exp_avg"] == 123.0)
    for gs in grads[3:]:
        oa.step(gs)
        ob.step(gs)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_sgd_state_dict_keeps_momentum(torch, rng):
    p0 = [rng.standard_normal((4, 3))]
    grads = [[rng.standard_normal((4, 3))] for _ in range(4)]
    a = [p0[0].copy()]
    oa = optim.Momentum(a, lr=0.1, nesterov=True)
    oa.step(grads[0])
    ob = optim.Momentum([a[0].copy()], lr=0.1, nesterov=True)
    ob.load_state_dict(oa.state_dict())
    for gs in grads[1:]:
        oa.step(gs)
        ob.step(gs)
    np.testing.assert_array_equal(a[0], ob.params[0])


def test_optimizer_nan_gradient_changes_nothing(rng):
    params = optim.flatten([rng.standard_normal((3, 4)), rng.standard_normal(5)])
    for clip in (None, 1.0):
        opt = optim.Adam(params, lr=0.1, clip_norm=clip)
        opt.step([np.ones((3, 4)), np.ones(5)])
        before = [p.copy() for p in params] + [opt.state[1]["exp_avg"].copy()]
        bad = [np.ones((3, 4)), np.array([0, 0, np.nan, 0, 0.0])]
        with pytest.raises(ValueError, match=r"grads"):
            opt.step(bad)
        with pytest.raises(ValueError, match=r"grads\[1\]: non-finite value nan at flat index 2" if clip is None
                           else "grads: the total norm"):
            opt.step(optim.flatten(bad))
        for p, b in zip(params + [opt.state[1]["exp_avg"]], before):
            np.testing.assert_array_equal(p, b)
        assert opt.step_count == 1


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.Momentum(ps, lr=0.1, nesterov=True),
    lambda ps: optim.RProp(ps),
    lambda ps: optim.RMSProp(ps, momentum=0.5, centered=True),
    lambda ps: optim.Adam(ps, amsgrad=True),
    lambda ps: optim.AdamW(ps),
], ids=["sgd", "momentum", "rprop", "rmsprop", "adam", "adamw"])
@pytest.mark.parametrize("flat", [True, False], ids=["flat", "list"])
@pytest.mark.parametrize("first", [True, False], ids=["first-step", "later-step"])
def test_optimizer_large_nonfinite_gradient_changes_nothing(rng, make, flat, first):
    # Sizes past the kernels' parallel grain, so the finiteness scan and the update run on
    # several threads; the bad value sits in the last thread's share (and in the first).
    shapes = [(300, 200), (7,), (40_001,)]
    params = [rng.standard_normal(s) for s in shapes]
    if flat:
        params = optim.flatten(params)
    opt = make(params)
    good = [rng.standard_normal(s) for s in shapes]
    if not first:
        opt.step(good)
    state = lambda: [p.copy() for p in opt.params] + [a.copy() for s in opt.state for a in s.values()]
    before, count = state(), opt.step_count
    for k, i, bad in ((2, 40_000, np.nan), (0, 5, np.inf), (2, 17, -np.inf)):
        g = [x.copy() for x in good]
        g[k].flat[i] = bad
        with pytest.raises(ValueError, match=rf"^grads\[{k}\]: non-finite value {bad} at flat index {i}"):
            opt.step(g)
        for a, b in zip(state(), before):
            np.testing.assert_array_equal(a, b)
        assert opt.step_count == count
    opt.step(good)  # and the optimizer still works, from where it was
    assert opt.step_count == count + 1


@pytest.mark.parametrize("name", ["sgd_step", "rprop_step", "rmsprop_step", "adam_step"])
def test_large_nonfinite_gradient_changes_nothing_ops(rng, name):
    n = 200_000
    p, g = rng.standard_normal(n), rng.standard_normal(n)
    g[n - 3] = np.nan
    s = [np.abs(rng.standard_normal(n)) for _ in range(3)]
    args = {"sgd_step": (p, g, s[0], 2, 0.1), "rprop_step": (p, g, s[0], s[1]),
            "rmsprop_step": (p, g, s[0], 2), "adam_step": (p, g, s[0], s[1], 2)}[name]
    kw = {"sgd_step": {"momentum": 0.9}}.get(name, {})
    before = [a.copy() for a in (p, *s)]
    with pytest.raises(ValueError, match=rf"^grad: non-finite value nan at flat index {n - 3}"):
        getattr(ops, name)(*args, **kw)
    for a, b in zip((p, *s), before):
        np.testing.assert_array_equal(a, b)


def test_optimizer_rejects_bad_arguments(rng):
    p = [np.zeros((3, 4))]
    with pytest.raises(ValueError, match="^lr: "):
        optim.Adam(p, lr=-1.0)
    with pytest.raises(ValueError, match=r"^betas\[1\]: "):
        optim.Adam(p, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="^nesterov: "):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="^momentum: "):
        optim.Momentum(p, lr=0.1, momentum=0.0)
    with pytest.raises(ValueError, match="^etas: "):
        optim.RProp(p, etas=(1.5, 1.2))
    with pytest.raises(ValueError, match=r"^params\[0\]: must be C-contiguous"):
        optim.SGD([np.zeros((4, 6))[:, ::2]], lr=0.1)
    with pytest.raises(TypeError, match=r"^params\[1\]: .*float32"):
        optim.SGD([np.zeros(3), np.zeros(3, np.float32)], lr=0.1)
    opt = optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match=r"^grads\[0\]: shape \(4, 3\)"):
        opt.step([np.zeros((4, 3))])
    with pytest.raises(ValueError, match="^grads: expected 1 arrays"):
        opt.step([np.zeros((3, 4))] * 2)
    opt.lr = -0.5  # a schedule that goes wrong is caught at the next step
    with pytest.raises(ValueError, match="^lr: "):
        opt.step([np.ones((3, 4))])
    np.testing.assert_array_equal(p[0], 0.0)
    opt.lr = 0.1
    with pytest.raises(ValueError, match="^momentum: was 0"):
        opt.momentum = 0.9
        opt.step([np.ones((3, 4))])


# ---------------------------------------------------------------------------------------
# clipping and the max-norm constraint


GRAD_SHAPES = [(3, 4), (1,), (100,), (70_001,)]  # the last spans several reduction blocks


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e6])
def test_clip_grad_norm_twins_and_torch(torch, rng, dtype, norm_type, max_norm):
    grads = [rng.standard_normal(s).astype(dtype) for s in GRAD_SHAPES]
    g1, g2 = [g.copy() for g in grads], [g.copy() for g in grads]
    n1 = ops.clip_grad_norm(g1, max_norm, norm_type)
    n2 = ref.clip_grad_norm(g2, max_norm, norm_type)
    assert type(n1) is np.dtype(dtype).type and type(n2) is np.dtype(dtype).type
    assert_close(n1, n2)
    tg = [torch.tensor(g.copy(), requires_grad=True) for g in grads]
    for t in tg:
        t.grad = t.detach().clone()
    nt = torch.nn.utils.clip_grad_norm_(tg, max_norm, norm_type)
    assert_close(n1, nt.numpy(), **TORCH_TOL[dtype])
    for a, b, t in zip(g1, g2, tg):
        assert_close(a, b)
        assert_close(a, t.grad.numpy(), **TORCH_TOL[dtype])


def test_clip_grad_norm_strided_and_single_array(rng):
    base = rng.standard_normal((6, 8))
    view = base[:, ::2]
    expected = view.copy()
    n_ref = ref.clip_grad_norm(expected, 1.0)
    n = ops.clip_grad_norm(view, 1.0)  # a single strided array is updated through a copy
    assert_close(n, n_ref)
    assert_close(base[:, ::2], expected)
    assert ops.clip_grad_norm([], 1.0) == 0.0


@pytest.mark.parametrize("mod", [ops, ref], ids=["ops", "reference"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_nonfinite(torch, mod, bad):
    grads = [np.ones(5), np.array([1.0, bad, 2.0])]
    keep = [g.copy() for g in grads]
    with pytest.raises(_validate.NonFiniteError, match=r"^grads: the total norm of order 2.0 .* (nan|inf)"):
        mod.clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):  # torch users' except RuntimeError still catches it
        mod.clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    for g, k in zip(grads, keep):
        np.testing.assert_array_equal(g, k)
    # without the error: torch's behaviour (scaled by NaN, or by 0 for an inf norm)
    tg = [torch.tensor(g.copy(), requires_grad=True) for g in grads]
    for t in tg:
        t.grad = t.detach().clone()
    nt = torch.nn.utils.clip_grad_norm_(tg, 1.0)
    n = mod.clip_grad_norm(grads, 1.0)
    np.testing.assert_array_equal(np.float64(n), nt.numpy())
    for g, t in zip(grads, tg):
        np.testing.assert_array_equal(g, t.grad.numpy())


def test_clip_grad_value_twins_and_torch(torch, rng, dtype):
    grads = [rng.standard_normal(s).astype(dtype) * 2 for s in GRAD_SHAPES]
    grads[0][0, 0] = np.nan
    g1, g2 = [g.copy() for g in grads], [g.copy() for g in grads]
    ops.clip_grad_value(g1, 0.7)
    ref.clip_grad_value(g2, 0.7)
    tg = [torch.tensor(g.copy(), requires_grad=True) for g in grads]
    for t in tg:
        t.grad = t.detach().clone()
    torch.nn.utils.clip_grad_value_(tg, 0.7)
    for a, b, t in zip(g1, g2, tg):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, t.grad.numpy())


@pytest.mark.parametrize("shape,axis", [((20, 30), -1), ((20, 30), 0), ((4, 5, 6), 1), ((3, 700), None),
                                        ((1, 1), 0), ((300, 1), -1)])
def test_max_norm_constraint(torch, rng, dtype, shape, axis):
    W = (rng.standard_normal(shape) * 2).astype(dtype)
    W1, W2 = W.copy(), W.copy()
    ops.max_norm_constraint(W1, 3.0, axis)
    ref.max_norm_constraint(W2, 3.0, axis)
    assert_close(W1, W2)
    if axis is None:
        assert np.linalg.norm(W1.astype(np.float64)) <= 3.0 * (1 + 1e-6)
        return
    norms = np.sqrt(np.sum(W1.astype(np.float64) ** 2, axis=axis))
    assert np.all(norms <= 3.0 * (1 + 1e-6))
    # torch.renorm(dim) constrains the sub-tensors along dim, i.e. reduces over the others
    ax = axis % W.ndim
    if W.ndim == 2:
        expected = torch.renorm(torch.tensor(W), 2, 1 - ax, 3.0).numpy()
        assert_close(W1, expected, **TORCH_TOL[dtype])


def test_updates_through_strided_views(rng):
    base = rng.standard_normal((5, 12))
    view = base[:, ::3]
    m, v2 = np.zeros((12, 5)).T, np.zeros((5, 4))
    g = rng.standard_normal((5, 4))
    exp_p, exp_m, exp_v = view.copy(), np.zeros((5, 4)), np.zeros((5, 4))
    ref.adam_step(exp_p, g, exp_m, exp_v, 1, lr=0.1)
    ops.adam_step(view, g, m[:, :4], v2, 1, lr=0.1)
    assert_close(base[:, ::3], exp_p)
    assert_close(m[:, :4], exp_m)
    assert_close(v2, exp_v)


def test_empty_and_one_element(dtype):
    for shape in ((0,), (1,), ()):
        p, g = np.ones(shape, dtype), np.full(shape, 0.5, dtype)
        a, b = [np.zeros(shape, dtype) for _ in range(2)]
        pr, ar, br = p.copy(), a.copy(), b.copy()
        ops.adam_step(p, g, a, b, 1)
        ref.adam_step(pr, g, ar, br, 1)
        assert p.shape == shape
        assert_close(p, pr)


# ---------------------------------------------------------------------------------------
# bad input: the same error from both namespaces, nothing modified


def f64(*s):
    return np.full(s, 0.5)


def _nan_grad():
    g = f64(3, 4)
    g[1, 2] = np.nan
    return g


BAD = [
    ("sgd-lr-negative", "sgd_step", lambda: ((f64(3, 4), f64(3, 4), None, 1, -0.1), {}), ValueError, r"^lr: "),
    ("sgd-grad-shape", "sgd_step", lambda: ((f64(3, 4), f64(4, 3), None, 1, 0.1), {}), ValueError,
     r"^grad: shape \(4, 3\) .*param.*\(3, 4\)"),
    ("sgd-grad-dtype", "sgd_step", lambda: ((f64(3, 4), f64(3, 4).astype(np.float32), None, 1, 0.1), {}),
     TypeError, r"^grad: dtype float32"),
    ("sgd-grad-nan", "sgd_step", lambda: ((f64(3, 4), _nan_grad(), None, 1, 0.1), {}), ValueError,
     r"^grad: non-finite value nan at flat index 6"),
    ("sgd-velocity-missing", "sgd_step", lambda: ((f64(3, 4), f64(3, 4), None, 1, 0.1), {"momentum": 0.9}),
     ValueError, r"^velocity: "),
    ("sgd-velocity-shape", "sgd_step", lambda: ((f64(3, 4), f64(3, 4), f64(12), 1, 0.1), {"momentum": 0.9}),
     ValueError, r"^velocity: shape \(12,\)"),
    ("sgd-nesterov-no-momentum", "sgd_step", lambda: ((f64(3, 4), f64(3, 4), None, 1, 0.1), {"nesterov": True}),
     ValueError, r"^nesterov: "),
    ("sgd-step-zero", "sgd_step", lambda: ((f64(3, 4), f64(3, 4), None, 0, 0.1), {}), ValueError, r"^step: "),
    ("sgd-step-float", "sgd_step", lambda: ((f64(3, 4), f64(3, 4), None, 1.0, 0.1), {}), TypeError, r"^step: "),
    ("sgd-param-list", "sgd_step", lambda: (([0.5, 0.5], [0.1, 0.1], None, 1, 0.1), {}), TypeError, r"^param: "),
    ("sgd-param-int", "sgd_step", lambda: ((np.ones(3, np.int64), f64(3), None, 1, 0.1), {}), TypeError,
     r"^param: .*int64"),
    ("sgd-param-read-only", "sgd_step", lambda: ((_ro(f64(3)), f64(3), None, 1, 0.1), {}), ValueError,
     r"^param: .*read-only"),
    ("rprop-etas", "rprop_step", lambda: ((f64(3), f64(3), f64(3), f64(3)), {"etas": (0.5, 0.9)}), ValueError,
     r"^etas: "),
    ("rprop-etas-type", "rprop_step", lambda: ((f64(3), f64(3), f64(3), f64(3)), {"etas": 0.5}), TypeError,
     r"^etas: "),
    ("rprop-step_sizes", "rprop_step", lambda: ((f64(3), f64(3), f64(3), f64(3)), {"step_sizes": (1.0, 0.1)}),
     ValueError, r"^step_sizes: "),
    ("rprop-prev-shape", "rprop_step", lambda: ((f64(3), f64(3), f64(4), f64(3)), {}), ValueError, r"^prev_grad: "),
    ("rprop-nan", "rprop_step", lambda: ((f64(3, 4), _nan_grad(), f64(3, 4), f64(3, 4)), {}), ValueError,
     r"^grad: non-finite"),
    ("rmsprop-alpha", "rmsprop_step", lambda: ((f64(3), f64(3), f64(3), 1), {"alpha": 1.5}), ValueError,
     r"^alpha: "),
    ("rmsprop-lr", "rmsprop_step", lambda: ((f64(3), f64(3), f64(3), 1), {"lr": -1}), ValueError, r"^lr: "),
    ("rmsprop-centered-missing", "rmsprop_step", lambda: ((f64(3), f64(3), f64(3), 1), {"centered": True}),
     ValueError, r"^grad_avg: "),
    ("rmsprop-momentum-missing", "rmsprop_step", lambda: ((f64(3), f64(3), f64(3), 1), {"momentum": 0.5}),
     ValueError, r"^momentum_buffer: "),
    ("rmsprop-square-f32", "rmsprop_step", lambda: ((f64(3), f64(3), f64(3).astype(np.float32), 1), {}),
     TypeError, r"^square_avg: "),
    ("adam-beta1", "adam_step", lambda: ((f64(3), f64(3), f64(3), f64(3), 1), {"beta1": 1.0}), ValueError,
     r"^beta1: "),
    ("adam-beta2-nan", "adam_step", lambda: ((f64(3), f64(3), f64(3), f64(3), 1), {"beta2": np.nan}), ValueError,
     r"^beta2: .*finite"),
    ("adam-eps", "adam_step", lambda: ((f64(3), f64(3), f64(3), f64(3), 1), {"eps": -1e-8}), ValueError,
     r"^eps: "),
    ("adam-amsgrad-missing", "adam_step", lambda: ((f64(3), f64(3), f64(3), f64(3), 1), {"amsgrad": True}),
     ValueError, r"^max_exp_avg_sq: "),
    ("adam-decoupled-type", "adam_step", lambda: ((f64(3), f64(3), f64(3), f64(3), 1), {"decoupled": 1}),
     TypeError, r"^decoupled: "),
    ("adam-exp_avg_sq-shape", "adam_step", lambda: ((f64(3), f64(3), f64(3), f64(1, 3), 1), {}), ValueError,
     r"^exp_avg_sq: "),
    ("adam-inf-grad", "adam_step", lambda: ((f64(3), np.array([0.0, np.inf, 1.0]), f64(3), f64(3), 1), {}),
     ValueError, r"^grad: non-finite value inf at flat index 1"),
    ("clip-norm-negative", "clip_grad_norm", lambda: (([f64(3)], -1.0), {}), ValueError, r"^max_norm: "),
    ("clip-norm-type", "clip_grad_norm", lambda: (([f64(3)], 1.0), {"norm_type": 0}), ValueError, r"^norm_type: "),
    ("clip-norm-mixed", "clip_grad_norm", lambda: (([f64(3), f64(3).astype(np.float32)], 1.0), {}), TypeError,
     r"^grads\[1\]: "),
    ("clip-norm-tuple-item", "clip_grad_norm", lambda: (([f64(3), [1.0]], 1.0), {}), TypeError, r"^grads\[1\]: "),
    ("clip-value-negative", "clip_grad_value", lambda: (([f64(3)], -1.0), {}), ValueError, r"^clip_value: "),
    ("clip-value-str", "clip_grad_value", lambda: (("abc", 1.0), {}), TypeError, r"^grads: "),
    ("max-norm-zero", "max_norm_constraint", lambda: ((f64(3, 4), 0.0), {}), ValueError, r"^max_norm: "),
    ("max-norm-axis", "max_norm_constraint", lambda: ((f64(3, 4), 1.0, 2), {}), ValueError, r"^axis: "),
    ("max-norm-int", "max_norm_constraint", lambda: ((np.ones((3, 4), np.int32), 1.0), {}), TypeError, r"^W: "),
]


def _ro(a):
    a.flags.writeable = False
    return a


def _bad_params():
    return [pytest.param(name, make, exc, match, id=cid) for cid, name, make, exc, match in BAD]


@pytest.mark.parametrize("name,make,exc,match", _bad_params())
def test_bad_input_same_error_nothing_modified(name, make, exc, match):
    errors = []
    for mod in (ops, ref):
        args, kwargs = make()
        arrays = [a for a in list(args) + list(kwargs.values()) if isinstance(a, np.ndarray)]
        arrays += [a for x in args if isinstance(x, list) for a in x if isinstance(a, np.ndarray)]
        before = [a.copy() for a in arrays]
        with pytest.raises(exc, match=match) as info:
            getattr(mod, name)(*args, **kwargs)
        errors.append(info.value)
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a, b)
    assert type(errors[0]) is type(errors[1]) and str(errors[0]) == str(errors[1])


# ---------------------------------------------------------------------------------------
# EarlyStopping


def test_early_stopping_min_mode_restores_best():
    W = np.zeros(3)
    es = optim.EarlyStopping("val_loss", patience=2, min_delta=0.01, restore_best=True)
    losses = [1.0, 0.5, 0.495, 0.6, 0.7, 0.1]
    stops = []
    for epoch, loss in enumerate(losses):
        W[...] = epoch
        stops.append(es.update({"val_loss": loss, "acc": 0.0}, [W]))
        if stops[-1]:
            break
    # 0.495 does not beat 0.5 by more than min_delta: epochs 2, 3, 4 wait; patience 2 stops at 4
    assert stops == [False, False, False, False, True]
    assert es.best == 0.5 and es.best_epoch == 1 and es.stopped_epoch == 4 and es.should_stop
    np.testing.assert_array_equal(W, 1.0)


def test_early_stopping_max_mode_and_nan():
    es = optim.EarlyStopping("acc", patience=0, mode="max")
    assert not es(0.5)
    assert not es(0.6)
    assert es(float("nan"))  # NaN never improves
    es.reset()
    assert not es.should_stop and es.best == -math.inf


def test_early_stopping_bad_arguments():
    with pytest.raises(ValueError, match="^mode: "):
        optim.EarlyStopping(mode="lowest")
    with pytest.raises(ValueError, match="^patience: "):
        optim.EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="^patience: "):
        optim.EarlyStopping(patience=1.5)
    with pytest.raises(KeyError, match="val_loss"):
        optim.EarlyStopping().update({"loss": 1.0})
    with pytest.raises(ValueError, match="^params: "):
        optim.EarlyStopping(restore_best=True).update(1.0)


def test_fits_an_nn_model_with_flat_parameters_and_early_stopping():
    """nnkern.nn.fit drives an nnkern.optim optimizer over Module.flatten_parameters()'s
    views: one segment per step (params and grads both flat), and EarlyStopping restores."""
    nn = pytest.importorskip("nnkern.nn")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype(np.float32)
    y = (x @ rng.standard_normal((8, 1)) + 0.1).astype(np.float32)
    model = nn.Sequential(nn.Dense(8, 16, seed=1), nn.Tanh(), nn.Dense(16, 1, seed=2)).flatten_parameters()
    params = model.parameters()
    opt = optim.Adam(params, lr=0.01, clip_norm=5.0)
    assert opt._flat is not None and optim.flat_buffer(model.gradients()) is not None
    stopper = optim.EarlyStopping("loss", patience=3, restore_best=True)
    hist = nn.fit(model, nn.MSELoss(), opt, (x, y), epochs=40, batch_size=32, callbacks=[stopper],
                  progress=False, seed=0)
    assert hist["loss"][-1] < hist["loss"][0] / 5
    assert opt.step_count == 8 * hist.epochs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nonfinite_scan_finds_every_position(dtype):
    # the scan runs a cache line at a time with a scalar tail, in blocks of 65,536 values:
    # a bad value at each edge of those is found, and the first of several is reported
    from nnkern import _core
    n = 3 * 65_536 + 21
    for i in (0, 7, 15, 16, 65_535, 65_536, 131_071, n - 22, n - 21, n - 1):
        g = np.zeros(n, dtype)
        g[i] = np.inf if i % 2 else np.nan
        assert _core.first_nonfinite([g[:0], g]) == (1, i)
        g[n - 1] = np.nan
        assert _core.first_nonfinite([g]) == (0, i)
    assert _core.first_nonfinite([np.zeros(n, dtype), np.ones(5, dtype)]) is None
