"""Fresh output arrays for the kernels, large ones from nnkern's buffer cache.

A training loop asks for arrays of the same shapes every step. A large array from the
system allocator arrives as fresh pages, which the OS faults in and zeroes on first touch
(for a 16 MiB output about as long as a memory-bound kernel takes to fill it). Arrays of at
least 1 MiB come instead from a cache of blocks freed earlier, kept in C++: the array is an
ordinary writeable ndarray, its base a capsule that returns the block when the last view of
it is gone. See nnkern.set_buffer_cache.
"""

from __future__ import annotations

import math

import numpy as np

from . import _core

MIN_BYTES = 1 << 20  # smaller arrays come from np.empty: the heap serves them warm


def empty(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array, like np.empty."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if math.prod(shape) * dtype.itemsize < MIN_BYTES:
        return np.empty(shape, dtype)
    return _core.empty(shape, dtype)


def empty_like(a: np.ndarray) -> np.ndarray:
    """empty(a.shape, a.dtype): C-contiguous whatever a's layout."""
    return empty(a.shape, a.dtype)
