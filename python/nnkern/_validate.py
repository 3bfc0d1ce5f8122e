"""Argument checks shared by nnkern.ops (the C++ kernels) and nnkern.reference (the NumPy
twins), so both raise the same exception with the same message on the same bad input.

Errors name the argument, what it was and what was expected:
TypeError for a wrong dtype (or float32 mixed with float64), ValueError for a wrong shape,
rank, axis, reduction or value.
"""

from __future__ import annotations

import math

import numpy as np

from . import _buffers

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
REDUCTIONS = ("mean", "sum", "none")


def float_array(x, name: str) -> np.ndarray:
    """x as a C-contiguous float32/float64 ndarray (one copy if it was a strided view)."""
    a = np.asarray(x)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")
    # np.asarray(order="C") keeps 0-d arrays 0-d (np.ascontiguousarray would make them 1-d).
    return np.asarray(a, order="C")


def same_dtype(ref: np.ndarray, ref_name: str, **arrays: np.ndarray | None) -> None:
    """Every array given must have ref's dtype (float32 and float64 are never mixed)."""
    for name, a in arrays.items():
        if a is not None and a.dtype != ref.dtype:
            raise TypeError(
                f"{name}: dtype {a.dtype} does not match {ref_name}'s dtype {ref.dtype} "
                "(float32 and float64 are not mixed in one call)"
            )


def same_shape(ref: np.ndarray, ref_name: str, **arrays: np.ndarray) -> None:
    for name, a in arrays.items():
        if a.shape != ref.shape:
            raise ValueError(
                f"{name}: shape {a.shape} does not match {ref_name}'s shape {ref.shape}"
            )


def check_ndim(a: np.ndarray, name: str, ndims: tuple[int, ...], what: str) -> None:
    if a.ndim not in ndims:
        raise ValueError(f"{name}: expected {what}, got an array of shape {a.shape}")


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}: {axis} is out of range for an array with {ndim} dimensions")
    return int(axis) % ndim


def axis_split(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(outer, K, inner) such that an array of `shape` is (outer, K, inner) with K = shape[axis]."""
    outer = math.prod(shape[:axis])
    inner = math.prod(shape[axis + 1 :])
    return outer, int(shape[axis]), inner


def check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def real_scalar(v, name: str, *, min_value=None, strict_min=False) -> float:
    """A finite Python float, optionally bounded below."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a real number, got {type(v).__name__}") from None
    if not np.isfinite(f):
        raise ValueError(f"{name}: must be finite, got {f}")
    if min_value is not None and (f < min_value or (strict_min and f == min_value)):
        op = ">" if strict_min else ">="
        raise ValueError(f"{name}: must be {op} {min_value}, got {f}")
    return f


def output(out, shape: tuple[int, ...], dtype: np.dtype, name: str = "out") -> np.ndarray:
    """A fresh array, or the caller's `out` after checking it can take the result."""
    if out is None:
        return _buffers.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: expected dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name}: must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return out


def index_array(t, name: str) -> np.ndarray:
    """Integer labels as a C-contiguous int64 array (int32 and other integer types accepted)."""
    a = np.asarray(t)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array, got dtype {a.dtype}")
    return np.asarray(a, dtype=np.int64, order="C")


def reduce_result(value, dtype: np.dtype):
    """A reduced loss as a NumPy scalar of the input's dtype (like ndarray.sum())."""
    return np.dtype(dtype).type(value)


# ---------------------------------------------------------------------------------------
# In-place kernels (optimizer steps, clipping, running statistics): the caller's arrays are
# updated, so they must be writeable float ndarrays; nothing is converted.


class NonFiniteError(ValueError, RuntimeError):
    """A non-finite value where a finite one is required (a ValueError, and a RuntimeError
    like the one torch.nn.utils.clip_grad_norm_ raises with error_if_nonfinite=True)."""


def inplace_array(a, name: str) -> np.ndarray:
    """A float32/float64 ndarray the kernel may update in place (any strides)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray (it is updated in place), got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")
    if not a.flags.writeable:
        raise ValueError(f"{name}: array is read-only")
    return a


def state_like(a, name: str, ref: np.ndarray, ref_name: str) -> np.ndarray:
    """An in-place array with ref's dtype and shape (optimizer state, running statistics)."""
    inplace_array(a, name)
    same_dtype(ref, ref_name, **{name: a})
    same_shape(ref, ref_name, **{name: a})
    return a


def int_scalar(v, name: str, *, min_value=None) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(v).__name__}")
    if min_value is not None and v < min_value:
        raise ValueError(f"{name}: must be >= {min_value}, got {v}")
    return int(v)


def bool_flag(v, name: str) -> bool:
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(v).__name__}")
    return bool(v)


def unit_scalar(v, name: str, *, closed=False) -> float:
    """A real number in [0, 1) ([0, 1] when closed)."""
    f = real_scalar(v, name, min_value=0.0)
    if f > 1.0 or (f == 1.0 and not closed):
        raise ValueError(f"{name}: must be in [0, 1{']' if closed else ')'}, got {f}")
    return f


def nonfinite_error(name: str, a: np.ndarray, i: int) -> ValueError:
    """The error for a NaN or inf at flat index i of a gradient."""
    value = float(a.reshape(-1)[i])
    return ValueError(f"{name}: non-finite value {value} at flat index {i}")


def random_seed(seed, name: str = "seed") -> int:
    """An explicit seed: an int in [0, 2**64), or a numpy Generator (one 63-bit draw)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"{name}: expected an int or a numpy.random.Generator, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"{name}: must be in [0, 2**64), got {seed}")
    return int(seed)
