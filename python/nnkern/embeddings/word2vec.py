"""nnkern.Word2Vec: gensim's Word2Vec API over nnkern's C++ training loop.

Parameters keep gensim's names and meanings, so ``gensim.models.Word2Vec(...)`` calls carry
over. Data handling (vocabulary, Huffman tree, alias table, reading the corpus, cutting it
into jobs) is Python + NumPy, except that a corpus_file is read, tokenised and looked up in
C++ (cpp/kernels/corpus.cpp); training runs in C++ (cpp/kernels/word2vec.cpp), one job per
call with the GIL released, over ``workers`` Python threads updating the same weights
without locks (Hogwild, as word2vec.c and gensim do). Differences from gensim:

- the training loss is always correct: accumulated in double per job and summed per epoch
  (``epoch_losses``), so it does not depend on the number of workers;
- workers=1 with a given seed reproduces the same vectors bit for bit;
- sentences longer than 10,000 tokens are not cut: long sentences are split over jobs with
  enough context on either side that no window is lost;
- sigmoid is exact (no 6-sigma table clipping).
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time

import numpy as np

from .. import _core
from . import _corpus, _persist, _vocab
from .keyedvectors import KeyedVectors, _check_int

logger = logging.getLogger(__name__)

_MASK64 = (1 << 64) - 1


def _job_seed(seed: int, epoch: int, job: int) -> int:
    # splitmix64-style mixing: different jobs and epochs get unrelated streams
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + job * 0x94D049BB133111EB) & _MASK64
    z ^= z >> 31
    return (z * 0xD6E8FEB86659FD93) & _MASK64


class Word2Vec:
    """Word2Vec(sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5,
    min_count=5, max_vocab_size=None, sample=1e-3, seed=1, workers=2, min_alpha=0.0001,
    sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1, epochs=5, max_final_vocab=None,
    compute_loss=True, batch_words=10000, callbacks=(), window_batch=True)

    sentences      iterable of token lists (iterated once per epoch; not a one-shot generator),
                   or a TokenIds: integer token ids with their vocabulary (see TokenIds)
    corpus_file    path of a UTF-8 text file, one sentence per line, whitespace-separated
    vector_size    D, the dimension of the word vectors
    window         maximum distance between the center and a context word (a width in
                   1..window is drawn for each center word)
    min_count      words seen fewer times are dropped
    max_vocab_size prune the rarest words while counting when the vocabulary exceeds this
    max_final_vocab raise min_count just enough to keep at most this many words
    sample         frequent-word subsampling threshold (0 disables)
    sg             1 skip-gram, 0 CBOW;   cbow_mean: 1 mean of the context vectors, 0 sum
    hs             1 hierarchical softmax;  negative: number of noise words (0 disables)
    ns_exponent    the noise distribution is unigram counts ** ns_exponent
    alpha, min_alpha  learning rate, decayed linearly from alpha to min_alpha over all epochs
    epochs         passes over the corpus;  workers: training threads;  seed: randomness
    batch_words    target number of tokens per job
    compute_loss   accumulate the log-loss (epoch_losses, get_latest_training_loss)
    window_batch   skip-gram with hierarchical softmax alone (sg=1, hs=1, negative=0): train
                   each window as one batch, all its contexts against the center word's path
                   as it was when the window started (nnkern.ops.word2vec_sg_hs_window), about
                   twice as fast; False runs the examples one by one like word2vec.c and
                   gensim. Other modes always run one by one.

    Hierarchical softmax uses the Huffman tree gensim builds (the same paths and codes);
    the attribute huffman_ties records the rule and is saved with the model, and models
    saved before it existed keep word2vec.c's tree ("nodes"; see _vocab.huffman).

    When sentences or corpus_file is given, the vocabulary is built and the model trained
    right away; otherwise call build_vocab() and train().
    """

    def __init__(self, sentences=None, corpus_file=None, vector_size=100, alpha=0.025, window=5,
                 min_count=5, max_vocab_size=None, sample=1e-3, seed=1, workers=2,
                 min_alpha=0.0001, sg=0, hs=0, negative=5, ns_exponent=0.75, cbow_mean=1,
                 epochs=5, max_final_vocab=None, compute_loss=True, batch_words=10000,
                 callbacks=(), window_batch=True):
        self.vector_size = _check_int(vector_size, "vector_size", 1)
        self.window = _check_int(window, "window", 1)
        self.min_count = _check_int(min_count, "min_count", 0)
        self.max_vocab_size = None if max_vocab_size is None else _check_int(max_vocab_size, "max_vocab_size", 1)
        self.max_final_vocab = None if max_final_vocab is None else _check_int(max_final_vocab, "max_final_vocab", 1)
        self.sample = _check_real(sample, "sample", 0.0)
        self.seed = _check_int(seed, "seed", 0)
        self.workers = _check_int(workers, "workers", 1)
        self.alpha = _check_real(alpha, "alpha", 0.0)
        self.min_alpha = _check_real(min_alpha, "min_alpha", 0.0)
        self.sg = _check_flag(sg, "sg")
        self.hs = _check_flag(hs, "hs")
        self.negative = _check_int(negative, "negative", 0)
        if not self.hs and self.negative == 0:
            raise ValueError("negative: must be > 0 when hs=0 (no training objective otherwise)")
        self.ns_exponent = _check_real(ns_exponent, "ns_exponent", None)
        self.cbow_mean = _check_flag(cbow_mean, "cbow_mean")
        self.epochs = _check_int(epochs, "epochs", 0)
        self.compute_loss = bool(compute_loss)
        self.batch_words = _check_int(batch_words, "batch_words", 1)
        self.callbacks = tuple(callbacks)
        self.window_batch = _check_flag(window_batch, "window_batch")

        self.wv = KeyedVectors(self.vector_size)
        self.syn1neg = None
        self.syn1 = None
        self.corpus_count = 0  # sentences in the last corpus scanned
        self.corpus_total_words = 0  # raw tokens in it
        self.effective_words = 0  # of which in the vocabulary (the unit of lr decay)
        self.epoch_losses: list[float] = []
        self.running_training_loss = 0.0
        self.epochs_trained = 0
        self.train_words_per_second = 0.0
        # how the Huffman tree breaks ties (_vocab.huffman); models loaded from files written
        # before the choice existed keep word2vec.c's "nodes"
        self.huffman_ties = "heap"
        self._tables = None

        if sentences is not None or corpus_file is not None:
            self.build_vocab(sentences, corpus_file=corpus_file)
            self.train(sentences, corpus_file=corpus_file, total_examples=self.corpus_count,
                       epochs=self.epochs)

    # ------------------------------------------------------------------------------------
    # vocabulary

    def scan_vocab(self, corpus_iterable=None, corpus_file=None):
        """Count words (one pass). Returns (Counter, sentences, raw tokens)."""
        return _corpus.scan(corpus_iterable, corpus_file, self.max_vocab_size)

    def build_vocab(self, corpus_iterable=None, corpus_file=None, update=False, progress_per=10000):
        """Build the vocabulary from a corpus (or, with update=True, add the new words of
        another corpus, counts added to the old ones) and (re)make the sampling tables.
        corpus_iterable is token lists or a TokenIds (whose vocabulary need not be the
        model's: words are matched by string). progress_per is accepted for gensim
        compatibility and ignored."""
        src = "corpus_file" if corpus_file is not None else "corpus_iterable"
        counts, n_sent, n_tok = self.scan_vocab(corpus_iterable, corpus_file)
        if update:
            if n_tok == 0:
                raise ValueError(f"{src}: the corpus is empty (no tokens in {n_sent} sentences)")
            if len(self.wv) == 0:
                raise RuntimeError("build_vocab(update=True): the model has no vocabulary yet; "
                                   "call build_vocab() first")
            self._update_vocab(counts)
        else:
            words, cnt = _vocab.vocabulary(counts, n_sent, n_tok, src, self.min_count,
                                           self.max_final_vocab)
            self.wv = KeyedVectors(self.vector_size)
            self.wv._set(words, self._init_rows(len(words), 0), cnt)
            D = self.vector_size
            self.syn1neg = np.zeros((len(words), D), np.float32) if self.negative else None
            self.syn1 = np.zeros((max(len(words) - 1, 1), D), np.float32) if self.hs else None
            self.huffman_ties = "heap"  # a new tree over new rows: today's rule
            self.epochs_trained = 0
        self.corpus_count, self.corpus_total_words = n_sent, n_tok
        self.effective_words = int(sum(counts.get(w, 0) for w in self.wv.index_to_key))
        self._make_tables()
        logger.info("vocabulary: %d words, %d of %d raw words in it", len(self.wv),
                    self.effective_words, n_tok)

    def _init_rows(self, n, start):
        # uniform in [-1, 1) / D as gensim 4 draws them (word2vec.c: [-0.5, 0.5) / D); rows
        # depend on the seed and their index only, so growing the vocabulary leaves existing
        # rows' init unchanged
        rng = np.random.default_rng([self.seed, start])
        u = rng.random((n, self.vector_size), dtype=np.float32)
        return ((u * 2 - 1) / self.vector_size).astype(np.float32)

    def _update_vocab(self, counts):
        wv = self.wv
        old_counts = wv.counts.copy()
        new_words = []
        for w, c in counts.items():
            i = wv.key_to_index.get(w)
            if i is not None:
                old_counts[i] += c
            elif c >= self.min_count:
                new_words.append(w)
        V0 = len(wv)
        new_counts = np.array([counts[w] for w in new_words], dtype=np.int64)
        vecs = np.concatenate([wv.vectors, self._init_rows(len(new_words), V0)]) if new_words else wv.vectors
        wv._set(wv.index_to_key + new_words, np.ascontiguousarray(vecs), np.concatenate([old_counts, new_counts]))
        V, D = len(wv), self.vector_size
        if self.negative:
            self.syn1neg = np.concatenate([self.syn1neg, np.zeros((V - V0, D), np.float32)])
        if self.hs:
            # the Huffman tree is rebuilt over all counts (as gensim does)
            self.syn1 = np.concatenate([self.syn1, np.zeros((max(V - 1, 1) - len(self.syn1), D), np.float32)])
        logger.info("vocabulary update: %d new words, %d in total", len(new_words), V)

    def _make_tables(self):
        cnt = self.wv.counts
        keep = _vocab.keep_thresholds(_vocab.keep_probabilities(cnt, self.sample))
        alias_prob = alias_idx = None
        if self.negative:
            alias_prob, alias_idx = _vocab.alias_table(cnt.astype(np.float64) ** self.ns_exponent)
        code_off = points = codes = None
        if self.hs:
            code_off, points, codes = _vocab.huffman(cnt, self.huffman_ties)
        self._tables = dict(keep=keep, alias_prob=alias_prob, alias_idx=alias_idx,
                            code_off=code_off, points=points, codes=codes)

    # ------------------------------------------------------------------------------------
    # training

    def train(self, corpus_iterable=None, corpus_file=None, total_examples=None, total_words=None,
              epochs=None, start_alpha=None, end_alpha=None, word_count=0, queue_factor=2,
              report_delay=1.0, compute_loss=None, callbacks=None, progress=None):
        """Train over the corpus for `epochs` passes (default: the model's epochs).

        The learning rate falls linearly from start_alpha (alpha) to end_alpha (min_alpha)
        over all the passes. As in gensim, total_examples or total_words says how large the
        corpus is (for the schedule); when neither is given the last scanned corpus's size is
        used. total_words counts raw tokens, like gensim's. word_count is accepted for gensim
        compatibility and ignored; queue_factor * workers jobs are queued ahead.

        Progress (words/s, alpha, each epoch's loss) goes to the logger every report_delay
        seconds, and to a tqdm bar when progress=True, or by default when tqdm is installed
        and stderr is a terminal.
        """
        if len(self.wv) == 0:
            raise RuntimeError("train: the model has no vocabulary; call build_vocab() first")
        _corpus.check_source(corpus_iterable, corpus_file, "corpus_iterable")
        show_bar = progress
        epochs = self.epochs if epochs is None else _check_int(epochs, "epochs", 0)
        a0 = self.alpha if start_alpha is None else _check_real(start_alpha, "start_alpha", 0.0)
        a1 = self.min_alpha if end_alpha is None else _check_real(end_alpha, "end_alpha", 0.0)
        if compute_loss is not None:
            self.compute_loss = bool(compute_loss)
        callbacks = self.callbacks if callbacks is None else tuple(callbacks)
        # the schedule's unit is in-vocabulary tokens; a raw total_words is scaled by the
        # in-vocabulary share of the last corpus scanned
        per_epoch = self.effective_words
        if total_words is not None:
            per_epoch = int(_check_int(total_words, "total_words", 1) * self.effective_words
                            / max(self.corpus_total_words, 1))
        elif total_examples is not None and self.corpus_count:
            per_epoch = int(_check_int(total_examples, "total_examples", 1) * self.effective_words
                            / self.corpus_count)
        total = max(per_epoch * epochs, 1)

        t = self._tables
        trainer = _core.W2VTrainer(
            self.wv.vectors, self.syn1neg, self.syn1, len(self.wv), self.vector_size, t["keep"],
            t["alias_prob"], t["alias_idx"], t["code_off"],
            t["points"], t["codes"], self.window, self.negative, bool(self.sg), bool(self.hs),
            bool(self.cbow_mean), self.compute_loss, bool(self.window_batch))

        jobs_q: queue.Queue = queue.Queue(maxsize=max(1, int(queue_factor)) * self.workers)
        lock = threading.Lock()
        results: dict = {}
        errors: list = []
        progress = {"words": 0, "kept": 0}

        def worker():
            while True:
                item = jobs_q.get()
                try:
                    if item is None:
                        return
                    key, job, al0, al1, seed = item
                    if errors:
                        continue
                    r = trainer.train_job(job.tokens, job.sent_off, job.lead, job.trail, al0, al1, seed)
                    with lock:
                        results[key] = r
                        progress["words"] += job.centers
                        progress["kept"] += r[2]
                except BaseException as exc:  # surfaced in the main thread
                    errors.append(exc)
                finally:
                    jobs_q.task_done()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.workers)]
        for th in threads:
            th.start()
        margin = 4 * self.window  # raw tokens: enough for `window` kept ones after subsampling
        corpus = _corpus.Corpus(corpus_iterable, corpus_file, self.wv.key_to_index)
        done = 0
        self.running_training_loss = 0.0
        t_start = time.perf_counter()
        trained_words = 0
        bar = _progress_bar(show_bar, total)
        try:
            for e in range(epochs):
                ep = self.epochs_trained
                t_ep = time.perf_counter()
                next_report = t_ep + report_delay
                w_ep0 = progress["words"]
                n_jobs = 0
                for j, job in enumerate(corpus.jobs(self.batch_words, margin)):
                    al0 = a0 - (a0 - a1) * min(done / total, 1.0)
                    done += job.centers
                    al1 = a0 - (a0 - a1) * min(done / total, 1.0)
                    jobs_q.put(((ep, j), job, al0, al1, _job_seed(self.seed, ep, j)))
                    n_jobs += 1
                    if errors:
                        break
                    now = time.perf_counter()
                    if now >= next_report:
                        w = progress["words"] - w_ep0
                        logger.info("EPOCH %d - PROGRESS: at %.2f%% words, %.0f words/s, alpha %.5f",
                                    ep, 100.0 * w / max(per_epoch, 1), w / (now - t_ep), al0)
                        next_report = now + report_delay
                        if bar is not None:
                            bar.update(progress["words"] - bar.n)
                jobs_q.join()  # epoch barrier: the epoch's loss is complete
                if errors:
                    raise errors[0]
                loss = 0.0
                for j in range(n_jobs):  # in job order: the sum does not depend on scheduling
                    loss += results.pop((ep, j))[0]
                dt = time.perf_counter() - t_ep
                w = progress["words"] - w_ep0
                trained_words += w
                self.epoch_losses.append(loss)
                self.running_training_loss += loss
                self.epochs_trained += 1
                logger.info("EPOCH %d: %d words in %.2fs, %.0f words/s, loss %.6g%s", ep, w, dt,
                            w / max(dt, 1e-9), loss, "" if self.compute_loss else " (not computed)")
                if bar is not None:
                    bar.update(progress["words"] - bar.n)
                    bar.set_postfix(epoch=ep, loss=f"{loss:.4g}", words_per_s=f"{w / max(dt, 1e-9):.0f}")
                for cb in callbacks:
                    cb(self)
        finally:
            if bar is not None:
                bar.close()
            for _ in threads:
                jobs_q.put(None)
            for th in threads:
                th.join()
        elapsed = time.perf_counter() - t_start
        self.train_words_per_second = trained_words / max(elapsed, 1e-9)
        logger.info("training on %d words took %.1fs, %.0f words/s", trained_words, elapsed,
                    self.train_words_per_second)
        return trained_words, progress["kept"]

    def get_latest_training_loss(self) -> float:
        """Summed log-loss of the last train() call (gensim's meaning, computed in double)."""
        return self.running_training_loss

    # ------------------------------------------------------------------------------------
    # persistence

    _INIT = ("vector_size", "window", "min_count", "max_vocab_size", "max_final_vocab", "sample",
             "seed", "workers", "alpha", "min_alpha", "sg", "hs", "negative", "ns_exponent",
             "cbow_mean", "epochs", "compute_loss", "batch_words", "window_batch")
    # what files written before a parameter existed meant
    _DEFAULTS = {"window_batch": 0, "huffman_ties": "nodes"}
    _STATE = ("corpus_count", "corpus_total_words", "effective_words", "epochs_trained", "epoch_losses",
              "huffman_ties")

    def save(self, fname):
        """Save everything needed to continue training (a NumPy .npz archive, no pickle)."""
        _persist.save_model(self, fname,
                            dict(vectors=self.wv.vectors, syn1neg=self.syn1neg, syn1=self.syn1))

    @classmethod
    def load(cls, fname):
        """Load a model written by save(). A missing file raises FileNotFoundError; a file
        that is not a Word2Vec model, or is truncated or inconsistent, raises ValueError."""
        m, keys, data = _persist.load_model(cls, fname)
        if m.huffman_ties not in _vocab.HUFFMAN_TIES:
            raise _persist.bad_file(fname, "Word2Vec", f"huffman_ties {m.huffman_ties!r}")
        V, D = len(keys), m.vector_size
        spec = dict(vectors=((V, D), np.float32), counts=((V,), np.int64))
        if m.negative:
            spec["syn1neg"] = ((V, D), np.float32)
        if m.hs:
            spec["syn1"] = ((max(V - 1, 1), D), np.float32)
        a = _persist.arrays(fname, "Word2Vec", data, spec)
        m.wv._set(keys, a["vectors"], a["counts"])
        m.syn1neg = a.get("syn1neg")
        m.syn1 = a.get("syn1")
        m._make_tables()
        return m

    def __repr__(self):
        return (f"Word2Vec<vocab={len(self.wv)}, vector_size={self.vector_size}, "
                f"{'sg' if self.sg else 'cbow'}, {'hs' if self.hs else ''}"
                f"{'+' if self.hs and self.negative else ''}{'ns' if self.negative else ''}>")


def _progress_bar(progress, total):
    """A tqdm bar over `total` words, or None (then progress goes to the logger only)."""
    if progress is False:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    if progress is None and not (hasattr(sys.stderr, "isatty") and sys.stderr.isatty()):
        return None
    return tqdm(total=total, unit="word", unit_scale=True, desc="Word2Vec")


def _check_real(x, name, min_value):
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    x = float(x)
    if not np.isfinite(x) or (min_value is not None and x < min_value):
        raise ValueError(f"{name}: must be finite{'' if min_value is None else f' and >= {min_value}'}, got {x}")
    return x


def _check_flag(x, name):
    if x not in (0, 1, True, False):
        raise ValueError(f"{name}: expected 0 or 1, got {x!r}")
    return int(x)
