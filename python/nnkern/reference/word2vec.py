"""word2vec's single-example SGD updates in plain NumPy (Mikolov et al. 2013; word2vec.c).

Each function applies one update in place to the weight matrices it is given and returns
that example's log-loss. The randomness of training (which context, which negatives) is
passed in explicitly, so the C++ twins in nnkern.ops can be held to exactly this math:

    syn0    : ndarray of shape (V, D), the input ("word") vectors
    syn1neg : ndarray of shape (V, D), output vectors for negative sampling
    syn1    : ndarray of shape (V - 1, D), Huffman inner-node vectors for hierarchical softmax

The core step is logistic regression of an input vector h against an output row u with a
label y in {0, 1} and learning rate alpha:

    f = h . u,   g = alpha * (y - sigmoid(f)),   e += g * u,   u += g * h,
    loss += -log sigmoid(f) if y == 1 else -log sigmoid(-f)

Hierarchical softmax skips the update (not the loss) of a node with |f| >= 6, as word2vec.c.

and after all steps of the example, h's source row(s) receive e.
"""

from __future__ import annotations

import numpy as np

from .. import _validate as v

__all__ = ["word2vec_sg_ns", "word2vec_sg_hs", "word2vec_sg_hs_window", "word2vec_cbow_ns",
           "word2vec_cbow_hs"]


def _weights(syn0, out, out_name):
    """syn0 and the output matrix: float arrays of one dtype, 2-D, same D, updated in place."""
    for a, name in ((syn0, "syn0"), (out, out_name)):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: expected a numpy.ndarray (updated in place), got {type(a).__name__}")
        if a.dtype not in v.FLOAT_DTYPES:
            raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {a.dtype}")
        v.check_ndim(a, name, (2,), "a 2-D weight matrix of shape (rows, D)")
        if not a.flags.c_contiguous:
            raise ValueError(f"{name}: must be C-contiguous (it is updated in place)")
        if not a.flags.writeable:
            raise ValueError(f"{name}: array is read-only")
    v.same_dtype(syn0, "syn0", **{out_name: out})
    if out.shape[1] != syn0.shape[1]:
        raise ValueError(f"{out_name}: D = {out.shape[1]} does not match syn0's D = {syn0.shape[1]}")


def _index(i, name, bound):
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(i).__name__}")
    if not 0 <= i < bound:
        raise ValueError(f"{name}: index {i} out of range [0, {bound})")
    return int(i)


def _indices(a, name, bound, dtype=np.int64):
    if isinstance(a, (list, tuple)) and len(a) == 0:
        a = np.zeros(0, dtype=np.int64)  # np.asarray([]) is float64
    a = v.index_array(a, name).reshape(-1)
    if a.size and (a.min() < 0 or a.max() >= bound):
        bad = a[(a < 0) | (a >= bound)][0]
        raise ValueError(f"{name}: index {bad} out of range [0, {bound})")
    return np.ascontiguousarray(a, dtype=dtype)


def _path(points, codes, syn1):
    points = _indices(points, "points", syn1.shape[0], np.int32)
    codes = _indices(codes, "codes", 2, np.uint8)
    if codes.shape != points.shape:
        raise ValueError(f"codes: shape {codes.shape} does not match points' shape {points.shape}")
    return points, codes


def _alpha(alpha):
    return v.real_scalar(alpha, "alpha")


def _ns_args(syn0, syn1neg, word, negatives, alpha):
    _weights(syn0, syn1neg, "syn1neg")
    if syn1neg.shape[0] != syn0.shape[0]:
        raise ValueError(f"syn1neg: expected {syn0.shape[0]} rows like syn0, got {syn1neg.shape[0]}")
    V = syn0.shape[0]
    return _index(word, "word", V), _indices(negatives, "negatives", V), _alpha(alpha)


def _hs_args(syn0, syn1, points, codes, alpha):
    _weights(syn0, syn1, "syn1")
    points, codes = _path(points, codes, syn1)
    return points, codes, _alpha(alpha)


MAX_EXP = 6.0  # hierarchical softmax leaves nodes with |f| >= MAX_EXP alone (word2vec.c)


def _step(h, u, e, label, alpha, skip_saturated=False):
    """One logistic step of h against the row u (in place on u and e); returns its loss."""
    f = h @ u
    loss = float(np.logaddexp(0.0, -float(f) if label == 1 else float(f)))
    if skip_saturated and abs(f) >= MAX_EXP:
        return loss
    g = h.dtype.type(alpha) * (h.dtype.type(label) - 1 / (1 + np.exp(-f)))
    e += g * u
    u += g * h
    return loss


def _ns(h, syn1neg, e, word, negatives, alpha):
    loss = _step(h, syn1neg[word], e, 1, alpha)
    for k in negatives:
        if k != word:  # word2vec.c skips a negative that is the word itself
            loss += _step(h, syn1neg[k], e, 0, alpha)
    return loss


def _hs(h, syn1, e, points, codes, alpha):
    # label 1 - code: code 0 is the branch predicted with sigmoid(f), as in word2vec.c
    return sum(_step(h, syn1[p], e, 1 - int(c), alpha, True) for p, c in zip(points, codes))


def _cbow_input(syn0, context, cbow_mean):
    h = syn0[context].sum(axis=0)
    return h / syn0.dtype.type(len(context)) if cbow_mean else h


def _cbow_apply(syn0, context, e, cbow_mean):
    if not cbow_mean:  # with the sum, each context row gets 1/C of the step (gensim)
        e *= syn0.dtype.type(1) / syn0.dtype.type(len(context))
    for c in context:  # a word repeated in the window receives the step once per occurrence
        syn0[c] += e


def _sg(syn0, context, objective):
    """Skip-gram: h is the row syn0[context]; it receives e after the objective's steps."""
    context = _index(context, "context", syn0.shape[0])
    h = syn0[context]
    e = np.zeros_like(h)
    loss = objective(h, e)
    syn0[context] += e
    return loss


def _cbow(syn0, context, cbow_mean, objective):
    """CBOW: h is the mean (or sum) of the context rows; each receives e (or e / C)."""
    context = _indices(context, "context", syn0.shape[0])
    if context.size == 0:
        return 0.0
    h = _cbow_input(syn0, context, cbow_mean)
    e = np.zeros_like(h)
    loss = objective(h, e)
    _cbow_apply(syn0, context, e, cbow_mean)
    return loss


def word2vec_sg_ns(syn0, syn1neg, word, context, negatives, alpha):
    """Skip-gram with negative sampling: syn0[context] predicts `word` (in place).

    word      : int, the predicted (center) word, label 1 against syn1neg[word]
    context   : int, the input word; its row syn0[context] is h
    negatives : int array of shape (K,), noise words, label 0 (entries equal to word skipped)
    alpha     : learning rate
    Updates syn1neg's rows and then syn0[context] += e. Returns the log-loss.
    """
    word, negatives, alpha = _ns_args(syn0, syn1neg, word, negatives, alpha)
    return _sg(syn0, context, lambda h, e: _ns(h, syn1neg, e, word, negatives, alpha))


def word2vec_sg_hs(syn0, syn1, context, points, codes, alpha):
    """Skip-gram with hierarchical softmax: syn0[context] predicts the word whose Huffman
    path is (points, codes) (in place).

    points : int array of shape (L,), the inner nodes (rows of syn1) from the root down
    codes  : 0/1 array of shape (L,), the branch taken at each node
    Returns the log-loss, sum over nodes of -log sigmoid((1 - 2 code) f).
    """
    points, codes, alpha = _hs_args(syn0, syn1, points, codes, alpha)
    return _sg(syn0, context, lambda h, e: _hs(h, syn1, e, points, codes, alpha))


def word2vec_sg_hs_window(syn0, syn1, contexts, points, codes, alpha):
    """Skip-gram with hierarchical softmax over a whole window as one batch (in place): every
    row syn0[contexts[c]] predicts the word whose Huffman path is (points, codes).

    The C examples of a window share the center word's path, so the window is two small
    matrix products. With X = syn0[contexts] (C, D) and N = syn1[points] (L, D) as they are
    before the call:
        F = N @ X.T (L, C),   G = alpha * (1 - codes[:, None] - sigmoid(F)), 0 where |F| >= 6
        syn1[points] += G @ X,   syn0[contexts] += G.T @ N  (a repeated context gets both steps)
    Calling word2vec_sg_hs once per context instead lets each later context see the nodes the
    earlier ones moved; the two differ by terms of order alpha^2. Word2Vec trains skip-gram
    with hierarchical softmax this way (window_batch=True): each node row is then written
    once per window rather than once per context.

    contexts : int array of shape (C,), the input words of the window
    points   : int array of shape (L,), distinct inner nodes (rows of syn1), root first
    codes    : 0/1 array of shape (L,)
    Returns the summed log-loss of the C * L logistic terms.
    """
    points, codes, alpha = _hs_args(syn0, syn1, points, codes, alpha)
    contexts = _indices(contexts, "contexts", syn0.shape[0])
    if len(np.unique(points)) != len(points):
        raise ValueError("points: the nodes of a path must be distinct")
    if contexts.size == 0 or points.size == 0:
        return 0.0
    X, N = syn0[contexts], syn1[points]
    F = N @ X.T
    labels = (1 - codes.astype(F.dtype))[:, None]
    loss = float(np.logaddexp(0.0, np.where(labels == 1, -F, F)).sum())
    G = F.dtype.type(alpha) * (labels - 1 / (1 + np.exp(-F)))
    G[np.abs(F) >= MAX_EXP] = 0
    syn1[points] += G @ X
    np.add.at(syn0, contexts, G.T @ N)
    return loss


def word2vec_cbow_ns(syn0, syn1neg, word, context, negatives, alpha, cbow_mean=True):
    """CBOW with negative sampling: the mean (cbow_mean) or sum h of syn0[context] predicts
    `word` (in place).

    context : int array of shape (C,), the window's words (no-op when C == 0)
    With the mean every context row receives the whole step e, with the sum e / C (gensim).
    """
    word, negatives, alpha = _ns_args(syn0, syn1neg, word, negatives, alpha)
    return _cbow(syn0, context, cbow_mean, lambda h, e: _ns(h, syn1neg, e, word, negatives, alpha))


def word2vec_cbow_hs(syn0, syn1, context, points, codes, alpha, cbow_mean=True):
    """CBOW with hierarchical softmax: the mean or sum of syn0[context] predicts the word
    whose Huffman path is (points, codes) (in place). See word2vec_cbow_ns, word2vec_sg_hs."""
    points, codes, alpha = _hs_args(syn0, syn1, points, codes, alpha)
    return _cbow(syn0, context, cbow_mean, lambda h, e: _hs(h, syn1, e, points, codes, alpha))
