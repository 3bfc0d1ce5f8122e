"""word2vec's single-example updates in C++ (the very functions the training loop runs);
see nnkern.reference.word2vec for the math. All update their weight arrays in place."""

from __future__ import annotations

from .. import _core
from ..reference import word2vec as _ref
from ..reference.word2vec import _hs_args, _index, _indices, _ns_args

# The same names as the twin module: the kernel contract.
from ..reference.word2vec import __all__  # noqa: E402


def word2vec_sg_ns(syn0, syn1neg, word, context, negatives, alpha):
    word, negatives, alpha = _ns_args(syn0, syn1neg, word, negatives, alpha)
    context = _index(context, "context", syn0.shape[0])
    V, D = syn0.shape
    return _core.word2vec_sg_ns(syn0, syn1neg, V, D, word, context, negatives, alpha)


def word2vec_sg_hs(syn0, syn1, context, points, codes, alpha):
    points, codes, alpha = _hs_args(syn0, syn1, points, codes, alpha)
    context = _index(context, "context", syn0.shape[0])
    V, D = syn0.shape
    return _core.word2vec_sg_hs(syn0, syn1, V, syn1.shape[0], D, context, points, codes, alpha)


def word2vec_sg_hs_window(syn0, syn1, contexts, points, codes, alpha):
    points, codes, alpha = _hs_args(syn0, syn1, points, codes, alpha)
    contexts = _indices(contexts, "contexts", syn0.shape[0])
    V, D = syn0.shape
    return _core.word2vec_sg_hs_window(syn0, syn1, V, syn1.shape[0], D, contexts, points, codes, alpha)


def word2vec_cbow_ns(syn0, syn1neg, word, context, negatives, alpha, cbow_mean=True):
    word, negatives, alpha = _ns_args(syn0, syn1neg, word, negatives, alpha)
    context = _indices(context, "context", syn0.shape[0])
    V, D = syn0.shape
    return _core.word2vec_cbow_ns(syn0, syn1neg, V, D, word, context, negatives, alpha, bool(cbow_mean))


def word2vec_cbow_hs(syn0, syn1, context, points, codes, alpha, cbow_mean=True):
    points, codes, alpha = _hs_args(syn0, syn1, points, codes, alpha)
    context = _indices(context, "context", syn0.shape[0])
    V, D = syn0.shape
    return _core.word2vec_cbow_hs(
        syn0, syn1, V, syn1.shape[0], D, context, points, codes, alpha, bool(cbow_mean)
    )


for _name in __all__:
    globals()[_name].__doc__ = getattr(_ref, _name).__doc__
del _name
