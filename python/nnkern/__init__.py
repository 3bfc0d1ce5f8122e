"""nnkern: fast C++ (Eigen) CPU kernels for the classic building blocks of deep learning,
each with a readable NumPy twin.

    nnkern.ops        the fast kernels (C++)
    nnkern.reference  the NumPy twins, same names and signatures: the definition of correct
    nnkern.nn         layers (Dense, LSTM, ...) with explicit forward and backward, torch's state-dict keys
    nnkern.bench      ``python -m nnkern.bench``: kernels timed against NumPy and PyTorch
    nnkern.Word2Vec, nnkern.GloVe, nnkern.KeyedVectors   word embeddings, gensim's API
    nnkern.TokenIds   a corpus of integer token ids with its vocabulary, for both models
"""

from __future__ import annotations

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "nnkern's compiled module nnkern._core could not be imported; reinstall with "
        "`pip install .` from a source checkout (needs a C++17 compiler and libeigen3-dev)"
    ) from exc

from . import nn, ops, reference
from .embeddings import GloVe, KeyedVectors, TokenIds, Word2Vec

__version__ = _core.build_info()["version"]


def set_num_threads(n: int) -> None:
    """Use `n` threads (n >= 1) in every nnkern kernel, including its matrix products.

    The default is OpenMP's: OMP_NUM_THREADS if set, else one thread per core.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads nnkern kernels use."""
    return _core.get_num_threads()


def set_buffer_cache(max_bytes: int) -> None:
    """Keep at most `max_bytes` of freed output blocks for reuse (default 512 MiB; 0: none).

    Kernels return arrays of 1 MiB and more from a cache of blocks that earlier outputs left
    behind when they were freed, matched by size (rounded up to 64 KiB, or 2 MiB from 4 MiB
    on). A training loop then gets warm memory every step instead of fresh pages, which the
    OS faults in and zeroes on first touch. Only idle blocks count against the cap; the least
    recently freed go first. The arrays are ordinary writeable ndarrays (their base is a
    capsule, so ``a.flags.owndata`` is False and ``a.resize`` refuses, as for any view).
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise TypeError(f"max_bytes: expected an int, got {type(max_bytes).__name__}")
    if max_bytes < 0:
        raise ValueError(f"max_bytes: must be >= 0, got {max_bytes}")
    _core.set_buffer_cache(max_bytes)


def buffer_cache_info() -> dict:
    """The output-buffer cache: idle_bytes, idle_blocks, max_idle_bytes, hits, misses."""
    return dict(_core.buffer_cache_info())


def build_info() -> dict:
    """How the compiled module was built: compiler, flags, Eigen version, SIMD in use."""
    return dict(_core.build_info())


__all__ = ["ops", "reference", "nn", "Word2Vec", "KeyedVectors", "GloVe", "TokenIds", "set_num_threads", "get_num_threads", "set_buffer_cache", "buffer_cache_info", "build_info", "__version__"]
