"""One contiguous buffer behind many parameter arrays."""

from __future__ import annotations

import math

import numpy as np

from .. import _validate as v


def flatten(arrays, dtype=None) -> list:
    """Copies of `arrays` as views into ONE new contiguous 1-D buffer, in order.

    Give the views to the model and to its optimizer: a step is then one pass over one range.
    dtype: the buffer's dtype (default: the arrays' common dtype, float32 or float64).
    """
    arrays = [v.float_array(a, f"arrays[{k}]") for k, a in enumerate(arrays)]
    if dtype is None:
        dtype = arrays[0].dtype if arrays else np.dtype(np.float32)
        for k, a in enumerate(arrays[1:], 1):
            v.same_dtype(arrays[0], "arrays[0]", **{f"arrays[{k}]": a})
    dtype = np.dtype(dtype)
    if dtype not in v.FLOAT_DTYPES:
        raise TypeError(f"dtype: expected float32 or float64, got {dtype}")
    buf = np.empty(sum(a.size for a in arrays), dtype=dtype)
    views, off = [], 0
    for a in arrays:
        view = buf[off:off + a.size].reshape(a.shape)
        view[...] = a
        views.append(view)
        off += a.size
    return views


def _root(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def flat_buffer(arrays) -> np.ndarray | None:
    """The 1-D array that `arrays` tile back to back, in order (as made by flatten), or None."""
    if not arrays or not all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays):
        return None
    dtype = arrays[0].dtype
    if any(a.dtype != dtype for a in arrays):
        return None
    start = arrays[0].__array_interface__["data"][0]
    addr = start
    for a in arrays:
        if a.__array_interface__["data"][0] != addr:
            return None
        addr += a.nbytes
    root = _root(arrays[0])
    if not root.flags.c_contiguous or root.dtype != dtype:
        return None
    off, rem = divmod(start - root.__array_interface__["data"][0], dtype.itemsize)
    total = sum(a.size for a in arrays)
    if rem or off < 0 or off + total > root.size:
        return None
    flat = root.reshape(-1)[off:off + total]
    return flat if math.prod(flat.shape) == total else None
