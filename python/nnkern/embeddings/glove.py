"""nnkern.GloVe: Global Vectors (Pennington, Socher and Manning 2014), following the
reference implementation (cooccur.c + glove.c) with the parameter names of its Python ports.

1. Vocabulary: words with at least min_count occurrences, most frequent first.
2. Co-occurrence counts X (C++, `workers` threads, GIL released): each pair of words at
   distance d <= window in a sentence adds 1/d to X[center, context] (and the transpose when
   symmetric). X is held as sorted sparse float32 triplets, never as a dense V x V matrix.
3. AdaGrad on the weighted least squares  sum f(X_ij) (w_i . c_j + b_i + b~_j - log X_ij)^2
   (C++, Hogwild over `workers` threads, pairs shuffled every epoch), f(x) = min(1,
   (x / x_max)^alpha), accumulators starting at 1, gradients clipped, non-finite steps
   skipped. The update is glove.c's own variant of AdaGrad (nnkern.ops.glove_update): vector
   accumulators sum the squared steps (learning rate included) and biases step without the
   learning rate, so at equal epochs the vectors and the loss match the reference's.
   ``model.wv`` holds W + C (output="sum", the paper's choice) or W alone ("word").
"""

from __future__ import annotations

import logging
import time

import numpy as np

from .. import _core
from . import _corpus, _persist, _vocab
from .keyedvectors import KeyedVectors, _check_int
from .word2vec import _check_real

logger = logging.getLogger(__name__)


class GloVe:
    """GloVe(sentences=None, corpus_file=None, vector_size=100, window=10, min_count=5,
    x_max=100, alpha=0.75, learning_rate=0.05, epochs=25, workers=2, seed=1, symmetric=True,
    max_vocab_size=None, output="sum")

    sentences is an iterable of token lists or a TokenIds (integer ids with their
    vocabulary); corpus_file a UTF-8 text file, one sentence per line. With either, the
    vocabulary, the co-occurrences and the vectors are built right away; otherwise call
    build_vocab(), build_cooccurrence() and train(). Each train() call continues from the
    current state (vectors, biases, AdaGrad sums), and epoch k shuffles the pairs with a
    generator seeded by (seed, k), so train(2) then train(3) equals train(5). epoch_losses
    holds the summed weighted squared error of each epoch; save() / load() keep it all.
    """

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, window=10, min_count=5,
                 x_max=100, alpha=0.75, learning_rate=0.05, epochs=25, workers=2, seed=1,
                 symmetric=True, max_vocab_size=None, output="sum"):
        self.vector_size = _check_int(vector_size, "vector_size", 1)
        self.window = _check_int(window, "window", 1)
        self.min_count = _check_int(min_count, "min_count", 0)
        self.x_max = _check_real(x_max, "x_max", 0.0)
        if self.x_max == 0:
            raise ValueError("x_max: must be > 0")
        self.alpha = _check_real(alpha, "alpha", 0.0)
        self.learning_rate = _check_real(learning_rate, "learning_rate", 0.0)
        self.epochs = _check_int(epochs, "epochs", 0)
        self.workers = _check_int(workers, "workers", 1)
        self.seed = _check_int(seed, "seed", 0)
        self.symmetric = bool(symmetric)
        self.max_vocab_size = None if max_vocab_size is None else _check_int(max_vocab_size, "max_vocab_size", 1)
        if output not in ("sum", "word"):
            raise ValueError(f"output: expected 'sum' (W + C) or 'word' (W), got {output!r}")
        self.output = output
        self.wv = KeyedVectors(self.vector_size)
        self.cooccurrence = None  # (rows, cols, vals)
        self.cooccurrence_seconds = None
        self.epoch_losses: list[float] = []
        self.epochs_trained = 0
        self.W = self.C = self.bw = self.bc = None  # word and context vectors and biases
        self.gW = self.gC = self.gbw = self.gbc = None  # their AdaGrad accumulators (glove.c's)
        if sentences is not None or corpus_file is not None:
            self.build_vocab(sentences, corpus_file=corpus_file)
            self.build_cooccurrence(sentences, corpus_file=corpus_file)
            self.train()

    def build_vocab(self, corpus_iterable=None, corpus_file=None):
        """The vocabulary of a corpus (token lists, a TokenIds or corpus_file); it starts the
        model afresh (co-occurrences and parameters of an earlier vocabulary are dropped)."""
        src = "corpus_file" if corpus_file is not None else "corpus_iterable"
        counts, n_sent, n_tok = _corpus.scan(corpus_iterable, corpus_file, self.max_vocab_size)
        words, cnt = _vocab.vocabulary(counts, n_sent, n_tok, src, self.min_count, None)
        self.wv = KeyedVectors(self.vector_size)
        self.wv._set(words, np.zeros((len(words), self.vector_size), np.float32), cnt)
        self.W = self.C = self.bw = self.bc = self.gW = self.gC = self.gbw = self.gbc = None
        self.cooccurrence = None
        self.epochs_trained = 0

    def build_cooccurrence(self, corpus_iterable=None, corpus_file=None, dense_words=2048,
                           buffer_pairs=1 << 22):
        """Count co-occurrences (sets self.cooccurrence and self.cooccurrence_seconds)."""
        if len(self.wv) == 0:
            raise RuntimeError("build_cooccurrence: no vocabulary; call build_vocab() first")
        _corpus.check_source(corpus_iterable, corpus_file, "corpus_iterable")
        t0 = time.perf_counter()
        acc = _core.GloveCooccur(len(self.wv), self.window, self.symmetric, self.workers,
                                 dense_words, buffer_pairs)
        corpus = _corpus.Corpus(corpus_iterable, corpus_file, self.wv.key_to_index)
        _corpus.run_jobs(corpus.jobs(100_000, self.window), self.workers,
                         lambda slot, j: acc.add(slot, j.tokens, j.sent_off, j.lead, j.trail))
        self.cooccurrence = acc.finish()
        self.cooccurrence_seconds = time.perf_counter() - t0
        logger.info("co-occurrences: %d non-zero pairs in %.2fs", len(self.cooccurrence[0]),
                    self.cooccurrence_seconds)
        return self.cooccurrence

    def train(self, epochs=None):
        """Run `epochs` more AdaGrad passes (default: the model's epochs) over the
        co-occurrences; returns their losses. The first call initialises the parameters."""
        if self.cooccurrence is None:
            raise RuntimeError("train: no co-occurrences; call build_cooccurrence() first (a "
                               "model saved with cooccurrence=False needs it again after load)")
        epochs = self.epochs if epochs is None else _check_int(epochs, "epochs", 0)
        rows, cols, vals = self.cooccurrence
        if len(rows) == 0:
            raise ValueError("corpus_iterable / corpus_file: no two vocabulary words ever occur "
                             "within `window` of each other; nothing to train on")
        V, D = len(self.wv), self.vector_size
        if self.W is None:  # glove.c: uniform in [-0.5, 0.5) / D, biases too; AdaGrad sums at 1
            rng = np.random.default_rng(self.seed)
            init = lambda *s: ((rng.random(s, dtype=np.float32) - 0.5) / D).astype(np.float32)  # noqa: E731
            self.W, self.C, self.bw, self.bc = init(V, D), init(V, D), init(V), init(V)
            self.gW, self.gC = np.ones((V, D), np.float32), np.ones((V, D), np.float32)
            self.gbw, self.gbc = np.ones(V, np.float32), np.ones(V, np.float32)
        nnz = len(rows)
        for e in range(epochs):
            t0 = time.perf_counter()
            # shuffle the triplets themselves: the epoch then reads them sequentially
            order = np.random.default_rng([self.seed, self.epochs_trained]).permutation(nnz)
            loss = _core.glove_epoch(self.W, self.C, self.bw, self.bc, self.gW, self.gC, self.gbw,
                                     self.gbc, V, D, rows[order], cols[order], vals[order],
                                     self.learning_rate, self.x_max, self.alpha, self.workers)
            del order
            dt = time.perf_counter() - t0
            self.epoch_losses.append(loss)
            logger.info("GloVe epoch %d: loss %.6g (%.6g per pair), %.2fs, %.2fM updates/s",
                        self.epochs_trained, loss, loss / nnz, dt, nnz / dt / 1e6)
            self.epochs_trained += 1
        self._publish()
        return self.epoch_losses[-epochs:] if epochs else []

    def _publish(self):
        # wv holds the output vectors; before training, zeros
        if self.W is None:
            vec = np.zeros((len(self.wv), self.vector_size), np.float32)
        else:
            vec = self.W + self.C if self.output == "sum" else self.W.copy()
        self.wv._set(self.wv.index_to_key, vec, self.wv.counts)

    # ------------------------------------------------------------------------------------
    # persistence

    _INIT = ("vector_size", "window", "min_count", "x_max", "alpha", "learning_rate", "epochs",
             "workers", "seed", "symmetric", "max_vocab_size", "output")
    _STATE = ("epochs_trained", "epoch_losses", "cooccurrence_seconds")
    _ARRAYS = ("W", "C", "bw", "bc", "gW", "gC", "gbw", "gbc")

    def save(self, fname, cooccurrence=True):
        """Save the model so that training can continue after load(): hyperparameters, the
        vocabulary with counts, W, C, both biases, their AdaGrad sums, the losses so far and,
        with cooccurrence=True, the co-occurrence triplets (12 bytes per non-zero pair).
        With cooccurrence=False the file is smaller, and a loaded model needs
        build_cooccurrence() over the same corpus before train(). A NumPy .npz archive, no
        pickle; the output vectors are not stored (they are W + C or W)."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS}
        if cooccurrence and self.cooccurrence is not None:
            arrays.update(zip(("rows", "cols", "vals"), self.cooccurrence))
        _persist.save_model(self, fname, arrays)

    @classmethod
    def load(cls, fname):
        """Load a model written by save(). A missing file raises FileNotFoundError; a file
        that is not a GloVe model, or is truncated or inconsistent, raises ValueError."""
        m, keys, data = _persist.load_model(cls, fname)
        V, D = len(keys), m.vector_size
        spec = {"counts": ((V,), np.int64)}
        if "W" in data:  # a trained model
            spec.update({k: ((V, D) if k in ("W", "C", "gW", "gC") else (V,), np.float32) for k in cls._ARRAYS})
        if "rows" in data:
            nnz = data["rows"].shape[:1]
            spec.update(rows=(nnz, np.int32), cols=(nnz, np.int32), vals=(nnz, np.float32))
        a = _persist.arrays(fname, "GloVe", data, spec)
        for k in cls._ARRAYS:
            setattr(m, k, a.get(k))
        if "rows" in a:
            rc = np.concatenate([a["rows"], a["cols"]])
            if len(rc) and (rc.min() < 0 or rc.max() >= V):
                raise _persist.bad_file(fname, "GloVe", f"co-occurrence indices outside the "
                                        f"vocabulary of {V} words")
            m.cooccurrence = (a["rows"], a["cols"], a["vals"])
        m.wv._set(keys, np.zeros((V, D), np.float32), a["counts"])
        m._publish()
        return m

    def __repr__(self):
        return (f"GloVe<vocab={len(self.wv)}, vector_size={self.vector_size}, window={self.window}, "
                f"epochs_trained={self.epochs_trained}>")
