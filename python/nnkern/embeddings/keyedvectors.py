"""nnkern.KeyedVectors: a vocabulary of keys with one vector each, gensim's API.

Queries are batched NumPy (one matrix product per query or per block of analogy
questions). The word2vec file format, text and binary, is read and written byte-compatibly
with gensim and word2vec.c.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

logger = logging.getLogger(__name__)


def _check_int(x, name, min_value):
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(x).__name__}")
    if x < min_value:
        raise ValueError(f"{name}: must be >= {min_value}, got {x}")
    return int(x)


def _unit(m):
    n = np.linalg.norm(m, axis=-1, keepdims=True)
    return m / np.where(n > 0, n, 1)


class KeyedVectors:
    """Keys (words) with a vector each: ``vectors`` (V, D), ``index_to_key``, ``key_to_index``.

    KeyedVectors(vector_size, count=0, dtype=float32) makes an empty (or zero-filled) set;
    add vectors with add_vectors, or load a word2vec file with load_word2vec_format.
    """

    def __init__(self, vector_size, count=0, dtype=np.float32):
        self.vector_size = _check_int(vector_size, "vector_size", 1)
        count = _check_int(count, "count", 0)
        self.vectors = np.zeros((count, self.vector_size), dtype=dtype)
        self.index_to_key: list = [None] * count
        self.key_to_index: dict = {}
        self.counts = np.zeros(count, dtype=np.int64)
        self._norms = None

    def _set(self, keys, vectors, counts=None):
        self.index_to_key = list(keys)
        self.key_to_index = {k: i for i, k in enumerate(self.index_to_key)}
        if len(self.key_to_index) != len(self.index_to_key):
            raise ValueError("keys: duplicate keys")
        self.vectors = vectors
        self.counts = np.zeros(len(keys), np.int64) if counts is None else np.asarray(counts, np.int64)
        self._norms = None

    def add_vectors(self, keys, weights):
        """Append keys with their vectors (existing keys are overwritten)."""
        if isinstance(keys, str):
            keys, weights = [keys], np.asarray(weights).reshape(1, -1)
        weights = np.asarray(weights, dtype=self.vectors.dtype).reshape(len(keys), self.vector_size)
        new = []
        for k, w in zip(keys, weights):
            i = self.key_to_index.get(k)
            if i is None:
                new.append((k, w))
            else:
                self.vectors[i] = w
        if new:
            self._set(self.index_to_key + [k for k, _ in new],
                      np.concatenate([self.vectors, np.array([w for _, w in new])]),
                      np.concatenate([self.counts, np.zeros(len(new), np.int64)]))
        self._norms = None

    # ------------------------------------------------------------------------------------
    # lookup

    def __len__(self):
        return len(self.index_to_key)

    def __contains__(self, key):
        return key in self.key_to_index

    def has_index_for(self, key):
        return key in self.key_to_index

    def get_index(self, key, default=None):
        i = self.key_to_index.get(key)
        if i is None:
            if default is not None:
                return default
            raise KeyError(f"Key '{key}' not present")
        return i

    def get_vector(self, key, norm=False):
        i = self.get_index(key)
        return self.get_normed_vectors()[i] if norm else self.vectors[i]

    def __getitem__(self, key_or_keys):
        if isinstance(key_or_keys, (list, tuple, np.ndarray)):
            return np.vstack([self.get_vector(k) for k in key_or_keys]) if len(key_or_keys) else \
                np.zeros((0, self.vector_size), self.vectors.dtype)
        return self.get_vector(key_or_keys)

    def get_vecattr(self, key, attr):
        if attr != "count":
            raise KeyError(f"attr: only 'count' is stored, got {attr!r}")
        return int(self.counts[self.get_index(key)])

    def fill_norms(self, force=False):
        if self._norms is None or force or len(self._norms) != len(self.vectors):
            self._norms = np.linalg.norm(self.vectors, axis=1)

    def get_normed_vectors(self):
        self.fill_norms()
        n = self._norms
        return self.vectors / np.where(n > 0, n, 1)[:, None]

    # ------------------------------------------------------------------------------------
    # similarity queries (cosine, as gensim)

    def _query(self, positive, negative):
        """Unit mean of the unit vectors of positive (+1) and negative (-1) keys or vectors,
        and the indices of the keys used (excluded from results)."""
        if isinstance(positive, (str, np.ndarray)) and not (isinstance(positive, np.ndarray) and positive.ndim == 2):
            positive = [positive]
        if isinstance(negative, (str, np.ndarray)) and not (isinstance(negative, np.ndarray) and negative.ndim == 2):
            negative = [negative]
        items = [(k, 1.0) for k in (positive or [])] + [(k, -1.0) for k in (negative or [])]
        if not items:
            raise ValueError("positive / negative: cannot compute similarity with no input")
        normed = self.get_normed_vectors()
        vecs, used = [], set()
        for k, w in items:
            if isinstance(k, np.ndarray):
                vecs.append(w * k.astype(np.float64))  # raw vectors are not normalised (gensim)
            else:
                i = self.get_index(k)
                used.add(i)
                vecs.append(w * normed[i])
        mean = _unit(np.mean(vecs, axis=0))
        return normed, mean, used

    def most_similar(self, positive=None, negative=None, topn=10, restrict_vocab=None):
        """The topn keys closest by cosine to the mean of positive minus negative keys
        (3CosAdd), as [(key, similarity)]. topn=None returns all similarities."""
        normed, mean, used = self._query(positive, negative)
        if restrict_vocab is not None:
            normed = normed[:restrict_vocab]
        dists = normed @ mean.astype(normed.dtype)
        if topn is None:
            return dists
        topn = _check_int(topn, "topn", 0)
        k = min(topn + len(used), len(dists))
        best = np.argpartition(-dists, k - 1)[:k] if k < len(dists) else np.arange(len(dists))
        best = best[np.argsort(-dists[best], kind="stable")]
        return [(self.index_to_key[i], float(dists[i])) for i in best if i not in used][:topn]

    def similar_by_vector(self, vector, topn=10, restrict_vocab=None):
        return self.most_similar(positive=[np.asarray(vector)], topn=topn, restrict_vocab=restrict_vocab)

    def similarity(self, w1, w2):
        """Cosine similarity of two keys."""
        a, b = self.get_vector(w1), self.get_vector(w2)
        return float(np.dot(_unit(a), _unit(b)))

    def n_similarity(self, ws1, ws2):
        if not len(ws1) or not len(ws2):
            raise ValueError("ws1 / ws2: at least one key in each list is needed")
        return float(np.dot(_unit(self[list(ws1)].mean(axis=0)), _unit(self[list(ws2)].mean(axis=0))))

    def distance(self, w1, w2):
        return 1.0 - self.similarity(w1, w2)

    def doesnt_match(self, words):
        """The key furthest from the mean of the others' unit vectors (unknown keys ignored,
        as gensim does)."""
        used = [w for w in words if w in self.key_to_index]
        if not used:
            raise ValueError("words: none of the words are in the vocabulary")
        vecs = self.get_normed_vectors()[[self.key_to_index[w] for w in used]]
        mean = _unit(vecs.mean(axis=0))
        return used[int(np.argmin(vecs @ mean))]

    # ------------------------------------------------------------------------------------
    # evaluation (gensim's conventions)

    def _ok_vocab(self, restrict_vocab, case_insensitive):
        keys = self.index_to_key[:restrict_vocab]
        if case_insensitive:  # the most frequent casing wins
            return {k.upper(): i for i, k in reversed(list(enumerate(keys)))}
        return {k: i for i, k in enumerate(keys)}

    def evaluate_word_pairs(self, pairs, delimiter="\t", encoding="utf8", restrict_vocab=300000,
                            case_insensitive=True, dummy4unknown=False):
        """Correlation of model similarities with human judgements (e.g. wordsim353.tsv).

        Lines "word1<delimiter>word2<delimiter>score"; '#' lines are comments. Returns
        ((pearson_r, p), (spearman_rho, p), oov_ratio_percent), like gensim.
        """
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        normed = self.get_normed_vectors()
        sims, gold, oov = [], [], 0
        for lineno, line in enumerate(_read_lines(pairs, encoding, "pairs"), 1):
            if not line or line.startswith("#"):
                continue
            parts = line.split(delimiter)
            if len(parts) != 3:
                logger.info("skipping invalid line #%d in %s", lineno, pairs)
                continue
            a, b = (p.upper() if case_insensitive else p for p in parts[:2])
            try:
                score = float(parts[2])
            except ValueError:
                logger.info("skipping invalid line #%d in %s", lineno, pairs)
                continue
            if a not in ok or b not in ok:
                oov += 1
                if dummy4unknown:
                    sims.append(0.0)
                    gold.append(score)
                continue
            sims.append(float(normed[ok[a]] @ normed[ok[b]]))
            gold.append(score)
        if len(gold) < 3:
            raise ValueError(f"pairs: fewer than 3 usable word pairs in {pairs!r}")
        sims_a, gold_a = np.array(sims), np.array(gold)
        pearson = _pearson(sims_a, gold_a)
        spearman = _pearson(_rank(sims_a), _rank(gold_a))
        oov_ratio = 100.0 * oov / (len(gold) + oov) if not dummy4unknown else 100.0 * oov / len(gold)
        return pearson, spearman, oov_ratio

    def evaluate_word_analogies(self, analogies, restrict_vocab=300000, case_insensitive=True,
                                dummy4unknown=False):
        """Analogy accuracy (a : b :: c : ?, 3CosAdd: argmax cos(x, b - a + c)) on a file in
        questions-words.txt format (': section' lines then 'a b c expected').

        Questions with a word outside the first restrict_vocab words are skipped (or counted
        wrong with dummy4unknown). Returns (accuracy, sections) like gensim: sections is a
        list of {'section', 'correct', 'incorrect'} ending with 'Total accuracy'.
        """
        ok = self._ok_vocab(restrict_vocab, case_insensitive)
        normed = self.get_normed_vectors()[:restrict_vocab]
        ok_keys = [k.upper() if case_insensitive else k for k in self.index_to_key[:restrict_vocab]]
        sections, section, oov, quads = [], None, 0, []
        for lineno, line in enumerate(_read_lines(analogies, "utf8", "analogies"), 1):
            if line.startswith(": "):
                if section:
                    sections.append(section)
                section = {"section": line[2:].strip(), "correct": [], "incorrect": [], "_q": []}
                continue
            if not line.strip():
                continue
            if section is None:
                raise ValueError(f"analogies: {analogies!r} line {lineno}: a question before the first ': section' line")
            words = line.split()
            if len(words) != 4:
                logger.info("skipping invalid line #%d in %s", lineno, analogies)
                continue
            words = [w.upper() if case_insensitive else w for w in words]
            if any(w not in ok for w in words):
                oov += 1
                if dummy4unknown:
                    section["incorrect"].append(tuple(words))
                continue
            section["_q"].append(tuple(words))
        if section:
            sections.append(section)
        # Batched 3CosAdd over all questions of a section.
        for sec in sections:
            qs = sec.pop("_q")
            for start in range(0, len(qs), 1024):
                block = qs[start:start + 1024]
                idx = np.array([[ok[w] for w in q[:3]] for q in block])
                query = normed[idx[:, 1]] + normed[idx[:, 2]] - normed[idx[:, 0]]
                sims = query @ normed.T
                sims[np.arange(len(block))[:, None], idx] = -np.inf
                k = min(5, sims.shape[1])
                top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
                top = np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, 1), 1, kind="stable"), 1)
                for q, row in zip(block, top):
                    ignore = set(q[:3])
                    predicted = None
                    for i in row:
                        if ok_keys[i] in ok and ok_keys[i] not in ignore:
                            predicted = ok_keys[i]
                            break
                    (sec["correct"] if predicted == q[3] else sec["incorrect"]).append(q)
        correct = sum(len(s["correct"]) for s in sections)
        incorrect = sum(len(s["incorrect"]) for s in sections)
        total = {"section": "Total accuracy",
                 "correct": [q for s in sections for q in s["correct"]],
                 "incorrect": [q for s in sections for q in s["incorrect"]]}
        sections.append(total)
        score = correct / (correct + incorrect) if correct + incorrect else 0.0
        logger.info("analogies: %.2f%% of %d questions (%d skipped, out of vocabulary)",
                    100 * score, correct + incorrect, oov)
        return score, sections

    # ------------------------------------------------------------------------------------
    # the word2vec file format

    def save_word2vec_format(self, fname, fvocab=None, binary=False, total_vec=None,
                             write_header=True):
        """Write word2vec.c's format: a header "V D", then per key either a text line
        "key v1 v2 ..." (str() of each float32, as gensim) or, binary, "key " and D
        little-endian float32 values. Keys in index order (most frequent first)."""
        total_vec = len(self) if total_vec is None else total_vec
        vecs = self.vectors.astype(np.float32, copy=False)
        with open(fname, "wb") as f:
            if write_header:
                f.write(f"{total_vec} {self.vector_size}\n".encode("utf8"))
            if binary:
                for key, row in zip(self.index_to_key, vecs):
                    f.write(f"{key} ".encode("utf8") + row.astype("<f4").tobytes())
            else:
                for key, row in zip(self.index_to_key, vecs):
                    f.write(f"{key} {' '.join(str(v) for v in row)}\n".encode("utf8"))
        if fvocab is not None:
            with open(fvocab, "wb") as f:
                for key, c in zip(self.index_to_key, self.counts):
                    f.write(f"{key} {c}\n".encode("utf8"))

    @classmethod
    def load_word2vec_format(cls, fname, fvocab=None, binary=False, encoding="utf8",
                             unicode_errors="strict", limit=None, datatype=np.float32,
                             no_header=False):
        """Read a word2vec.c / gensim file (text or binary). Raises FileNotFoundError for a
        missing file and ValueError naming the file and position for a malformed one."""
        if not os.path.isfile(fname):
            raise FileNotFoundError(f"fname: no such file: {os.fspath(fname)!r}")
        with open(fname, "rb") as f:
            data = f.read()
        name = os.fspath(fname)

        def bad(msg):
            return ValueError(f"fname: {name!r} is not a valid word2vec {'binary' if binary else 'text'} file: {msg}")

        pos = 0
        if no_header:
            if binary:
                raise ValueError("no_header: only supported for text files (as in gensim)")
            first = data.split(b"\n", 1)[0].split()
            V, D = data.count(b"\n") + (not data.endswith(b"\n") and bool(data)), len(first) - 1
        else:
            nl = data.find(b"\n")
            if nl < 0:
                raise bad("no header line")
            try:
                V, D = (int(x) for x in data[:nl].split())
            except ValueError:
                raise bad(f"header {data[:nl][:50]!r} is not 'vocab_size vector_size'") from None
            pos = nl + 1
        if V < 0 or D < 1:
            raise bad(f"header says {V} vectors of size {D}")
        if limit is not None:
            V = min(V, _check_int(limit, "limit", 0))
        keys = []
        vectors = np.empty((V, D), dtype=datatype)
        if binary:
            nbytes = 4 * D
            for i in range(V):
                while pos < len(data) and data[pos:pos + 1] in (b"\n", b"\r"):
                    pos += 1  # word2vec.c puts a newline after each vector; gensim does not
                sp = data.find(b" ", pos)
                if sp < 0 or sp + 1 + nbytes > len(data):
                    raise bad(f"truncated at vector {i} of {V}")
                keys.append(_decode(data[pos:sp], encoding, unicode_errors, bad))
                vectors[i] = np.frombuffer(data, dtype="<f4", count=D, offset=sp + 1)
                pos = sp + 1 + nbytes
        else:
            lines = data[pos:].split(b"\n")
            i = 0
            for lineno, line in enumerate(lines, 2 - no_header):
                if i == V:
                    break
                parts = line.rstrip().split(b" ")
                if parts == [b""]:
                    continue
                if len(parts) != D + 1:
                    raise bad(f"line {lineno} has {len(parts) - 1} values, expected {D}")
                keys.append(_decode(parts[0], encoding, unicode_errors, bad))
                try:
                    vectors[i] = np.array(parts[1:], dtype=np.float64)
                except ValueError:
                    raise bad(f"line {lineno} has a value that is not a number") from None
                i += 1
            if i < V:
                raise bad(f"{i} vectors, the header says {V}")
        kv = cls(D, dtype=datatype)
        if len(set(keys)) != len(keys):
            raise bad("duplicate keys")
        counts = None
        if fvocab is not None:
            c = {}
            with open(fvocab, "rb") as f:
                for line in f:
                    w, n = line.rstrip(b"\n").rsplit(b" ", 1)
                    c[_decode(w, encoding, unicode_errors, bad)] = int(n)
            counts = [c.get(k, 0) for k in keys]
        else:  # gensim invents descending counts so that the order survives a re-save
            counts = np.arange(V, 0, -1)
        kv._set(keys, vectors, counts)
        return kv

    def __repr__(self):
        return f"KeyedVectors<vector_size={self.vector_size}, {len(self)} keys>"


def _decode(b, encoding, errors, bad):
    try:
        return b.decode(encoding, errors=errors)
    except UnicodeDecodeError:
        raise bad(f"key {b[:40]!r} is not valid {encoding}") from None


def _read_lines(path, encoding, argname):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{argname}: no such file: {os.fspath(path)!r}")
    with open(path, "rb") as f:
        for raw in f:
            try:
                yield raw.decode(encoding).rstrip("\r\n")
            except UnicodeDecodeError:
                raise ValueError(f"{argname}: {os.fspath(path)!r} is not valid {encoding}") from None


# -----------------------------------------------------------------------------------------
# correlations with their two-sided p-values (scipy's definitions, without scipy)


def _rank(x):
    """Ranks 1..n with ties averaged."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    xs = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _pearson(x, y):
    x = x - x.mean()
    y = y - y.mean()
    den = math.sqrt(float(x @ x) * float(y @ y))
    r = float(x @ y) / den if den > 0 else float("nan")
    n = len(x)
    if not np.isfinite(r):
        return r, float("nan")
    r = max(-1.0, min(1.0, r))
    if abs(r) == 1.0:
        return r, 0.0
    # t = r sqrt((n-2)/(1-r^2)) ~ Student t with n-2 degrees of freedom:
    # p = I_{df/(df+t^2)}(df/2, 1/2)
    df = n - 2
    t2 = r * r * df / (1 - r * r)
    return r, _betainc(df / 2.0, 0.5, df / (df + t2))


def _betainc(a, b, x):
    """Regularised incomplete beta I_x(a, b) by Lentz's continued fraction."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log1p(-x))
    if x > (a + 1) / (a + b + 2):
        return 1.0 - _betainc(b, a, 1 - x)
    tiny = 1e-300
    f, c, d = 1.0, 1.0, 0.0
    for i in range(400):
        m = i // 2
        if i == 0:
            num = 1.0
        elif i % 2 == 0:
            num = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            num = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + num * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + num / c
        c = c if abs(c) > tiny else tiny
        f *= c * d
        if abs(1.0 - c * d) < 1e-14:
            break
    return front * (f - 1.0) / a
