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


def build_info() -> dict:
    """How the compiled module was built: compiler, flags, Eigen version, SIMD in use."""
    return dict(_core.build_info())


__all__ = ["ops", "reference", "nn", "Word2Vec", "KeyedVectors", "GloVe", "TokenIds", "set_num_threads", "get_num_threads", "build_info", "__version__"]
