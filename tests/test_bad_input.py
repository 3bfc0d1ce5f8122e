"""Bad arguments: ops and reference raise the same exception with the same message, naming
the argument; direct calls into nnkern._core with bad buffers raise instead of crashing."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nnkern import _core, ops, reference

MODULES = [ops, reference]
MOD_IDS = ["ops", "reference"]

ELEMENTWISE = ["sigmoid", "tanh", "relu", "leaky_relu"]
SOFTMAXES = ["softmax", "log_softmax"]
SAVED_NAME = {"sigmoid": "y", "tanh": "y", "relu": "x", "leaky_relu": "x", "softmax": "y", "log_softmax": "y"}


def f64(*shape):
    return np.full(shape, 0.5)


def f32(*shape):
    return np.full(shape, 0.5, dtype=np.float32)


def i64(*shape):
    return np.ones(shape, dtype=np.int64)


# Each case: (id, function name, a function returning (args, kwargs), exception, regex).
# The regex checks that the message names the argument (and, where useful, what was wrong).
CASES = []


def case(cid, name, make, exc, match):
    CASES.append(pytest.param(name, make, exc, match, id=cid))


# --- activations: dtypes ----------------------------------------------------------------
for F in ELEMENTWISE + SOFTMAXES:
    case(f"{F}-x-int64", F, lambda: ((i64(3, 4),), {}), TypeError, r"^x: .*int64")
    case(f"{F}-x-int32", F, lambda: ((np.ones((3, 4), np.int32),), {}), TypeError, r"^x: .*int32")
    case(f"{F}-x-bool", F, lambda: ((np.ones((3, 4), bool),), {}), TypeError, r"^x: .*bool")
    case(f"{F}-x-float16", F, lambda: ((np.ones((3, 4), np.float16),), {}), TypeError, r"^x: .*float16")
    case(f"{F}-x-complex", F, lambda: ((np.ones((3, 4), complex),), {}), TypeError, r"^x: .*complex")
    case(f"{F}-x-int-list", F, lambda: (([[1, 2], [3, 4]],), {}), TypeError, r"^x: ")
    case(f"{F}-x-str", F, lambda: ((np.array(["a", "b"]),), {}), TypeError, r"^x: ")
    case(f"{F}-out-int", F, lambda: ((f64(3, 4),), {"out": i64(3, 4)}), TypeError, r"^out: ")

    B, S = F + "_backward", SAVED_NAME[F]
    case(f"{B}-dy-int64", B, lambda: ((i64(3, 4), f64(3, 4)), {}), TypeError, r"^dy: .*int64")
    case(f"{B}-{S}-int64", B, lambda: ((f64(3, 4), i64(3, 4)), {}), TypeError, rf"^{S}: .*int64")
    case(f"{B}-f32-dy-f64-{S}", B, lambda: ((f32(3, 4), f64(3, 4)), {}), TypeError,
         rf"^{S}: .*float64.*dy.*float32")
    case(f"{B}-f64-dy-f32-{S}", B, lambda: ((f64(3, 4), f32(3, 4)), {}), TypeError,
         rf"^{S}: .*float32.*dy.*float64")
    case(f"{B}-{S}-shape", B, lambda: ((f64(3, 4), f64(3, 5)), {}), ValueError,
         rf"^{S}: shape \(3, 5\) .*dy.*\(3, 4\)")
    case(f"{B}-{S}-transposed", B, lambda: ((f64(3, 4), f64(4, 3)), {}), ValueError, rf"^{S}: shape \(4, 3\)")
    case(f"{B}-{S}-flattened", B, lambda: ((f64(12), f64(3, 4)), {}), ValueError, rf"^{S}: shape \(3, 4\)")

# --- activations: axis ------------------------------------------------------------------
for F in SOFTMAXES:
    for B in (F, F + "_backward"):
        nargs = 1 if B == F else 2
        for cid, axis, exc, match in [
            ("axis-2", 2, ValueError, r"^axis: 2 .*out of range.*2 dimensions"),
            ("axis-minus-3", -3, ValueError, r"^axis: -3 .*out of range"),
            ("axis-huge", 2**70, ValueError, r"^axis: .*out of range"),
            ("axis-float", 1.0, TypeError, r"^axis: .*float"),
            ("axis-numpy-float", np.float64(1), TypeError, r"^axis: "),
            ("axis-str", "0", TypeError, r"^axis: .*str"),
            ("axis-none", None, TypeError, r"^axis: .*NoneType"),
            ("axis-bool", True, TypeError, r"^axis: .*bool"),
            ("axis-tuple", (0, 1), TypeError, r"^axis: .*tuple"),
        ]:
            case(f"{B}-{cid}", B, lambda n=nargs, a=axis: ((f64(3, 4),) * n, {"axis": a}), exc, match)
    # a 0-d array has no axis to reduce
    case(f"{F}-0d", F, lambda: ((np.array(0.5),), {}), ValueError, r"^axis: ")

# --- leaky_relu: alpha -----------------------------------------------------------------
for B in ("leaky_relu", "leaky_relu_backward"):
    nargs = 1 if B == "leaky_relu" else 2
    for cid, alpha, exc, match in [
        ("alpha-str", "a", TypeError, r"^alpha: .*str"),
        ("alpha-none", None, TypeError, r"^alpha: .*NoneType"),
        ("alpha-array", np.array([0.1, 0.2]), TypeError, r"^alpha: "),
        ("alpha-nan", float("nan"), ValueError, r"^alpha: .*finite"),
        ("alpha-inf", float("inf"), ValueError, r"^alpha: .*finite"),
    ]:
        case(f"{B}-{cid}", B, lambda n=nargs, a=alpha: ((f64(3, 4),) * n, {"alpha": a}), exc, match)

# --- dense ------------------------------------------------------------------------------
case("dense-x-int", "dense", lambda: ((i64(3, 5), f64(4, 5)), {}), TypeError, r"^x: .*int64")
case("dense-W-int", "dense", lambda: ((f64(3, 5), i64(4, 5)), {}), TypeError, r"^W: .*int64")
case("dense-b-int", "dense", lambda: ((f64(3, 5), f64(4, 5), i64(4)), {}), TypeError, r"^b: .*int64")
case("dense-x-f32-W-f64", "dense", lambda: ((f32(3, 5), f64(4, 5)), {}), TypeError, r"^W: .*float64.*x.*float32")
case("dense-x-f64-W-f32", "dense", lambda: ((f64(3, 5), f32(4, 5)), {}), TypeError, r"^W: .*float32.*x.*float64")
case("dense-b-f32", "dense", lambda: ((f64(3, 5), f64(4, 5), f32(4)), {}), TypeError, r"^b: .*float32")
case("dense-W-1d", "dense", lambda: ((f64(3, 5), f64(5)), {}), ValueError, r"^W: .*\(5,\)")
case("dense-W-3d", "dense", lambda: ((f64(3, 5), f64(2, 4, 5)), {}), ValueError, r"^W: .*\(2, 4, 5\)")
case("dense-W-0d", "dense", lambda: ((f64(3, 5), np.array(0.5)), {}), ValueError, r"^W: ")
case("dense-x-0d", "dense", lambda: ((np.array(0.5), f64(4, 1)), {}), ValueError, r"^x: ")
case("dense-in-features", "dense", lambda: ((f64(3, 5), f64(4, 6)), {}), ValueError,
     r"^x: last dimension 5 .*W.*6")
case("dense-W-transposed", "dense", lambda: ((f64(3, 5), f64(5, 4)), {}), ValueError, r"^x: .*W")
case("dense-b-shape", "dense", lambda: ((f64(3, 5), f64(4, 5), f64(5)), {}), ValueError, r"^b: .*\(4,\).*\(5,\)")
case("dense-b-2d", "dense", lambda: ((f64(3, 5), f64(4, 5), f64(1, 4)), {}), ValueError, r"^b: .*\(1, 4\)")
case("dense-b-matrix", "dense", lambda: ((f64(3, 5), f64(4, 5), f64(3, 4)), {}), ValueError, r"^b: ")
case("dense-out-shape", "dense", lambda: ((f64(3, 5), f64(4, 5)), {"out": f64(3, 5)}), ValueError, r"^out: ")
case("dense-out-dtype", "dense", lambda: ((f64(3, 5), f64(4, 5)), {"out": f32(3, 4)}), TypeError, r"^out: ")

DB = "dense_backward"
case("dense_backward-dy-cols", DB, lambda: ((f64(3, 5), f64(3, 5), f64(4, 5)), {}), ValueError,
     r"^dy: expected shape \(3, 4\).*\(3, 5\)")
case("dense_backward-dy-rows", DB, lambda: ((f64(2, 4), f64(3, 5), f64(4, 5)), {}), ValueError,
     r"^dy: expected shape \(3, 4\).*\(2, 4\)")
case("dense_backward-dy-1d", DB, lambda: ((f64(4), f64(3, 5), f64(4, 5)), {}), ValueError, r"^dy: ")
case("dense_backward-dy-3d", DB, lambda: ((f64(1, 3, 4), f64(3, 5), f64(4, 5)), {}), ValueError, r"^dy: ")
case("dense_backward-dy-int", DB, lambda: ((i64(3, 4), f64(3, 5), f64(4, 5)), {}), TypeError, r"^dy: .*int64")
case("dense_backward-dy-f32", DB, lambda: ((f32(3, 4), f64(3, 5), f64(4, 5)), {}), TypeError, r"^dy: .*float32")
case("dense_backward-x-int", DB, lambda: ((f64(3, 4), i64(3, 5), f64(4, 5)), {}), TypeError, r"^x: ")
case("dense_backward-W-int", DB, lambda: ((f64(3, 4), f64(3, 5), i64(4, 5)), {}), TypeError, r"^W: ")
case("dense_backward-W-f32", DB, lambda: ((f64(3, 4), f64(3, 5), f32(4, 5)), {}), TypeError, r"^W: ")
case("dense_backward-W-1d", DB, lambda: ((f64(3, 4), f64(3, 5), f64(5)), {}), ValueError, r"^W: ")
case("dense_backward-in-features", DB, lambda: ((f64(3, 4), f64(3, 5), f64(4, 6)), {}), ValueError, r"^x: .*W")

# --- losses -----------------------------------------------------------------------------
PAIR_LOSSES = ["mse_loss", "mae_loss", "huber_loss", "log_cosh_loss", "binary_cross_entropy",
               "binary_cross_entropy_with_logits"]
if "mse_loss" in ops.__all__:
    for L in PAIR_LOSSES:
        for F in (L, L + "_backward"):
            case(f"{F}-pred-int", F, lambda: ((i64(3, 4), f64(3, 4)), {}), TypeError, r"^pred: .*int64")
            case(f"{F}-target-int", F, lambda: ((f64(3, 4), i64(3, 4)), {}), TypeError, r"^target: .*int64")
            case(f"{F}-target-f32", F, lambda: ((f64(3, 4), f32(3, 4)), {}), TypeError,
                 r"^target: .*float32.*pred.*float64")
            case(f"{F}-target-shape", F, lambda: ((f64(3, 4), f64(4, 3)), {}), ValueError,
                 r"^target: shape \(4, 3\) .*pred.*\(3, 4\)")
            case(f"{F}-reduction", F, lambda: ((f64(3, 4), f64(3, 4)), {"reduction": "avg"}), ValueError,
                 r"^reduction: .*'avg'")
            case(f"{F}-reduction-none-object", F, lambda: ((f64(3, 4), f64(3, 4)), {"reduction": None}),
                 ValueError, r"^reduction: ")
    for F in ("huber_loss", "huber_loss_backward"):
        for cid, delta, exc in [("zero", 0.0, ValueError), ("negative", -1.0, ValueError),
                                ("nan", float("nan"), ValueError), ("str", "a", TypeError)]:
            case(f"{F}-delta-{cid}", F, lambda d=delta: ((f64(3, 4), f64(3, 4)), {"delta": d}), exc, r"^delta: ")
    for F in ("binary_cross_entropy", "binary_cross_entropy_backward"):
        case(f"{F}-pred-above-1", F, lambda: ((np.array([0.5, 1.5, 0.2]), f64(3)), {}), ValueError,
             r"^pred: .*1\.5 at flat index 1")
        case(f"{F}-pred-negative", F, lambda: ((np.array([[0.5, 0.1], [-0.2, 0.3]]), f64(2, 2)), {}),
             ValueError, r"^pred: .*-0\.2 at flat index 2")
        case(f"{F}-target-negative", F, lambda: ((f64(3), np.array([0.0, 1.0, -1.0])), {}), ValueError,
             r"^target: .*-1\.0 at flat index 2")
    for F in ("binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward"):
        case(f"{F}-pos_weight-shape", F, lambda: ((f64(3, 4), f64(3, 4)), {"pos_weight": f64(5)}), ValueError,
             r"^pos_weight: .*\(4,\).*\(5,\)")
        case(f"{F}-pos_weight-2d", F, lambda: ((f64(3, 4), f64(3, 4)), {"pos_weight": f64(3, 4)}), ValueError,
             r"^pos_weight: ")
        case(f"{F}-pos_weight-int", F, lambda: ((f64(3, 4), f64(3, 4)), {"pos_weight": i64(4)}), TypeError,
             r"^pos_weight: .*int64")
        case(f"{F}-pos_weight-f32", F, lambda: ((f64(3, 4), f64(3, 4)), {"pos_weight": f32(4)}), TypeError,
             r"^pos_weight: .*float32")
    labels = lambda: np.array([0, 2, 1])  # noqa: E731
    for F in ("cross_entropy", "cross_entropy_backward"):
        case(f"{F}-logits-int", F, lambda: ((i64(3, 4), labels()), {}), TypeError, r"^logits: .*int64")
        case(f"{F}-logits-3d", F, lambda: ((f64(2, 3, 4), labels()), {}), ValueError, r"^logits: .*\(2, 3, 4\)")
        case(f"{F}-labels-shape", F, lambda: ((f64(3, 4), np.array([0, 1, 2, 3])), {}), ValueError,
             r"^target: .*\(3,\).*\(4,\)")
        case(f"{F}-labels-2d", F, lambda: ((f64(3, 4), np.zeros((3, 1), np.int64)), {}), ValueError, r"^target: ")
        case(f"{F}-probs-shape", F, lambda: ((f64(3, 4), f64(3, 5)), {}), ValueError, r"^target: .*\(3, 4\)")
        case(f"{F}-probs-f32", F, lambda: ((f64(3, 4), f32(3, 4)), {}), TypeError, r"^target: .*float32")
        case(f"{F}-target-bool", F, lambda: ((f64(3, 4), np.ones(3, bool)), {}), TypeError, r"^target: .*bool")
        case(f"{F}-target-str", F, lambda: ((f64(3, 4), np.array(["a", "b", "c"])), {}), TypeError, r"^target: ")
        case(f"{F}-label-too-big", F, lambda: ((f64(3, 4), np.array([0, 4, 1])), {}), ValueError,
             r"^target: class label 4 at index 1 .*\[0, 4\)")
        case(f"{F}-label-negative", F, lambda: ((f64(3, 4), np.array([0, 1, -1])), {}), ValueError,
             r"^target: class label -1 at index 2")
        case(f"{F}-ignore_index-float", F, lambda: ((f64(3, 4), labels()), {"ignore_index": 1.5}), TypeError,
             r"^ignore_index: .*float")
        case(f"{F}-ignore_index-bool", F, lambda: ((f64(3, 4), labels()), {"ignore_index": True}), TypeError,
             r"^ignore_index: .*bool")
        case(f"{F}-label_smoothing-big", F, lambda: ((f64(3, 4), labels()), {"label_smoothing": 1.5}),
             ValueError, r"^label_smoothing: ")
        case(f"{F}-label_smoothing-negative", F, lambda: ((f64(3, 4), labels()), {"label_smoothing": -0.1}),
             ValueError, r"^label_smoothing: ")
        case(f"{F}-label_smoothing-str", F, lambda: ((f64(3, 4), labels()), {"label_smoothing": "a"}),
             TypeError, r"^label_smoothing: ")
        case(f"{F}-reduction", F, lambda: ((f64(3, 4), labels()), {"reduction": "max"}), ValueError,
             r"^reduction: ")


def _raise(mod, name, make):
    args, kwargs = make()
    return getattr(mod, name)(*args, **kwargs)


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
@pytest.mark.parametrize("name,make,exc,match", CASES)
def test_bad_argument_raises(mod, name, make, exc, match):
    with pytest.raises(exc, match=match):
        _raise(mod, name, make)


@pytest.mark.parametrize("name,make,exc,match", CASES)
def test_ops_and_reference_raise_the_same(name, make, exc, match):
    errors = []
    for mod in MODULES:
        try:
            _raise(mod, name, make)
        except Exception as e:  # noqa: BLE001 - comparing whatever each raised
            errors.append(e)
        else:
            errors.append(None)
    e_ops, e_ref = errors
    assert e_ops is not None and e_ref is not None, f"raised: ops {e_ops!r}, reference {e_ref!r}"
    assert type(e_ops) is type(e_ref), f"ops raised {e_ops!r}, reference raised {e_ref!r}"
    assert str(e_ops) == str(e_ref)


@pytest.mark.parametrize("mod", MODULES, ids=MOD_IDS)
def test_bad_input_leaves_out_untouched(mod):
    out = np.full((3, 4), 7.0)
    with pytest.raises(TypeError):
        mod.sigmoid(i64(3, 4), out=out)
    with pytest.raises(ValueError):
        mod.softmax(f64(3, 4), axis=5, out=out)
    np.testing.assert_array_equal(out, 7.0)


# ---------------------------------------------------------------------------------------
# nnkern._core called directly: the bindings' own checks, the last line against a crash


def _ro(a):
    a.flags.writeable = False
    return a


CORE_CASES = [
    # elementwise: (x, y)
    ("sigmoid-int-x", lambda: _core.sigmoid(i64(4), f64(4)), TypeError),
    ("sigmoid-f32-out", lambda: _core.sigmoid(f64(4), f32(4)), TypeError),
    ("sigmoid-int-out", lambda: _core.sigmoid(f64(4), i64(4)), TypeError),
    ("sigmoid-short-out", lambda: _core.sigmoid(f64(4), f64(3)), ValueError),
    ("sigmoid-long-out", lambda: _core.sigmoid(f64(4), f64(5)), ValueError),
    ("sigmoid-strided-x", lambda: _core.sigmoid(f64(8)[::2], f64(4)), ValueError),
    ("sigmoid-strided-out", lambda: _core.sigmoid(f64(4), f64(8)[::2]), ValueError),
    ("sigmoid-fortran-x", lambda: _core.sigmoid(np.asfortranarray(f64(3, 4)), f64(3, 4)), ValueError),
    ("sigmoid-read-only-out", lambda: _core.sigmoid(f64(4), _ro(f64(4))), ValueError),
    ("sigmoid-list-x", lambda: _core.sigmoid([0.5, 0.5], f64(2)), TypeError),
    ("sigmoid-none-out", lambda: _core.sigmoid(f64(2), None), TypeError),
    ("tanh-short-out", lambda: _core.tanh(f64(100), f64(99)), ValueError),
    ("tanh-read-only-out", lambda: _core.tanh(f64(4), _ro(f64(4))), ValueError),
    ("leaky_relu-str-alpha", lambda: _core.leaky_relu(f64(4), f64(4), "a"), TypeError),
    ("leaky_relu-short-out", lambda: _core.leaky_relu(f64(4), f64(2), 0.1), ValueError),
    # elementwise backward: (dy, saved, dx)
    ("sigmoid_backward-short-y", lambda: _core.sigmoid_backward(f64(4), f64(3), f64(4)), ValueError),
    ("sigmoid_backward-f32-y", lambda: _core.sigmoid_backward(f64(4), f32(4), f64(4)), TypeError),
    ("tanh_backward-short-dx", lambda: _core.tanh_backward(f64(4), f64(4), f64(3)), ValueError),
    ("tanh_backward-read-only-dx", lambda: _core.tanh_backward(f64(4), f64(4), _ro(f64(4))), ValueError),
    ("leaky_relu_backward-strided-x",
     lambda: _core.leaky_relu_backward(f64(4), f64(8)[::2], f64(4), 0.1), ValueError),
    # softmax: (x, y, outer, K, inner, log)
    ("softmax-sizes-exceed-buffer", lambda: _core.softmax(f64(12), f64(12), 3, 5, 1, False), ValueError),
    ("softmax-sizes-exceed-out", lambda: _core.softmax(f64(15), f64(12), 3, 5, 1, False), ValueError),
    ("softmax-negative-dims", lambda: _core.softmax(f64(12), f64(12), -1, -12, 1, False), ValueError),
    ("softmax-negative-inner", lambda: _core.softmax(f64(12), f64(12), -3, 4, -1, False), ValueError),
    ("softmax-float-dims", lambda: _core.softmax(f64(12), f64(12), 3.0, 4, 1, False), TypeError),
    ("softmax-huge-dim", lambda: _core.softmax(f64(12), f64(12), 2**70, 4, 1, False), TypeError),
    ("softmax-int-x", lambda: _core.softmax(i64(12), f64(12), 3, 4, 1, False), TypeError),
    ("softmax-f32-out", lambda: _core.softmax(f64(12), f32(12), 3, 4, 1, False), TypeError),
    ("softmax-read-only-out", lambda: _core.softmax(f64(12), _ro(f64(12)), 3, 4, 1, True), ValueError),
    ("softmax-strided-x", lambda: _core.softmax(f64(3, 8)[:, ::2], f64(12), 3, 4, 1, False), ValueError),
    ("softmax_backward-short-y",
     lambda: _core.softmax_backward(f64(12), f64(11), f64(12), 3, 4, 1, False), ValueError),
    ("softmax_backward-sizes", lambda: _core.softmax_backward(f64(12), f64(12), f64(12), 4, 4, 1, True), ValueError),
    ("softmax_backward-read-only-dx",
     lambda: _core.softmax_backward(f64(12), f64(12), _ro(f64(12)), 3, 4, 1, False), ValueError),
    # dense: (x, W, b, y, N, I, O)
    ("dense-short-W", lambda: _core.dense(f64(3, 5), f64(4, 4), None, f64(3, 4), 3, 5, 4), ValueError),
    ("dense-short-x", lambda: _core.dense(f64(2, 5), f64(4, 5), None, f64(3, 4), 3, 5, 4), ValueError),
    ("dense-short-b", lambda: _core.dense(f64(3, 5), f64(4, 5), f64(3), f64(3, 4), 3, 5, 4), ValueError),
    ("dense-short-y", lambda: _core.dense(f64(3, 5), f64(4, 5), None, f64(3, 3), 3, 5, 4), ValueError),
    ("dense-f32-b", lambda: _core.dense(f64(3, 5), f64(4, 5), f32(4), f64(3, 4), 3, 5, 4), TypeError),
    ("dense-f32-W", lambda: _core.dense(f64(3, 5), f32(4, 5), None, f64(3, 4), 3, 5, 4), TypeError),
    ("dense-str-b", lambda: _core.dense(f64(3, 5), f64(4, 5), "abcd", f64(3, 4), 3, 5, 4), TypeError),
    ("dense-strided-W", lambda: _core.dense(f64(3, 5), f64(5, 4).T, None, f64(3, 4), 3, 5, 4), ValueError),
    ("dense-read-only-y", lambda: _core.dense(f64(3, 5), f64(4, 5), None, _ro(f64(3, 4)), 3, 5, 4), ValueError),
    ("dense-negative-dims", lambda: _core.dense(f64(3, 5), f64(4, 5), None, f64(3, 4), -3, -5, 4), ValueError),
    # dense_backward: (dy, x, W, dx, dW, db, N, I, O)
    ("dense_backward-short-dy",
     lambda: _core.dense_backward(f64(3, 3), f64(3, 5), f64(4, 5), f64(3, 5), f64(4, 5), f64(4), 3, 5, 4),
     ValueError),
    ("dense_backward-short-dW",
     lambda: _core.dense_backward(f64(3, 4), f64(3, 5), f64(4, 5), f64(3, 5), f64(4, 4), f64(4), 3, 5, 4),
     ValueError),
    ("dense_backward-read-only-db",
     lambda: _core.dense_backward(f64(3, 4), f64(3, 5), f64(4, 5), f64(3, 5), f64(4, 5), _ro(f64(4)), 3, 5, 4),
     ValueError),
    ("dense_backward-f32-dx",
     lambda: _core.dense_backward(f64(3, 4), f64(3, 5), f64(4, 5), f32(3, 5), f64(4, 5), f64(4), 3, 5, 4),
     TypeError),
]


@pytest.mark.parametrize("call,exc", [pytest.param(c, e, id=i) for i, c, e in CORE_CASES])
def test_core_rejects_bad_buffers(call, exc):
    with pytest.raises(exc):
        call()


# Dimensions whose product overflows int64 to a small number: the element-count check must
# not be fooled into letting a kernel run over (outer x K x inner) elements of a tiny buffer.
# Run in a child interpreter so that a crash fails this test instead of killing the run.
OVERFLOW_CALLS = {
    "softmax": "_core.softmax(np.empty(0), np.empty(0), 2**62, 4, 1, False)",
    "softmax-inner": "_core.softmax(np.empty(0), np.empty(0), 1, 4, 2**62, False)",
    "softmax_backward": "_core.softmax_backward(np.empty(0), np.empty(0), np.empty(0), 2**62, 4, 1, True)",
    "dense": "_core.dense(np.empty(0), np.zeros(16), None, np.empty(0), 2**62, 4, 4)",
    "dense_backward": "_core.dense_backward(np.empty(0), np.empty(0), np.zeros(16), np.empty(0),"
                      " np.zeros(16), np.zeros(4), 2**62, 4, 4)",
}


@pytest.mark.parametrize("call", list(OVERFLOW_CALLS.values()), ids=list(OVERFLOW_CALLS))
def test_core_rejects_overflowing_dimensions(call):
    code = textwrap.dedent(f"""
        import sys
        import numpy as np
        from nnkern import _core
        try:
            {call}
        except (ValueError, TypeError, OverflowError):
            sys.exit(0)
        sys.exit(3)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode != 3, f"{call} raised nothing"
    assert r.returncode == 0, (
        f"{call} crashed the interpreter (exit status {r.returncode}):\n{r.stderr[-2000:]}"
    )
