"""KeyedVectors: lookups, similarity queries and evaluations against gensim on the same
vectors, and the word2vec file format byte-compatible with gensim both ways."""

from __future__ import annotations

import os

import numpy as np
import pytest

import nnkern
from nnkern import KeyedVectors


def make_kv(V=60, D=8, seed=0, keys=None):
    rng = np.random.default_rng(seed)
    keys = keys or [f"w{i}" for i in range(V)] + ["ünï", "日本"]
    kv = KeyedVectors(D)
    kv._set(keys, rng.standard_normal((len(keys), D)).astype(np.float32), np.arange(len(keys), 0, -1))
    return kv


def to_gensim(kv):
    gensim = pytest.importorskip("gensim")
    g = gensim.models.KeyedVectors(kv.vector_size)
    g.add_vectors(kv.index_to_key, kv.vectors)
    for k, c in zip(kv.index_to_key, kv.counts):
        g.set_vecattr(k, "count", int(c))
    return g


def test_lookup():
    kv = make_kv()
    assert kv["w3"].shape == (8,)
    np.testing.assert_array_equal(kv[["w1", "w2"]], kv.vectors[[1, 2]])
    assert kv.key_to_index["w5"] == 5 and kv.index_to_key[5] == "w5"
    assert "w1" in kv and "nope" not in kv and len(kv) == 62
    with pytest.raises(KeyError):
        kv["nope"]
    with pytest.raises(KeyError):
        kv.most_similar("nope")
    with pytest.raises(KeyError):
        kv.similarity("w1", "nope")


def test_queries_match_gensim():
    kv = make_kv()
    g = to_gensim(kv)
    for pos, neg in [(["w1"], []), (["w1", "w2"], ["w3"]), ("w7", None), ([kv["w4"]], ["w9"])]:
        ours = kv.most_similar(positive=pos, negative=neg, topn=7)
        theirs = g.most_similar(positive=pos, negative=neg, topn=7)
        assert [k for k, _ in ours] == [k for k, _ in theirs]
        np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], rtol=1e-5, atol=1e-6)
    assert kv.similarity("w1", "w2") == pytest.approx(float(g.similarity("w1", "w2")), abs=1e-6)
    words = ["w1", "w2", "w3", "w4", "nope"]
    assert kv.doesnt_match(words) == g.doesnt_match(words[:4])


def _gensim_data(name):
    gensim = pytest.importorskip("gensim")
    from gensim.test.utils import datapath

    del gensim
    return datapath(name)


def test_evaluations_match_gensim(tmp_path):
    gensim = pytest.importorskip("gensim")
    # vectors for every word of the two evaluation files, the same in both libraries
    ws = _gensim_data("wordsim353.tsv")
    qw = _gensim_data("questions-words.txt")
    words = []
    with open(ws, encoding="utf8") as f:
        for line in f:
            if not line.startswith("#"):
                words += line.split("\t")[:2]
    with open(qw, encoding="utf8") as f:
        for line in f:
            if not line.startswith(":"):
                words += line.split()
    keys = list(dict.fromkeys(words))
    rng = np.random.default_rng(1)
    # structured enough that some analogies come out right
    base = rng.standard_normal((len(keys), 16)).astype(np.float32)
    kv = KeyedVectors(16)
    kv._set(keys, base, np.arange(len(keys), 0, -1))
    g = to_gensim(kv)
    p_ours, s_ours, oov_ours = kv.evaluate_word_pairs(ws)
    p_g, s_g, oov_g = g.evaluate_word_pairs(ws)
    np.testing.assert_allclose(p_ours, tuple(p_g), rtol=1e-4)
    np.testing.assert_allclose(s_ours, (s_g.statistic, s_g.pvalue), rtol=1e-4)
    assert oov_ours == pytest.approx(oov_g)
    acc_o, sec_o = kv.evaluate_word_analogies(qw, restrict_vocab=2000)
    acc_g, sec_g = g.evaluate_word_analogies(qw, restrict_vocab=2000)
    assert acc_o == pytest.approx(acc_g)
    assert [s["section"] for s in sec_o] == [s["section"] for s in sec_g]
    assert [len(s["correct"]) for s in sec_o] == [len(s["correct"]) for s in sec_g]
    assert [len(s["incorrect"]) for s in sec_o] == [len(s["incorrect"]) for s in sec_g]
    del gensim


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_round_trip(tmp_path, binary):
    kv = make_kv()
    f = tmp_path / "v.bin"
    kv.save_word2vec_format(f, binary=binary)
    back = KeyedVectors.load_word2vec_format(f, binary=binary)
    assert back.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(back.vectors, kv.vectors)


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_format_byte_identical_to_gensim(tmp_path, binary):
    kv = make_kv()
    g = to_gensim(kv)
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    kv.save_word2vec_format(ours, binary=binary)
    g.save_word2vec_format(str(theirs), binary=binary)
    assert ours.read_bytes() == theirs.read_bytes()
    # and each reads the other's
    from gensim.models import KeyedVectors as GKV

    g2 = GKV.load_word2vec_format(str(ours), binary=binary)
    assert g2.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(g2.vectors, kv.vectors)
    back = KeyedVectors.load_word2vec_format(theirs, binary=binary)
    np.testing.assert_array_equal(back.vectors, kv.vectors)


@pytest.mark.parametrize("name,binary", [("euclidean_vectors.bin", True),
                                          ("EN.1-10.cbow1_wind5_hs0_neg10_size300_smpl1e-05.txt", False)])
def test_reads_gensims_test_files(name, binary):
    from gensim.models import KeyedVectors as GKV

    path = _gensim_data(name)
    ours = KeyedVectors.load_word2vec_format(path, binary=binary)
    theirs = GKV.load_word2vec_format(path, binary=binary)
    assert ours.index_to_key == theirs.index_to_key
    np.testing.assert_array_equal(ours.vectors, theirs.vectors)


def test_trained_model_vectors_load_in_gensim(tmp_path):
    pytest.importorskip("gensim")
    from gensim.models import KeyedVectors as GKV

    m = nnkern.Word2Vec([["a", "b", "c", "a"]] * 20, vector_size=6, min_count=1, epochs=1)
    f = tmp_path / "m.bin"
    m.wv.save_word2vec_format(f, binary=True)
    g = GKV.load_word2vec_format(str(f), binary=True)
    np.testing.assert_array_equal(g["a"], m.wv["a"])


@pytest.mark.parametrize("content,binary,match", [
    (b"", False, "no header"),
    (b"2 3\na 1 2 3\n", False, "1 vectors, the header says 2"),
    (b"1 3\na 1 2\n", False, "line 2 has 2 values"),
    (b"1 2\na 1 x\n", False, "not a number"),
    (b"x y\n", False, "header"),
    (b"2 3\na " + np.ones(3, np.float32).tobytes(), True, "truncated at vector 1"),
    (b"1 2\n\xff\xfe " + np.ones(2, np.float32).tobytes(), True, "not valid utf8"),
])
def test_corrupt_word2vec_files(tmp_path, content, binary, match):
    f = tmp_path / "bad"
    f.write_bytes(content)
    with pytest.raises(ValueError, match=f"fname: .*{match}"):
        KeyedVectors.load_word2vec_format(f, binary=binary)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="fname"):
        KeyedVectors.load_word2vec_format(tmp_path / "none")
    kv = make_kv()
    with pytest.raises(FileNotFoundError, match="pairs"):
        kv.evaluate_word_pairs(os.fspath(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="analogies"):
        kv.evaluate_word_analogies(os.fspath(tmp_path / "none"))
