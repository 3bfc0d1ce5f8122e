"""Weight initialisers. These are the twins themselves, called through nnkern.ops so that
both namespaces list the same names: random generation is numpy's compiled Generator either
way, and a C++ copy would only change which generator is used (and so the weights a seed
gives). See :mod:`nnkern.reference.init` for the definitions.
"""

from __future__ import annotations

import numpy as np

from ..reference import init as _ref

# The same names as the twin module: the kernel contract.
from ..reference.init import __all__  # noqa: E402


def xavier_uniform(shape, seed, gain=1.0, dtype=np.float32):
    return _ref.xavier_uniform(shape, seed, gain, dtype)


def xavier_normal(shape, seed, gain=1.0, dtype=np.float32):
    return _ref.xavier_normal(shape, seed, gain, dtype)


def he_uniform(shape, seed, mode="fan_in", nonlinearity="relu", a=0.0, dtype=np.float32):
    return _ref.he_uniform(shape, seed, mode, nonlinearity, a, dtype)


def he_normal(shape, seed, mode="fan_in", nonlinearity="relu", a=0.0, dtype=np.float32):
    return _ref.he_normal(shape, seed, mode, nonlinearity, a, dtype)


def lecun_normal(shape, seed, dtype=np.float32):
    return _ref.lecun_normal(shape, seed, dtype)


def orthogonal(shape, seed, gain=1.0, dtype=np.float32):
    return _ref.orthogonal(shape, seed, gain, dtype)


def zeros(shape, dtype=np.float32):
    return _ref.zeros(shape, dtype)


def ones(shape, dtype=np.float32):
    return _ref.ones(shape, dtype)


for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref, _name).__doc__
del _name
