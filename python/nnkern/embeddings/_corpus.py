"""Corpus reading and job building.

A corpus is either an iterable of token lists (``sentences``) or a text file with one
sentence per line (``corpus_file``), read in fixed-size blocks so memory never grows with
the corpus, not even for a corpus that is a single line (text8). Both become a stream of
*pieces*: (tokens, ends_sentence). Jobs of about ``job_words`` in-vocabulary tokens are cut
from that stream; a sentence longer than a job is split over several jobs, each carrying
``margin`` tokens of context on either side, so no window is lost at a split.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator

import numpy as np

logger = logging.getLogger(__name__)

BLOCK = 1 << 20  # bytes read from a corpus file at a time
_WS = b" \t\n\r\x0b\x0c"


def check_source(sentences, corpus_file, name="sentences") -> None:
    if (sentences is None) == (corpus_file is None):
        raise TypeError(f"{name} / corpus_file: pass exactly one of them")
    if corpus_file is not None:
        if not isinstance(corpus_file, (str, os.PathLike)):
            raise TypeError(f"corpus_file: expected a path, got {type(corpus_file).__name__}")
        if not os.path.isfile(corpus_file):
            raise FileNotFoundError(f"corpus_file: no such file: {os.fspath(corpus_file)!r}")
    elif isinstance(sentences, (str, bytes)) or not isinstance(sentences, Iterable):
        raise TypeError(
            f"{name}: expected an iterable of token lists (e.g. [['a', 'b'], ...]), "
            f"got {type(sentences).__name__}"
        )
    elif iter(sentences) is sentences:
        # A generator would be exhausted after the vocabulary pass.
        raise TypeError(
            f"{name}: got a one-shot iterator ({type(sentences).__name__}); training needs to "
            "iterate several times: pass a list or a restartable iterable"
        )


def file_pieces(path) -> Iterator[tuple[list[str], bool]]:
    """(tokens, ends_sentence) from a whitespace-tokenised UTF-8 file, block by block."""
    offset = 0  # of the start of `rest` in the file, for error messages
    rest = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(BLOCK)
            data = rest + block
            if block:
                # cut after the last whitespace byte: never inside a token or a UTF-8 sequence
                cut = max(data.rfind(c, 0) for c in (b" ", b"\n", b"\t", b"\r"))
                if cut < 0:
                    rest = data
                    continue
                chunk, rest = data[: cut + 1], data[cut + 1 :]
            else:
                chunk, rest = data, b""
            try:
                text = chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"corpus_file: {os.fspath(path)!r} is not valid UTF-8 (byte offset "
                    f"{offset + exc.start}: {chunk[exc.start:exc.start + 8]!r})"
                ) from None
            offset += len(chunk)
            lines = text.split("\n")
            for line in lines[:-1]:
                yield line.split(), True
            if lines[-1]:
                yield lines[-1].split(), not block
            if not block:
                return


def sentence_pieces(sentences) -> Iterator[tuple[list[str], bool]]:
    for i, s in enumerate(sentences):
        if isinstance(s, str):
            raise TypeError(
                f"sentences: item {i} is a str, expected a list of tokens (did you pass a "
                "list of strings instead of a list of token lists?)"
            )
        yield s, True


def pieces(sentences, corpus_file):
    return file_pieces(corpus_file) if corpus_file is not None else sentence_pieces(sentences)


class _Lookup(dict):
    """key_to_index whose missing keys map to -1 (out-of-vocabulary tokens are dropped)."""

    def __missing__(self, key):
        return -1


def id_pieces(stream, key_to_index) -> Iterator[tuple[np.ndarray, bool, int]]:
    """(in-vocabulary ids as int32, ends_sentence, raw token count) per piece."""
    lookup = _Lookup(key_to_index)
    get = lookup.__getitem__
    for toks, ends in stream:
        ids = np.fromiter(map(get, toks), dtype=np.int32, count=len(toks))
        yield ids[ids >= 0], ends, len(toks)


class Job:
    __slots__ = ("tokens", "sent_off", "lead", "trail", "centers", "raw")

    def __init__(self, sents, lead, trail, raw):
        lengths = [len(s) for s in sents]
        self.tokens = np.concatenate(sents) if sents else np.zeros(0, np.int32)
        self.sent_off = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
        self.lead, self.trail = lead, trail
        self.centers = len(self.tokens) - lead - trail
        self.raw = raw


def jobs(id_stream, job_words: int, margin: int) -> Iterator[Job]:
    """Cut the id stream into jobs of about job_words center tokens."""
    done: list[np.ndarray] = []  # complete sentences of the job being filled
    done_len = 0
    lead = 0  # context-only tokens at the start of done[0]
    raw = 0
    cur: list[np.ndarray] = []  # the sentence being read
    cur_len = 0
    c0 = 0  # context-only tokens at the start of cur (it continues a split sentence)
    for ids, ends, n_raw in id_stream:
        raw += n_raw
        if len(ids):
            cur.append(ids)
            cur_len += len(ids)
        if cur_len - c0 >= job_words + margin:
            # A long sentence: flush the job being filled, then emit job-sized slices.
            if done:
                yield Job(done, lead, 0, 0)
                done, done_len, lead = [], 0, 0
            buf = np.concatenate(cur)
            while len(buf) - c0 >= job_words + margin:
                end = c0 + job_words
                yield Job([buf[: end + margin]], c0, margin, raw)
                raw = 0
                buf = buf[end - margin :]
                c0 = margin
            cur, cur_len = [buf], len(buf)
        if ends:
            if cur_len:
                if not done:
                    lead = c0
                done.append(np.concatenate(cur) if len(cur) > 1 else cur[0])
                done_len += cur_len - c0
            cur, cur_len, c0 = [], 0, 0
            if done_len >= job_words:
                yield Job(done, lead, 0, raw)
                done, done_len, lead, raw = [], 0, 0, 0
    if cur_len:  # a corpus that does not end its last sentence
        if not done:
            lead = c0
        done.append(np.concatenate(cur))
    if done:
        yield Job(done, lead, 0, raw)


def scan(corpus_iterable, corpus_file, max_vocab_size=None):
    """Count words in one pass: (Counter, sentences, raw tokens). With max_vocab_size, the
    rarest words are pruned whenever the vocabulary grows past it (gensim's rule)."""
    check_source(corpus_iterable, corpus_file, "corpus_iterable")
    counts: Counter = Counter()
    n_sent = n_tok = 0
    min_reduce = 1
    t0 = time.perf_counter()
    for toks, ends in pieces(corpus_iterable, corpus_file):
        counts.update(toks)
        n_tok += len(toks)
        n_sent += ends
        if max_vocab_size is not None and len(counts) > max_vocab_size:
            for w in [w for w, c in counts.items() if c < min_reduce]:
                del counts[w]
            min_reduce += 1
    logger.info("collected %d word types from a corpus of %d raw words and %d sentences in %.2fs",
                len(counts), n_tok, n_sent, time.perf_counter() - t0)
    return counts, n_sent, n_tok


def run_jobs(job_iter, workers: int, fn) -> None:
    """Call fn(slot, job) for every job on `workers` threads (slot = the thread's index, so
    fn can keep per-thread state); the first exception stops the run and is re-raised."""
    q: queue.Queue = queue.Queue(maxsize=2 * workers)
    errors: list = []

    def work(slot):
        while True:
            job = q.get()
            if job is None:
                return
            if not errors:
                try:
                    fn(slot, job)
                except BaseException as exc:  # surfaced in the caller's thread
                    errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,), daemon=True) for k in range(workers)]
    for t in threads:
        t.start()
    try:
        for job in job_iter:
            if errors:
                break
            q.put(job)
    finally:
        for _ in threads:
            q.put(None)
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
