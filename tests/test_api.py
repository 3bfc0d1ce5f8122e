"""The public API: ops and reference list the same kernels with the same signatures, the
threading controls, build information, and that kernels release the GIL."""

from __future__ import annotations

import inspect
import sys
import threading
import time
import types

import numpy as np
import pytest

import nnkern
from nnkern import ops, reference


def public_callables(mod) -> dict:
    """Every public (no leading underscore) callable attribute of `mod` that is not a module."""
    return {
        name: obj
        for name, obj in vars(mod).items()
        if not name.startswith("_") and callable(obj) and not isinstance(obj, types.ModuleType)
    }


# ---------------------------------------------------------------------------------------
# ops and reference: the same names, the same signatures


@pytest.mark.parametrize("mod", [ops, reference], ids=["ops", "reference"])
def test_all_lists_every_public_callable(mod):
    names = list(mod.__all__)
    assert len(names) == len(set(names)), f"duplicates in {mod.__name__}.__all__"
    for name in names:
        assert callable(getattr(mod, name, None)), f"{mod.__name__}.{name} is listed in __all__ but missing"
    extra = sorted(set(public_callables(mod)) - set(names))
    assert not extra, f"public callables of {mod.__name__} missing from its __all__: {extra}"


def test_same_names_in_ops_and_reference():
    ops_names = set(ops.__all__) | set(public_callables(ops))
    ref_names = set(reference.__all__) | set(public_callables(reference))
    only_ops = sorted(ops_names - ref_names)
    only_ref = sorted(ref_names - ops_names)
    assert not only_ops, f"in nnkern.ops but not nnkern.reference: {only_ops}"
    assert not only_ref, f"in nnkern.reference but not nnkern.ops: {only_ref}"
    assert ops.__all__, "nnkern.ops exports no kernels"


def test_same_signatures_in_ops_and_reference():
    mismatches = []
    for name in sorted(set(ops.__all__) & set(reference.__all__)):
        s_ops = inspect.signature(getattr(ops, name))
        s_ref = inspect.signature(getattr(reference, name))
        p_ops = [(p.name, p.kind, p.default) for p in s_ops.parameters.values()]
        p_ref = [(p.name, p.kind, p.default) for p in s_ref.parameters.values()]
        if p_ops != p_ref:
            mismatches.append(f"{name}: ops{s_ops} != reference{s_ref}")
    assert not mismatches, "signature mismatches:\n" + "\n".join(mismatches)


@pytest.mark.parametrize("name", sorted(set(ops.__all__) & set(reference.__all__)))
def test_ops_are_not_the_twins(name):
    # A kernel that merely re-exported its twin would make every comparison vacuous.
    f_ops, f_ref = getattr(ops, name), getattr(reference, name)
    assert f_ops is not f_ref
    assert f_ops.__module__.startswith("nnkern.ops"), f_ops.__module__
    assert f_ref.__module__.startswith("nnkern.reference"), f_ref.__module__
    assert f_ref.__doc__ and f_ref.__doc__.strip(), f"reference.{name} has no docstring"


# ---------------------------------------------------------------------------------------
# threads


def test_num_threads_round_trip():
    try:
        for n in (1, 3, 2):
            nnkern.set_num_threads(n)
            assert nnkern.get_num_threads() == n
    finally:
        nnkern.set_num_threads(2)
    assert nnkern.get_num_threads() == 2


@pytest.mark.parametrize("n", [0, -1])
def test_set_num_threads_rejects_non_positive(n):
    with pytest.raises(ValueError, match="n"):
        nnkern.set_num_threads(n)
    assert nnkern.get_num_threads() == 2


@pytest.mark.parametrize("n", ["2", 2.0, None, True])
def test_set_num_threads_rejects_non_int(n):
    with pytest.raises(TypeError, match="n"):
        nnkern.set_num_threads(n)
    assert nnkern.get_num_threads() == 2


def _with_threads(n, f):
    nnkern.set_num_threads(n)
    try:
        return f()
    finally:
        nnkern.set_num_threads(2)


# The outputs go to the same `out` buffers under both thread counts: a result that depends on
# the memory address of its buffers is a separate defect, tested in test_activations.py
# (test_result_does_not_depend_on_buffer_alignment); here only the thread count changes.


# (300, 1000): 300k elements, above the 32768-element parallel threshold; (263, 8000): rows of
# several 2048-element blocks and an output above the 8 MiB streaming threshold.
@pytest.mark.parametrize("shape,axis", [((300, 1_000), -1), ((300, 1_000), 0), ((263, 8_000), -1)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_bitwise_identical_with_1_and_2_threads(rng, dtype, name, shape, axis):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    f = getattr(ops, name)
    b = getattr(ops, name + "_backward")
    y, dx = np.empty_like(x), np.empty_like(x)
    y1 = _with_threads(1, lambda: f(x, axis=axis, out=y).copy())
    y2 = _with_threads(2, lambda: f(x, axis=axis, out=y).copy())
    np.testing.assert_array_equal(y1, y2)
    g1 = _with_threads(1, lambda: b(dy, y1, axis=axis, out=dx).copy())
    g2 = _with_threads(2, lambda: b(dy, y1, axis=axis, out=dx).copy())
    np.testing.assert_array_equal(g1, g2)


@pytest.mark.parametrize("n", [1_000_000, 2_100_003])  # the latter streams its output
@pytest.mark.parametrize("name", ["sigmoid", "tanh", "leaky_relu"])
def test_elementwise_bitwise_identical_with_1_and_2_threads(rng, dtype, name, n):
    x = (rng.standard_normal(n) * 4).astype(dtype)
    f = getattr(ops, name)
    y = np.empty_like(x)
    y1 = _with_threads(1, lambda: f(x, out=y).copy())
    y2 = _with_threads(2, lambda: f(x, out=y).copy())
    np.testing.assert_array_equal(y1, y2)


# ---------------------------------------------------------------------------------------
# build information


def test_build_info():
    info = nnkern.build_info()
    assert isinstance(info, dict)
    for key in ("version", "build_type", "native", "cxx_flags", "compiler", "eigen", "simd"):
        assert key in info, f"build_info() lacks {key!r}: {sorted(info)}"
    assert isinstance(info["native"], bool)
    for key in ("version", "build_type", "cxx_flags", "compiler", "eigen", "simd"):
        assert isinstance(info[key], str), (key, info[key])
    assert info["version"] == nnkern.__version__
    assert len(info["eigen"].split(".")) == 3
    # a copy: callers cannot corrupt it
    info["version"] = "tampered"
    assert nnkern.build_info()["version"] == nnkern.__version__


def test_version_matches_distribution_metadata():
    from importlib.metadata import version

    assert nnkern.__version__ == version("nnkern")


def test_public_names():
    for name in nnkern.__all__:
        assert hasattr(nnkern, name), name


# ---------------------------------------------------------------------------------------
# the GIL is released inside kernels


def test_kernels_release_the_gil(rng):
    """While a worker thread is inside ops.softmax, the main thread keeps running Python.

    The switch interval is raised so that the interpreter never takes the GIL from a thread
    on its own: the main thread can only advance while the worker is blocked, i.e. inside a
    kernel that released the GIL. It yields the GIL itself after every increment.
    """
    x = rng.standard_normal((2000, 2000))
    y = np.empty_like(x)
    calls = 4
    state = {"count": 0, "during": []}
    go = threading.Event()

    def worker():
        go.wait()
        for _ in range(calls):
            before = state["count"]
            ops.softmax(x, out=y)
            state["during"].append(state["count"] - before)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        t = threading.Thread(target=worker)
        t.start()
        go.set()
        while t.is_alive():
            state["count"] += 1
            time.sleep(0)  # releases the GIL for the worker
        t.join()
    finally:
        sys.setswitchinterval(old)
    assert len(state["during"]) == calls
    assert sum(state["during"]) > 0, (
        f"the main thread never ran while ops.softmax was computing ({state['during']}): "
        "the GIL is held inside the kernel"
    )
    np.testing.assert_allclose(y, reference.softmax(x), rtol=1e-10, atol=1e-12)
