"""GloVe: the AdaGrad step against its twin, co-occurrence counts against a brute-force
count (also over long sentences split into jobs), training sanity, token-id input, save /
load / continued training and bad input."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

import nnkern
from nnkern import _core, ops, reference
from nnkern.embeddings import _corpus

from conftest import assert_close
from test_word2vec import _topic_separation, encode, topic_corpus


def _params(rng, dtype, V=6, D=5, scale=1.0):
    W, C = (scale * rng.standard_normal((V, D))).astype(dtype), (scale * rng.standard_normal((V, D))).astype(dtype)
    bw, bc = rng.standard_normal(V).astype(dtype), rng.standard_normal(V).astype(dtype)
    gW, gC = (1 + rng.random((V, D))).astype(dtype), (1 + rng.random((V, D))).astype(dtype)
    gbw, gbc = (1 + rng.random(V)).astype(dtype), (1 + rng.random(V)).astype(dtype)
    return [W, C, bw, bc, gW, gC, gbw, gbc]


@pytest.mark.parametrize("x", [0.3, 7.0, 250.0])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: gradients beyond the clip value
@pytest.mark.parametrize("same", [False, True])  # i == j: W and C rows of one word
def test_glove_update_matches_twin(rng, dtype, x, scale, same):
    p = _params(rng, dtype, scale=scale)
    a, b = [q.copy() for q in p], [q.copy() for q in p]
    j = 2 if same else 4
    lo = ops.glove_update(*a, 2, j, x, 0.05, 100.0, 0.75)
    lr = reference.glove_update(*b, 2, j, x, 0.05, 100.0, 0.75)
    for u, w in zip(a, b):
        assert_close(u, w, dtype)
    np.testing.assert_allclose(lo, lr, rtol=1e-4)
    assert not np.array_equal(a[0], p[0])


@pytest.mark.parametrize("mod", [ops, reference], ids=["ops", "reference"])
def test_glove_update_is_glove_c_adagrad(mod):
    # one hand-checked step: W0 = (1, 0), C0 = (0.5, 2), biases 0, accumulators 1, x = x_max
    # (f = 1): diff = 0.5 - log(100). The vectors step by u = lr g and their accumulators
    # add u^2 (not g^2); the biases step by g itself, whatever the learning rate.
    W = np.array([[1.0, 0.0]])
    C = np.array([[0.5, 2.0]])
    bw, bc = np.zeros(1), np.zeros(1)
    gW, gC, gbw, gbc = np.ones((1, 2)), np.ones((1, 2)), np.ones(1), np.ones(1)
    lr = 0.05
    diff = 0.5 - np.log(100.0)
    loss = mod.glove_update(W, C, bw, bc, gW, gC, gbw, gbc, 0, 0, 100.0, lr, 100.0, 0.75)
    assert loss == pytest.approx(0.5 * diff * diff)
    uW, uC = lr * diff * np.array([0.5, 2.0]), lr * diff * np.array([1.0, 0.0])
    np.testing.assert_allclose(W[0], [1.0, 0.0] - uW)
    np.testing.assert_allclose(C[0], [0.5, 2.0] - uC)
    np.testing.assert_allclose(gW[0], 1 + uW ** 2)
    np.testing.assert_allclose(gC[0], 1 + uC ** 2)
    np.testing.assert_allclose([bw[0], bc[0], gbw[0], gbc[0]], [-diff, -diff, 1 + diff ** 2, 1 + diff ** 2])


@pytest.mark.parametrize("mod", [ops, reference], ids=["ops", "reference"])
def test_glove_update_skips_non_finite(mod):
    p = _params(np.random.default_rng(0), np.float32)
    p[0][1, 0] = np.inf
    before = [q.copy() for q in p]
    assert mod.glove_update(*p, 1, 3, 5.0) == 0.0
    for u, w in zip(p, before):
        np.testing.assert_array_equal(u, w)


def test_glove_update_descends():
    p = _params(np.random.default_rng(1), np.float64)
    l0 = reference.glove_update(*[q.copy() for q in p], 1, 3, 5.0, 0.0)
    ops.glove_update(*p, 1, 3, 5.0, 0.01)
    assert reference.glove_update(*[q.copy() for q in p], 1, 3, 5.0, 0.0) < l0


def brute_cooccur(sents, window, symmetric):
    X = defaultdict(float)
    for s in sents:
        for i in range(len(s)):
            for j in range(max(0, i - window), i):
                X[(s[i], s[j])] += 1.0 / (i - j)
                if symmetric:
                    X[(s[j], s[i])] += 1.0 / (i - j)
    return X


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("dense_words", [0, 3, 50])  # all sparse, mixed, all dense
def test_cooccurrence_counts(symmetric, dense_words):
    rng = np.random.default_rng(4)
    sents = [rng.integers(0, 20, size=n).astype(np.int32) for n in (1, 7, 300, 2, 1000, 40)]
    acc = _core.GloveCooccur(20, 4, symmetric, 2, dense_words, 1024)
    stream = [(s, True, len(s)) for s in sents]
    for k, job in enumerate(_corpus.jobs(iter(stream), 64, 4)):  # splits the long sentences
        acc.add(k % 2, job.tokens, job.sent_off, job.lead, job.trail)
    rows, cols, vals = acc.finish()
    keys = list(zip(rows.tolist(), cols.tolist()))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    X = brute_cooccur([s.tolist() for s in sents], 4, symmetric)
    assert set(keys) == set(X)
    np.testing.assert_allclose(vals, [X[k] for k in keys], rtol=1e-5)


def mixed_topic_corpus(n_sent=1500, seed=0, topics=4, words=40, length=15, mix=0.2):
    """Sentences of one topic each, with a share `mix` of words from a random topic. GloVe
    trains on observed pairs only: without some cross-topic pairs (and their low counts)
    the biases alone fit log X and nothing separates the topics."""
    rng = np.random.default_rng(seed)
    vocab = [[f"t{t}w{i}" for i in range(words)] for t in range(topics)]
    out = []
    for t in rng.integers(0, topics, size=n_sent):
        mixed = rng.random(length) < mix
        tt = np.where(mixed, rng.integers(0, topics, size=length), t)
        out.append([vocab[a][b] for a, b in zip(tt, rng.integers(0, words, size=length))])
    return out


def test_training_groups_words_by_topic():
    m = nnkern.GloVe(mixed_topic_corpus(), vector_size=16, window=5, min_count=1, epochs=15, x_max=10)
    same, other = _topic_separation(m.wv)
    assert same > other + 0.5, (same, other)
    assert m.epoch_losses[-1] < m.epoch_losses[0]
    assert np.isfinite(m.wv.vectors).all()
    np.testing.assert_array_equal(m.wv.vectors, m.W + m.C)


def test_workers1_reproducible_and_word_output():
    c = topic_corpus(200)
    a = nnkern.GloVe(c, vector_size=8, min_count=1, epochs=3, workers=1, output="word")
    b = nnkern.GloVe(c, vector_size=8, min_count=1, epochs=3, workers=1, output="word")
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    np.testing.assert_array_equal(a.wv.vectors, a.W)


def test_token_ids_train_like_token_lists():
    c = topic_corpus(300) + topic_corpus(5, seed=1, words=60)
    ids, words = encode(c, seed=5)
    kw = dict(vector_size=8, min_count=3, window=4, epochs=2, workers=1)
    a, b = nnkern.GloVe(c, **kw), nnkern.GloVe(nnkern.TokenIds(ids, words), **kw)
    assert a.wv.index_to_key == b.wv.index_to_key and len(a.wv) < len(words)
    for x, y in zip(a.cooccurrence, b.cooccurrence):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)


_STATE = ("W", "C", "bw", "bc", "gW", "gC", "gbw", "gbc")


def _assert_same_glove(a, b):
    assert a.wv.index_to_key == b.wv.index_to_key
    np.testing.assert_array_equal(a.wv.counts, b.wv.counts)
    for k in _STATE:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)
    np.testing.assert_array_equal(a.wv.vectors, b.wv.vectors)
    assert a.epoch_losses == b.epoch_losses and a.epochs_trained == b.epochs_trained


@pytest.mark.parametrize("output", ["sum", "word"])
def test_save_load_then_continue_training_is_identical(tmp_path, output):
    c = topic_corpus(300)
    kw = dict(vector_size=8, min_count=1, window=4, workers=1, seed=7, output=output)
    a = nnkern.GloVe(c, epochs=2, **kw)
    a.save(tmp_path / "g.npz")
    b = nnkern.GloVe.load(tmp_path / "g.npz")
    _assert_same_glove(a, b)
    for x, y in zip(a.cooccurrence, b.cooccurrence):
        np.testing.assert_array_equal(x, y)
    assert (b.x_max, b.window, b.output, b.seed) == (a.x_max, a.window, output, 7)
    a.train(epochs=3)
    b.train(epochs=3)
    _assert_same_glove(a, b)
    # and both equal five epochs in one call: the epoch's shuffle depends on (seed, epoch)
    _assert_same_glove(a, nnkern.GloVe(c, epochs=5, **kw))
    assert len(b.epoch_losses) == 5 and b.epoch_losses[-1] < b.epoch_losses[0]


def test_save_without_cooccurrence_needs_it_rebuilt(tmp_path):
    c = topic_corpus(200)
    a = nnkern.GloVe(c, vector_size=6, min_count=1, epochs=1, workers=1)
    a.save(tmp_path / "full.npz")
    a.save(tmp_path / "small.npz", cooccurrence=False)
    assert (tmp_path / "small.npz").stat().st_size < (tmp_path / "full.npz").stat().st_size
    b = nnkern.GloVe.load(tmp_path / "small.npz")
    assert b.cooccurrence is None
    with pytest.raises(RuntimeError, match="build_cooccurrence"):
        b.train(epochs=1)
    b.build_cooccurrence(c)
    a.train(epochs=1)
    b.train(epochs=1)
    _assert_same_glove(a, b)


def test_save_before_training(tmp_path):
    c = topic_corpus(100)
    m = nnkern.GloVe(vector_size=6, min_count=1, workers=1, epochs=2)
    m.build_vocab(c)
    m.build_cooccurrence(c)
    m.save(tmp_path / "g.npz")
    b = nnkern.GloVe.load(tmp_path / "g.npz")
    assert b.W is None and b.epochs_trained == 0 and not b.wv.vectors.any()
    b.train()
    _assert_same_glove(b, nnkern.GloVe(c, vector_size=6, min_count=1, workers=1, epochs=2))


def _rewrite(src, dst, **changes):
    with np.load(src) as z:
        data = {k: z[k] for k in z.files}
    for k, v in changes.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    np.savez(dst, **data)


def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path):
    c = topic_corpus(100)
    g = nnkern.GloVe(c, vector_size=4, min_count=1, epochs=1)
    g.save(tmp_path / "g.npz")
    w = nnkern.Word2Vec(c, vector_size=4, min_count=1, epochs=1)
    w.save(tmp_path / "w.npz")
    with pytest.raises(FileNotFoundError, match="fname: no such file"):
        nnkern.GloVe.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a model at all")
    (tmp_path / "empty.npz").write_bytes(b"")
    data = (tmp_path / "g.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    np.save(tmp_path / "array.npy", np.zeros(3))
    for name in ("junk", "empty", "cut", "array.npy"):
        name = name if name.endswith(".npy") else name + ".npz"
        with pytest.raises(ValueError, match=f"{name}' is not an nnkern GloVe model"):
            nnkern.GloVe.load(tmp_path / name)
    with pytest.raises(ValueError, match="holds an nnkern Word2Vec model, not a GloVe model"):
        nnkern.GloVe.load(tmp_path / "w.npz")
    with pytest.raises(ValueError, match="holds an nnkern GloVe model, not a Word2Vec model"):
        nnkern.Word2Vec.load(tmp_path / "g.npz")
    V = len(g.wv)
    bad = {
        "W shape": (dict(W=np.zeros((V, 5), np.float32)), r"'W' has shape \(%d, 5\)" % V),
        "gbc dtype": (dict(gbc=np.ones(V)), "'gbc' has .* dtype float64"),
        "no C": (dict(C=None), "no 'C' array"),
        "rows": (dict(rows=g.cooccurrence[0] + V), "co-occurrence indices outside"),
        "vals length": (dict(vals=g.cooccurrence[2][:-1]), "'vals' has shape"),
        "no key_off": (dict(key_off=None), "key_off"),
        "params": (dict(params=np.array(json.dumps({"model": "GloVe"}))), "params lack vector_size"),
        "params value": (dict(params=np.array(json.dumps(dict(
            json.loads(str(np.load(tmp_path / "g.npz")["params"])), window=0)))), "window"),
    }
    for what, (changes, match) in bad.items():
        _rewrite(tmp_path / "g.npz", tmp_path / "bad.npz", **changes)
        with pytest.raises(ValueError, match=match):
            nnkern.GloVe.load(tmp_path / "bad.npz")


def test_word2vec_files_without_a_model_tag_still_load(tmp_path):
    # files written before the "model" entry was stored are Word2Vec models
    w = nnkern.Word2Vec(topic_corpus(100), vector_size=4, min_count=1, epochs=1)
    w.save(tmp_path / "w.npz")
    params = json.loads(str(np.load(tmp_path / "w.npz")["params"]))
    del params["model"]
    _rewrite(tmp_path / "w.npz", tmp_path / "old.npz", params=np.array(json.dumps(params)))
    np.testing.assert_array_equal(nnkern.Word2Vec.load(tmp_path / "old.npz").wv.vectors, w.wv.vectors)
    _rewrite(tmp_path / "w.npz", tmp_path / "bad.npz", syn1neg=np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="not an nnkern Word2Vec model .*'syn1neg' has shape"):
        nnkern.Word2Vec.load(tmp_path / "bad.npz")


def test_no_nan_on_a_degenerate_corpus():
    # one word repeated: huge counts, every pair the same
    m = nnkern.GloVe([["a"] * 5000, ["a", "b"] * 10], vector_size=4, min_count=1, epochs=20,
                     learning_rate=1.0)
    assert np.isfinite(m.wv.vectors).all() and np.isfinite(m.epoch_losses).all()


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="corpus_iterable: the corpus is empty"):
        nnkern.GloVe([[]])
    with pytest.raises(ValueError, match="min_count"):
        nnkern.GloVe([["a"]], min_count=2)
    with pytest.raises(ValueError, match="nothing to train on"):
        nnkern.GloVe([["a"], ["b"]], min_count=1)
    with pytest.raises(ValueError, match="x_max"):
        nnkern.GloVe(x_max=0)
    with pytest.raises(ValueError, match="output"):
        nnkern.GloVe(output="both")
    with pytest.raises(FileNotFoundError, match="corpus_file"):
        nnkern.GloVe(corpus_file=str(tmp_path / "none"))
    with pytest.raises(RuntimeError, match="build_vocab"):
        nnkern.GloVe().build_cooccurrence([["a"]])
