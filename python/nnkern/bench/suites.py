"""The benchmark cases. Importing this module registers them (order = table order).

Fairness rules every case follows:
- inputs are made once, outside the timed region; torch tensors are torch.from_numpy views
  of the very same arrays;
- every implementation allocates its outputs on each call (nobody gets out=), except in the
  "(out=)" cases, where all three write into their own preallocated output: those show the
  kernels without the allocator (a fresh 64 MiB output costs torch far more than NumPy, see
  the memcpy+alloc row);
- "fwd+bwd" is the forward kernel followed by the backward kernel with a fixed upstream
  gradient dy. For torch, elementwise and softmax backwards call the ATen backward kernel
  that autograd itself dispatches to (torch.ops.aten.sigmoid_backward, ...), like nnkern's
  explicit NAME_backward call and without autograd's graph bookkeeping; dense and the losses
  use autograd (.backward()), the way they are used in PyTorch (the bookkeeping is small next
  to a GEMM or a 16M-element pass).

Throughput: GEMM-bound cases report GFLOP/s (2*N*I*O per matrix product); memory-bound ones
report GB/s counting the minimum traffic, every input read once plus every output written
once (so a kernel at memcpy speed shows the memcpy row's GB/s).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import ops
from .. import reference as ref
from .harness import register, require, torch_module

F32 = np.float32
M16 = 1 << 24  # "16M" elements: 64 MiB of float32


def _rng(seed=0):
    return np.random.default_rng(seed)


def _randn(shape, seed=0):
    return _rng(seed).standard_normal(shape, dtype=F32)


def _first(g):
    """A backward's gradient w.r.t. its first argument (it may also return others)."""
    return g[0] if isinstance(g, (tuple, list)) else g


def _size(shape):
    return "x".join(map(str, shape))


# --------------------------------------------------------------------------------------------
# softmax / log_softmax (axis=-1)


def _softmax_fwd(name, shape, out=False):
    x = _randn(shape)
    op, twin = getattr(ops, name), getattr(ref, name)
    t = torch_module()
    tf = None
    if out:  # every implementation writes into its own preallocated output
        yn, yr, yt = np.empty_like(x), np.empty_like(x), np.empty_like(x)
        if t is not None:
            xt, ytt = t.from_numpy(x), t.from_numpy(yt)
            aten_out = getattr(t.ops.aten, "_" + name).out
            tf = lambda: aten_out(xt, -1, False, out=ytt)  # noqa: E731
        return {"nnkern": lambda: op(x, axis=-1, out=yn), "numpy": lambda: twin(x, axis=-1, out=yr),
                "torch": tf, "notes": f"all three write into a preallocated out=; torch: aten._{name}.out"}
    if t is not None:
        xt = t.from_numpy(x)
        tfn = getattr(t, name)
        tf = lambda: tfn(xt, dim=-1)  # noqa: E731
    return {"nnkern": lambda: op(x, axis=-1), "numpy": lambda: twin(x, axis=-1), "torch": tf}


def _softmax_bwd(name, shape):
    x, dy = _randn(shape, 1), _randn(shape, 2)
    y = getattr(ref, name)(x, axis=-1)
    op, twin = getattr(ops, name + "_backward"), getattr(ref, name + "_backward")
    t = torch_module()
    tf = None
    if t is not None:
        yt, dyt = t.from_numpy(y), t.from_numpy(dy)
        aten = getattr(t.ops.aten, f"_{name}_backward_data")
        tf = lambda: aten(dyt, yt, -1, t.float32)  # noqa: E731
    return {
        "nnkern": lambda: op(dy, y, axis=-1),
        "numpy": lambda: twin(dy, y, axis=-1),
        "torch": tf,
        "notes": f"torch: aten._{name}_backward_data (autograd's softmax backward kernel)",
    }


for _name in ("softmax", "log_softmax"):
    for _shape in ((4096, 1000), (256, 32000)):
        register(f"{_name}/fwd", _size(_shape), bytes=2 * 4 * np.prod(_shape))(
            partial(_softmax_fwd, _name, _shape))
for _name in ("softmax", "log_softmax"):
    _shape = (4096, 1000)
    register(f"{_name}/bwd", _size(_shape), bytes=3 * 4 * np.prod(_shape))(
        partial(_softmax_bwd, _name, _shape))
# The same with out= for everyone: the kernels without the cost of allocating the output.
for _name in ("softmax", "log_softmax"):
    _shape = (4096, 1000)
    register(f"{_name}/fwd(out=)", _size(_shape), bytes=2 * 4 * np.prod(_shape))(
        partial(_softmax_fwd, _name, _shape, True))


# --------------------------------------------------------------------------------------------
# losses (nnkern.ops.losses: skipped with a note until the kernels exist)


def _torch_loss_fwd_bwd(t, loss_fn, pred, *rest):
    """torch: loss_fn(pred, ...) then .backward(); returns (loss, dL/dpred)."""
    pt = t.from_numpy(pred).requires_grad_()
    rt = [t.from_numpy(r) for r in rest]

    def f():
        pt.grad = None
        loss = loss_fn(pt, *rt)
        loss.backward()
        return loss, pt.grad

    return f


def _cross_entropy(shape, backward):
    require("cross_entropy", *(["cross_entropy_backward"] if backward else []))
    N, C = shape
    logits = _randn(shape)
    labels = _rng(1).integers(0, C, size=N, dtype=np.int64)
    t = torch_module()
    if backward:
        def nk():
            return ops.cross_entropy(logits, labels), _first(ops.cross_entropy_backward(logits, labels))

        def tw():
            return ref.cross_entropy(logits, labels), _first(ref.cross_entropy_backward(logits, labels))

        tf = None
        if t is not None:
            tf = _torch_loss_fwd_bwd(t, t.nn.functional.cross_entropy, logits, labels)
        return {"nnkern": nk, "numpy": tw, "torch": tf,
                "notes": "mean reduction; torch: F.cross_entropy(...).backward()"}
    tf = None
    if t is not None:
        lt, yt = t.from_numpy(logits), t.from_numpy(labels)
        tf = lambda: t.nn.functional.cross_entropy(lt, yt)  # noqa: E731
    return {"nnkern": lambda: ops.cross_entropy(logits, labels),
            "numpy": lambda: ref.cross_entropy(logits, labels), "torch": tf,
            "notes": "mean reduction"}


def _pointwise_loss_fwd_bwd(name, torch_name, n, target_kind):
    require(name, name + "_backward")
    pred = _randn(n, 1)
    target = _randn(n, 2) if target_kind == "normal" else _rng(2).random(n, dtype=F32)
    op, opb = getattr(ops, name), getattr(ops, name + "_backward")
    tw, twb = getattr(ref, name), getattr(ref, name + "_backward")
    t = torch_module()
    tf = None
    if t is not None:
        tf = _torch_loss_fwd_bwd(t, getattr(t.nn.functional, torch_name), pred, target)
    return {
        "nnkern": lambda: (op(pred, target), _first(opb(pred, target))),
        "numpy": lambda: (tw(pred, target), _first(twb(pred, target))),
        "torch": tf,
        "notes": f"mean reduction; torch: F.{torch_name}(...).backward()",
    }


_ce = (4096, 1000)
_ce_bytes = 4 * np.prod(_ce) + 8 * _ce[0]  # logits + int64 labels, read once
register("cross_entropy/fwd", _size(_ce), bytes=_ce_bytes)(partial(_cross_entropy, _ce, False))
# fwd reads logits+labels; bwd reads them again and writes dlogits
register("cross_entropy/fwd+bwd", _size(_ce), bytes=2 * _ce_bytes + 4 * np.prod(_ce))(
    partial(_cross_entropy, _ce, True))
# fwd reads pred+target; bwd reads both again and writes dpred: 5 passes of 64 MiB
register("mse_loss/fwd+bwd", "16M", bytes=5 * 4 * M16)(
    partial(_pointwise_loss_fwd_bwd, "mse_loss", "mse_loss", M16, "normal"))
register("bce_with_logits/fwd+bwd", "16M", bytes=5 * 4 * M16)(
    partial(_pointwise_loss_fwd_bwd, "binary_cross_entropy_with_logits",
            "binary_cross_entropy_with_logits", M16, "prob"))


# --------------------------------------------------------------------------------------------
# dense (fully connected): y = x W^T + b


def _dense(N, I, O, backward):
    x, W, b, dy = _randn((N, I), 1), _randn((O, I), 2) / np.sqrt(I), _randn(O, 3), _randn((N, O), 4)
    W = W.astype(F32)
    t = torch_module()
    if not backward:
        tf = None
        if t is not None:
            xt, Wt, bt = t.from_numpy(x), t.from_numpy(W), t.from_numpy(b)
            tf = lambda: t.nn.functional.linear(xt, Wt, bt)  # noqa: E731
        return {"nnkern": lambda: ops.dense(x, W, b), "numpy": lambda: ref.dense(x, W, b),
                "torch": tf}

    def nk():
        return (ops.dense(x, W, b), *ops.dense_backward(dy, x, W))

    def tw():
        return (ref.dense(x, W, b), *ref.dense_backward(dy, x, W))

    tf = None
    if t is not None:
        xt, Wt, bt = (t.from_numpy(a).requires_grad_() for a in (x, W, b))
        dyt = t.from_numpy(dy)

        def tf():
            xt.grad = Wt.grad = bt.grad = None
            y = t.nn.functional.linear(xt, Wt, bt)
            y.backward(dyt)
            return y, xt.grad, Wt.grad, bt.grad

    return {"nnkern": nk, "numpy": tw, "torch": tf,
            "notes": "returns y, dx, dW, db; torch: F.linear(...).backward(dy)"}


_N, _I, _O = 512, 1024, 1024
register("dense/fwd", f"{_N}x{_I}->{_O}", flops=2 * _N * _I * _O)(partial(_dense, _N, _I, _O, False))
register("dense/fwd+bwd", f"{_N}x{_I}->{_O}", flops=6 * _N * _I * _O)(partial(_dense, _N, _I, _O, True))


# --------------------------------------------------------------------------------------------
# elementwise activations at 16M elements


def _act_out(name, n=M16):
    """Forward with a preallocated out= for all three: the kernel without the allocation."""
    x = _randn(n, 1)
    yn, yr, yt = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    fwd, twin = getattr(ops, name), getattr(ref, name)
    t = torch_module()
    tf = None
    if t is not None:
        xt, ytt = t.from_numpy(x), t.from_numpy(yt)
        aten = t.ops.aten
        tf = {
            "sigmoid": lambda: t.sigmoid(xt, out=ytt),
            "tanh": lambda: t.tanh(xt, out=ytt),
            "relu": lambda: aten.relu.out(xt, out=ytt),
            "leaky_relu": lambda: aten.leaky_relu.out(xt, 0.01, out=ytt),
        }[name]
    return {"nnkern": lambda: fwd(x, out=yn), "numpy": lambda: twin(x, out=yr), "torch": tf,
            "notes": "all three write into a preallocated out="}


def _act(name, backward, n=M16):
    x, dy = _randn(n, 1), _randn(n, 2)
    fwd, bwd = getattr(ops, name), getattr(ops, name + "_backward")
    tfwd, tbwd = getattr(ref, name), getattr(ref, name + "_backward")
    saves_output = name in ("sigmoid", "tanh")  # backward takes y; the ReLUs take x
    t = torch_module()
    tf = None
    if t is not None:
        xt, dyt = t.from_numpy(x), t.from_numpy(dy)
        F = t.nn.functional
        aten = t.ops.aten
        torch_fwd = {
            "sigmoid": t.sigmoid, "tanh": t.tanh, "relu": t.relu,
            "leaky_relu": lambda a: F.leaky_relu(a, 0.01),
        }[name]
        torch_bwd = {  # the kernels autograd calls for each activation's backward
            "sigmoid": lambda y: aten.sigmoid_backward(dyt, y),
            "tanh": lambda y: aten.tanh_backward(dyt, y),
            "relu": lambda y: aten.threshold_backward(dyt, xt, 0),
            "leaky_relu": lambda y: aten.leaky_relu_backward(dyt, xt, 0.01, False),
        }[name]
        if backward:
            def tf():
                y = torch_fwd(xt)
                return y, torch_bwd(y)
        else:
            tf = lambda: torch_fwd(xt)  # noqa: E731
    if not backward:
        return {"nnkern": lambda: fwd(x), "numpy": lambda: tfwd(x), "torch": tf}

    def nk():
        y = fwd(x)
        return y, bwd(dy, y if saves_output else x)

    def tw():
        y = tfwd(x)
        return y, tbwd(dy, y if saves_output else x)

    torch_bwd_name = {"sigmoid": "sigmoid_backward", "tanh": "tanh_backward",
                      "relu": "threshold_backward", "leaky_relu": "leaky_relu_backward"}[name]
    return {"nnkern": nk, "numpy": tw, "torch": tf,
            "notes": f"returns y, dx; torch: aten.{torch_bwd_name} (autograd's backward kernel)"}


for _name in ("sigmoid", "tanh", "relu", "leaky_relu"):
    register(f"{_name}/fwd", "16M", bytes=2 * 4 * M16)(partial(_act, _name, False))
    # fwd reads x, writes y; bwd reads dy and y (or x), writes dx
    register(f"{_name}/fwd+bwd", "16M", bytes=5 * 4 * M16)(partial(_act, _name, True))
for _name in ("sigmoid", "tanh", "relu", "leaky_relu"):
    register(f"{_name}/fwd(out=)", "16M", bytes=2 * 4 * M16)(partial(_act_out, _name))


# --------------------------------------------------------------------------------------------
# recurrent layers (LSTM, GRU, tanh RNN; one layer, one direction, time-major, PyTorch layout)

_RNN_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
_RNN_CONFIGS = ((35, 20, 200, 200), (50, 64, 256, 512), (100, 32, 512, 512), (20, 128, 1024, 1024))


def _rnn_lengths(T, B):
    """Variable lengths: uniform in [T/2, T], fixed seed, unsorted."""
    return _rng(7).integers(T // 2, T + 1, size=B).astype(np.int64)


def _rnn_flops(kind, T, B, I, H, backward, lengths=None):
    """2*G*H*(I+H) per valid (step, sequence); fwd+bwd = 3x the forward (dh, dx, dW products).

    With lengths only the valid steps are counted (sum(lengths) instead of T*B), so GFLOP/s
    means the same thing in both kinds of case.
    """
    steps = T * B if lengths is None else int(np.sum(lengths))
    f = 2 * steps * _RNN_GATES[kind] * H * (I + H)
    return 3 * f if backward else f


def _rnn_case(kind, T, B, I, H, backward, use_lengths):
    require(f"{kind}_forward", f"{kind}_backward")
    G = _RNN_GATES[kind]
    k = 1 / np.sqrt(H)  # torch's default init range U(-1/sqrt(H), 1/sqrt(H))
    r = _rng(3)
    W_ih = r.uniform(-k, k, (G * H, I)).astype(F32)
    W_hh = r.uniform(-k, k, (G * H, H)).astype(F32)
    b_ih = r.uniform(-k, k, G * H).astype(F32)
    b_hh = r.uniform(-k, k, G * H).astype(F32)
    x = _randn((T, B, I), 1)
    h0 = _randn((B, H), 2) * F32(0.5)
    c0 = _randn((B, H), 4) * F32(0.5) if kind == "lstm" else None
    dout, dhT = _randn((T, B, H), 5), _randn((B, H), 6)
    dcT = _randn((B, H), 8) if kind == "lstm" else None
    lengths = _rnn_lengths(T, B) if use_lengths else None
    fwd_nk, bwd_nk = getattr(ops, f"{kind}_forward"), getattr(ops, f"{kind}_backward")
    fwd_tw, bwd_tw = getattr(ref, f"{kind}_forward"), getattr(ref, f"{kind}_backward")
    states = (h0, c0) if kind == "lstm" else (h0,)
    upstream = (dout, dhT, dcT) if kind == "lstm" else (dout, dhT)

    def ours(fwd, bwd):
        def f():
            res = fwd(x, *states, W_ih, W_hh, b_ih, b_hh, lengths=lengths)
            if not backward:
                return res[:-1]  # out, hT[, cT]
            return (*res[:-1], *bwd(*upstream, res[-1]))
        return f

    t = torch_module()
    tf = compare_torch = None
    if t is not None:
        cls = {"lstm": t.nn.LSTM, "gru": t.nn.GRU, "rnn": t.nn.RNN}[kind]
        m = cls(I, H, num_layers=1)  # RNN: nonlinearity="tanh" by default
        with t.no_grad():
            for name, a in (("weight_ih_l0", W_ih), ("weight_hh_l0", W_hh),
                            ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
                getattr(m, name).copy_(t.from_numpy(a))
        params = (m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
        xt = t.from_numpy(x)
        st = [t.from_numpy(s.reshape(1, B, H)) for s in states]  # torch wants (layers, B, H)
        ups = [t.from_numpy(upstream[0])] + [t.from_numpy(u.reshape(1, B, H)) for u in upstream[1:]]
        Lt = None if lengths is None else t.from_numpy(lengths)
        rnn_utils = t.nn.utils.rnn

        def run(inp, hx):
            if Lt is not None:
                inp = rnn_utils.pack_padded_sequence(inp, Lt, enforce_sorted=False)
            out, final = m(inp, hx)
            if Lt is not None:
                out, _ = rnn_utils.pad_packed_sequence(out, total_length=T)
            return (out, *final) if kind == "lstm" else (out, final)

        hx_of = (lambda s: tuple(s)) if kind == "lstm" else (lambda s: s[0])
        if not backward:
            def tf():
                with t.no_grad():
                    return run(xt, hx_of(st))
        else:
            xg = xt.detach().requires_grad_()
            sg = [s.detach().requires_grad_() for s in st]

            def tf():
                m.zero_grad(set_to_none=True)
                xg.grad = None
                for s in sg:
                    s.grad = None
                res = run(xg, hx_of(sg))
                t.autograd.backward(res, ups)  # dout, dhT[, dcT]
                return (*res, xg.grad, *(s.grad for s in sg), *(p.grad for p in params))

        def compare_torch(res):  # torch's states and their gradients are (1, B, H)
            return (res[0], *(a.reshape(B, H) if tuple(a.shape) == (1, B, H) else a
                              for a in res[1:]))

    how = ("pack_padded_sequence(enforce_sorted=False) -> module -> "
           "pad_packed_sequence(total_length=T)" if use_lengths else "module(x, hx)")
    returns = ("out, hT" + (", cT" if kind == "lstm" else "")
               + (", dx, dh0" + (", dc0" if kind == "lstm" else "")
                  + ", dW_ih, dW_hh, db_ih, db_hh" if backward else ""))
    torch_name = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN(tanh)"}[kind]
    notes = (f"returns {returns}; torch: nn.{torch_name}(I, H) with the same weights, {how}"
             + (", under no_grad" if not backward else
                ", autograd backward of (out, hT" + (", cT" if kind == "lstm" else "")
                + ") with the same upstream gradients")
             + ("; lengths uniform in [T/2, T] (seed 7, unsorted), GFLOP/s counts valid steps only"
                if use_lengths else ""))
    if backward:
        notes += ("; validation atol per output = max(1e-4, 1e-5 * max|output|): dW, db are "
                  "float32 sums over T*B terms (entries up to ~250) whose rounding error scales "
                  "with the largest entries")
    return {"nnkern": ours(fwd_nk, bwd_nk), "numpy": ours(fwd_tw, bwd_tw), "torch": tf,
            "compare_torch": compare_torch, "notes": notes,
            "atol_scale": 1e-5 if backward else 0.0}


def _rnn_register(kind, backward, use_lengths):
    for T, B, I, H in _RNN_CONFIGS:
        lengths = _rnn_lengths(T, B) if use_lengths else None
        name = f"{kind}/{'fwd+bwd' if backward else 'fwd'}{' lengths' if use_lengths else ''}"
        register(name, f"T={T} B={B} I={I} H={H}",
                 flops=_rnn_flops(kind, T, B, I, H, backward, lengths))(
            partial(_rnn_case, kind, T, B, I, H, backward, use_lengths))


_rnn_register("lstm", False, False)
for _kind in ("lstm", "gru", "rnn"):
    _rnn_register(_kind, True, False)
for _kind in ("lstm", "gru", "rnn"):
    _rnn_register(_kind, True, True)


# --------------------------------------------------------------------------------------------
# training: optimizer steps over 16M parameters held as 16 tensors, batch norm, dropout

_OPT_TENSORS = 16


def _opt_case(kind, check_finite=True):
    """One optimizer step; nnkern.optim over flatten()ed parameters (16 views of one buffer)
    and its flat gradient buffer, numpy = the twin per tensor, torch = torch.optim.
    check_finite=False is torch's contract (no test of the gradients): the same work."""
    require({"adam": "adam_step", "sgd_momentum": "sgd_step", "rmsprop": "rmsprop_step",
             "rprop": "rprop_step"}[kind])
    from .. import optim

    n = M16 // _OPT_TENSORS
    p0 = [_randn(n, 10 + k) * F32(0.1) for k in range(_OPT_TENSORS)]
    g0 = [_randn(n, 40 + k) * F32(0.01) for k in range(_OPT_TENSORS)]
    cls, kw, torch_kw = {
        "adam": (optim.Adam, {"lr": 1e-3}, {"fused": True}),
        "sgd_momentum": (optim.Momentum, {"lr": 1e-2, "momentum": 0.9}, {"foreach": True}),
        "rmsprop": (optim.RMSProp, {"lr": 1e-3}, {"foreach": True}),
        "rprop": (optim.RProp, {"lr": 1e-3}, {"foreach": True}),
    }[kind]
    opt = cls(optim.flatten(p0), check_finite=check_finite, **kw)
    for g, src in zip(opt.grads, g0):
        g[...] = src

    def nk():
        opt.step()
        return tuple(opt.params)

    # the twin, tensor by tensor, with its own state
    tp = [p.copy() for p in p0]
    st = [[np.zeros_like(p) for _ in range(3)] for p in p0]
    step = [0]

    def tw():
        step[0] += 1
        for p, g, (a, b, c) in zip(tp, g0, st):
            if kind == "adam":
                ref.adam_step(p, g, a, b, step[0], lr=1e-3)
            elif kind == "sgd_momentum":
                ref.sgd_step(p, g, a, step[0], 1e-2, momentum=0.9)
            elif kind == "rmsprop":
                ref.rmsprop_step(p, g, a, step[0], lr=1e-3)
            else:
                if step[0] == 1:
                    b[...] = 1e-3
                ref.rprop_step(p, g, a, b)
        return tuple(tp)

    t = torch_module()
    tf = None
    if t is not None:
        tparams = [t.from_numpy(p.copy()).requires_grad_() for p in p0]
        for tpar, g in zip(tparams, g0):
            tpar.grad = t.from_numpy(g)
        tcls = {"adam": t.optim.Adam, "sgd_momentum": t.optim.SGD, "rmsprop": t.optim.RMSprop,
                "rprop": t.optim.Rprop}[kind]
        topt = tcls(tparams, **kw, **torch_kw)

        def tf():
            topt.step()
            return tuple(tparams)

    tname = {"adam": "Adam(fused=True)", "sgd_momentum": "SGD(momentum=0.9, foreach=True)",
             "rmsprop": "RMSprop(foreach=True)", "rprop": "Rprop(foreach=True)"}[kind]
    return {"nnkern": nk, "numpy": tw, "torch": tf,
            "notes": f"one step; nnkern: optim.{cls.__name__} over flatten()ed params and its flat "
                     + ("grads (check_finite=True, the default: one extra read of the gradients, "
                        "so that a NaN raises with nothing changed)" if check_finite else
                        "grads with check_finite=False: like torch, no test of the gradients")
                     + f"; torch: optim.{tname} over 16 tensors"}


# bytes per element: reads + writes of param, grad and state at the minimum
for _kind, _streams in (("adam", 7), ("sgd_momentum", 5), ("rmsprop", 5), ("rprop", 7)):
    register(f"{_kind}/step", "16M as 16 tensors", bytes=_streams * 4 * M16)(partial(_opt_case, _kind))
    register(f"{_kind}/step", "16M as 16 tensors, unchecked", bytes=_streams * 4 * M16)(
        partial(_opt_case, _kind, False))


def _batchnorm(shape):
    require("batchnorm_forward", "batchnorm_backward")
    N, C = shape
    x, dy = _randn(shape, 1), _randn(shape, 2)
    gamma, beta = _randn(C, 3), _randn(C, 4)
    rm, rv = np.zeros(C, F32), np.ones(C, F32)
    rm2, rv2 = rm.copy(), rv.copy()

    def ours(mod, m, v_):
        def f():
            y, cache = mod.batchnorm_forward(x, gamma, beta, m, v_)
            return (y, *mod.batchnorm_backward(dy, cache))
        return f

    t = torch_module()
    tf = None
    if t is not None:
        bn = t.nn.BatchNorm1d(C)
        with t.no_grad():
            bn.weight.copy_(t.from_numpy(gamma))
            bn.bias.copy_(t.from_numpy(beta))
        xt = t.from_numpy(x).requires_grad_()
        dyt = t.from_numpy(dy)

        def tf():
            xt.grad = bn.weight.grad = bn.bias.grad = None
            y = bn(xt)
            y.backward(dyt)
            return y, xt.grad, bn.weight.grad, bn.bias.grad

    return {"nnkern": ours(ops, rm, rv), "numpy": ours(ref, rm2, rv2), "torch": tf,
            "notes": "training mode, running statistics updated; returns y, dx, dgamma, dbeta; "
                     "torch: nn.BatchNorm1d(C)(x).backward(dy)", "atol_scale": 1e-5}


for _shape in ((4096, 1024), (256, 4096)):
    # fwd reads x (twice: mean, variance) + writes y; bwd reads dy, x twice + writes dx
    register("batchnorm/fwd+bwd", _size(_shape), bytes=8 * 4 * int(np.prod(_shape)))(
        partial(_batchnorm, _shape))


def _dropout(n=M16, p=0.5):
    require("dropout", "dropout_backward")
    x, dy = _randn(n, 1), _randn(n, 2)
    last = {}

    def ours(mod):
        def f():
            y, mask = mod.dropout(x, p, 1234)
            out = (y, mod.dropout_backward(dy, mask, p))
            if mod is ops:
                last["out"] = out
            return out
        return f

    t = torch_module()
    tf = compare_torch = None
    if t is not None:
        xt, dyt = t.from_numpy(x), t.from_numpy(dy)
        aten = t.ops.aten

        def tf():
            y, mask = aten.native_dropout(xt, p, True)
            return y, aten.native_dropout_backward(dyt, mask, 1.0 / (1.0 - p))

        def compare_torch(res):
            # torch draws a different mask: check its semantics instead (keep rate, kept values
            # scaled by 1/(1-p), dx zero exactly where y is), then compare ours with ours
            y, dx = (r.numpy() for r in res)
            kept = y != 0
            ok = (abs(kept.mean() - (1 - p)) < 1e-3
                  and np.allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
                  and np.array_equal(dx != 0, kept & (dy != 0)))
            return last["out"] if ok else res

    return {"nnkern": ours(ops), "numpy": ours(ref), "torch": tf, "compare_torch": compare_torch,
            "notes": f"p={p}; returns y, dx; torch: aten.native_dropout + native_dropout_backward "
                     "(autograd's kernels), validated by keep rate and kept values (its mask differs)"}


# fwd reads x, writes y and the 1-byte mask; bwd reads dy and the mask, writes dx
register("dropout/fwd+bwd", "16M", bytes=(4 + 4 + 1 + 4 + 1 + 4) * M16)(_dropout)


# --------------------------------------------------------------------------------------------
# reference rows: what the hardware does with NumPy's own BLAS and a plain copy


def _matmul(M, K, N):
    a, b = _randn((M, K), 1), _randn((K, N), 2)
    t = torch_module()
    tf = None
    if t is not None:
        at, bt = t.from_numpy(a), t.from_numpy(b)
        tf = lambda: t.matmul(at, bt)  # noqa: E731
    return {"numpy": lambda: np.matmul(a, b), "torch": tf}


def _memcpy(alloc):
    src = _randn(M16)
    t = torch_module()
    if alloc:
        tf = None
        if t is not None:
            st = t.from_numpy(src)
            tf = st.clone
        return {"numpy": src.copy, "torch": tf}
    dst = np.empty_like(src)

    def nf():
        np.copyto(dst, src)
        return dst

    tf = None
    if t is not None:
        st, dt = t.from_numpy(src), t.from_numpy(np.empty_like(src))

        def tf():
            dt.copy_(st)
            return dt

    return {"numpy": nf, "torch": tf}



# --------------------------------------------------------------------------------------------
# attention


def _sdpa(B, T, D, backward):
    q, k, v, dout = (_randn((B, T, D), i) for i in (1, 2, 3, 4))
    t = torch_module()

    def nk():
        out, cache = ops.scaled_dot_product_attention(q, k, v)
        return (out, *ops.scaled_dot_product_attention_backward(dout, cache)) if backward else out

    def tw():
        out, cache = ref.scaled_dot_product_attention(q, k, v)
        return (out, *ref.scaled_dot_product_attention_backward(dout, cache)) if backward else out

    tf = None
    if t is not None:
        qt, kt, vt = (t.from_numpy(a).requires_grad_(backward) for a in (q, k, v))
        dt = t.from_numpy(dout)
        sdpa = t.nn.functional.scaled_dot_product_attention

        def tf():
            if not backward:
                with t.no_grad():
                    return sdpa(qt, kt, vt)
            qt.grad = kt.grad = vt.grad = None
            out = sdpa(qt, kt, vt)
            out.backward(dt)
            return out, qt.grad, kt.grad, vt.grad

    return {"nnkern": nk, "numpy": tw, "torch": tf,
            "notes": "no mask; torch: F.scaled_dot_product_attention" + ("(...).backward()" if backward else "")}


_B, _T, _D = 32, 128, 64
register("sdpa/fwd", f"B={_B} T={_T} D={_D}", flops=4 * _B * _T * _T * _D)(partial(_sdpa, _B, _T, _D, False))
register("sdpa/fwd+bwd", f"B={_B} T={_T} D={_D}", flops=12 * _B * _T * _T * _D)(partial(_sdpa, _B, _T, _D, True))
del _B, _T, _D


# --------------------------------------------------------------------------------------------
# training steps of whole models: forward, loss, backward, Adam (nnkern.nn vs torch.nn)


def _torch_adam_step(t, params, loss_fn):
    opt = t.optim.Adam(params, lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()
        return np.float32(loss.item())

    return step


def _nk_adam_step(model, loss_fn):
    from .. import optim

    model.flatten_parameters()
    opt = optim.Adam(model.parameters(), lr=1e-3)
    grads = model.gradients()

    def step():
        value = loss_fn()
        opt.step(grads)
        return np.float32(value)

    return step


def _nk_loss(model, forward, target):
    """The loss half of an nnkern training step: cross-entropy of forward(), then backward."""
    from .. import nn

    ce = nn.CrossEntropyLoss()

    def f():
        value = ce.forward(forward(), target)
        model.zero_grad()
        model.backward(ce.backward())
        return value

    return f


def _char_lstm_step(V, E, H, T, B):
    from .. import nn

    ids = _rng(1).integers(0, V, (T + 1, B))
    x, y = ids[:-1], ids[1:]
    m = nn.CharRNN(V, E, H, cell="lstm", seed=0)
    sd = m.state_dict()
    nk_loss = _nk_loss(m, lambda: m.forward(x), y)

    t = torch_module()
    tf = None
    if t is not None:
        emb, lstm, fc = t.nn.Embedding(V, E), t.nn.LSTM(E, H), t.nn.Linear(H, V)
        with t.no_grad():
            emb.weight.copy_(t.from_numpy(sd["embed.weight"]))
            for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                getattr(lstm, k).copy_(t.from_numpy(sd["rnn." + k]))
            fc.weight.copy_(t.from_numpy(sd["out.weight"]))
            fc.bias.copy_(t.from_numpy(sd["out.bias"]))
        xt, yt = t.from_numpy(x), t.from_numpy(y)
        params = [*emb.parameters(), *lstm.parameters(), *fc.parameters()]
        tf = _torch_adam_step(t, params, lambda: t.nn.functional.cross_entropy(
            fc(lstm(emb(xt))[0]).reshape(-1, V), yt.reshape(-1)))
    return {"nnkern": _nk_adam_step(m, nk_loss), "torch": tf,
            "notes": "one step: forward, mean cross-entropy over T*B, backward, Adam (lr 1e-3); "
                     "torch: nn.Embedding + nn.LSTM + nn.Linear, autograd, torch.optim.Adam defaults; "
                     "the compared output is the first step's loss"}


def _seq2seq_step(V, E, H, Ts, Td, B):
    from .. import nn

    rng = _rng(2)
    src = rng.integers(3, V, (B, Ts))
    tgt = rng.integers(3, V, (B, Td))
    tgt_in = np.concatenate([np.ones((B, 1), np.int64), tgt[:, :-1]], axis=1)
    m = nn.Seq2Seq(V, V, E, H, cell="lstm", attention="scaled_dot", seed=0)
    sd = m.state_dict()
    nk_loss = _nk_loss(m, lambda: m.forward(src, tgt_in), tgt)

    t = torch_module()
    tf = None
    if t is not None:
        F = t.nn.functional
        mods = {"src_embed": t.nn.Embedding(V, E), "encoder": t.nn.LSTM(E, H, batch_first=True),
                "tgt_embed": t.nn.Embedding(V, E), "decoder": t.nn.LSTM(E, H, batch_first=True),
                "out": t.nn.Linear(2 * H, V)}
        with t.no_grad():
            for name, mod in mods.items():
                for k, p in mod.named_parameters():
                    p.copy_(t.from_numpy(sd[f"{name}.{k}"]))
        st, tit, tt = (t.from_numpy(a) for a in (src, tgt_in, tgt))

        def loss():
            enc, state = mods["encoder"](mods["src_embed"](st))
            dec, _ = mods["decoder"](mods["tgt_embed"](tit), state)
            ctx = F.scaled_dot_product_attention(dec, enc, enc)
            logits = mods["out"](t.cat([dec, ctx], dim=-1))
            return F.cross_entropy(logits.reshape(-1, V), tt.reshape(-1))

        tf = _torch_adam_step(t, [p for mod in mods.values() for p in mod.parameters()], loss)
    return {"nnkern": _nk_adam_step(m, nk_loss), "torch": tf,
            "notes": "one step of nn.Seq2Seq (LSTM encoder and decoder, scaled dot-product attention "
                     "over the encoder outputs, Dense over [decoder | context]), cross-entropy, backward, "
                     "Adam; torch: the same model from torch.nn modules, autograd, torch.optim.Adam"}


register("char-lstm/train-step", "V=96 E=64 H=512 T=100 B=32",
         flops=3 * 2 * 100 * 32 * (64 * 4 * 512 + 512 * 4 * 512 + 512 * 96))(
    partial(_char_lstm_step, 96, 64, 512, 100, 32))
register("seq2seq/train-step", "V=64 E=64 H=256 Ts=Td=20 B=64")(partial(_seq2seq_step, 64, 64, 256, 20, 20, 64))

for _M in (1024, 512):
    register("numpy matmul", f"{_M}x1024 @ 1024x1024", flops=2 * _M * 1024 * 1024, reference=True,
             notes="float32 np.matmul; torch column: torch.matmul")(partial(_matmul, _M, 1024, 1024))
register("memcpy", "64 MiB", bytes=2 * 4 * M16, reference=True,
         notes="np.copyto into an existing array, one thread (GB/s counts read + write); "
               "torch: Tensor.copy_, multi-threaded")(
    partial(_memcpy, False))
register("memcpy+alloc", "64 MiB", bytes=2 * 4 * M16, reference=True,
         notes="ndarray.copy(), a fresh 64 MiB output per call as every kernel here allocates; "
               "torch: Tensor.clone")(partial(_memcpy, True))

del _name, _shape, _M, _kind, _streams
