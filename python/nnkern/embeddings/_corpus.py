"""Corpus reading and job building.

A corpus is an iterable of token lists (``sentences``), a text file with one sentence per
line (``corpus_file``), read in fixed-size blocks so memory never grows with the corpus, not
even for a corpus that is a single line (text8), or integer token ids with their vocabulary
(``TokenIds``). The first two become a stream of *pieces*: (tokens, ends_sentence); all
three then become pieces of model indices (ids, ends_sentence, raw tokens). Jobs of about ``job_words`` in-vocabulary tokens are cut
from that stream; a sentence longer than a job is split over several jobs, each carrying
``margin`` tokens of context on either side, so no window is lost at a split.

A corpus_file is read, tokenised, looked up and counted in C++ (cpp/kernels/corpus.cpp,
GIL released), a block of pieces at a time; block_jobs() cuts those blocks with NumPy into
the very jobs that jobs() cuts from file_pieces() + id_pieces(), which stay the reference.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .. import _core

logger = logging.getLogger(__name__)

BLOCK = 1 << 20  # bytes read from a corpus file at a time
ID_BLOCK = 1 << 20  # token ids mapped to model indices at a time
_WS = b" \t\n\r\x0b\x0c"


def check_source(sentences, corpus_file, name="sentences") -> None:
    if (sentences is None) == (corpus_file is None):
        raise TypeError(f"{name} / corpus_file: pass exactly one of them")
    if isinstance(sentences, TokenIds):
        return
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


def _file_args(path):
    """The path as bytes for _core, and how error messages name it (as file_pieces does)."""
    return os.fsencode(path), repr(os.fspath(path))


def file_blocks(path, vocab) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """file_pieces() in C++, mapped through vocab (a _core.CorpusVocab): one block at a time,
    (ids int32, off int64 (P+1), raw int64 (P), ends bool (P)) of its P pieces, piece k being
    id_pieces()'s (ids[off[k]:off[k+1]], ends[k], raw[k])."""
    fpath, name = _file_args(path)
    reader = _core.CorpusReader(fpath, BLOCK, vocab, name)
    while (block := reader.read()) is not None:
        yield block


def corpus_vocab(key_to_index):
    """The C++ word table of a model's key_to_index, for file_blocks()."""
    return _core.CorpusVocab(list(key_to_index), np.fromiter(key_to_index.values(), np.int32,
                                                             count=len(key_to_index)))


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


def _int_array(a, name):
    a = np.asarray(a)
    if a.size == 0 and a.dtype == np.float64:  # np.asarray([]) of an empty list
        a = a.astype(np.int64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D integer array, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name}: expected integer token ids, got dtype {a.dtype}")
    return a


class TokenIds:
    """A corpus of integer token ids together with the vocabulary they index.

    TokenIds(ids, vocabulary, offsets=None, counts=None)

    ids         one flat 1-D integer array holding every sentence in turn, or a sequence of
                1-D integer arrays, one per sentence (any integer dtype)
    vocabulary  sequence of distinct strings: id i stands for vocabulary[i] (V words)
    offsets     with a flat ids array, (S+1,) integers from 0 to len(ids), non-decreasing:
                sentence s is ids[offsets[s]:offsets[s+1]]. None: the flat array is a single
                sentence (a token stream like text8). Not allowed with a sequence of arrays.
    counts      (V,) non-negative occurrences of each id in this corpus, if already known
                (from a tokenizer, say); None counts them from ids

    Pass it wherever Word2Vec or GloVe take a corpus (sentences / corpus_iterable). The model's
    vocabulary is what the equivalent token lists would give: min_count and max_final_vocab
    apply to the counts, and words of equal count are ordered by where their id first occurs,
    as gensim orders them. Training maps ids to the model's own indices through one lookup
    table, a block of ids at a time, and never turns an id back into a string; ids of words
    the model does not keep (below min_count, say) are skipped like unknown tokens. Models
    also take a TokenIds with another vocabulary (words are matched by their string), e.g. for
    build_vocab(update=True). max_vocab_size does not apply (the vocabulary is already given).

    The arrays are not copied (a sequence of arrays is concatenated once) and must not change
    while the corpus is in use. Bad ids, offsets or counts raise ValueError naming the argument.
    """

    def __init__(self, ids, vocabulary, offsets=None, counts=None):
        if isinstance(vocabulary, (str, bytes)) or not isinstance(vocabulary, Iterable):
            raise TypeError(f"vocabulary: expected a sequence of words, got {type(vocabulary).__name__}")
        self.vocabulary = list(vocabulary)
        V = len(self.vocabulary)
        seen: dict = {}
        for i, w in enumerate(self.vocabulary):
            if not isinstance(w, str):
                raise TypeError(f"vocabulary: item {i} is a {type(w).__name__}, expected a str")
            j = seen.setdefault(w, i)
            if j != i:
                raise ValueError(f"vocabulary: {w!r} appears twice (ids {j} and {i})")
        if isinstance(ids, np.ndarray):
            flat = _int_array(ids, "ids")
            if offsets is None:
                offsets = [0, len(flat)]
            off = _int_array(offsets, "offsets").astype(np.int64)
            if len(off) == 0 or off[0] != 0 or off[-1] != len(flat) or (np.diff(off) < 0).any():
                raise ValueError(f"offsets: expected non-decreasing sentence starts from 0 to "
                                 f"len(ids)={len(flat)}, got {len(off)} values from "
                                 f"{off[0] if len(off) else None} to {off[-1] if len(off) else None}")
        elif isinstance(ids, (str, bytes)) or not isinstance(ids, Sequence):
            raise TypeError(f"ids: expected a 1-D integer array or a sequence of them, got "
                            f"{type(ids).__name__}")
        else:
            if offsets is not None:
                raise ValueError("offsets: only with one flat ids array (a sequence of arrays "
                                 "already marks its sentences)")
            parts = [_int_array(a, f"ids: item {k}") for k, a in enumerate(ids)]
            off = np.concatenate([[0], np.cumsum([len(a) for a in parts], dtype=np.int64)]).astype(np.int64)
            flat = np.concatenate(parts) if parts else np.zeros(0, np.int32)
        if len(flat):
            for k, bad in ((int(np.argmin(flat)), lambda x: x < 0), (int(np.argmax(flat)), lambda x: x >= V)):
                if bad(flat[k]):
                    s = int(np.searchsorted(off, k, side="right")) - 1
                    raise ValueError(f"ids: id {flat[k]} (sentence {s}, position {k - off[s]}) is "
                                     f"out of range for a vocabulary of {V} words (0..{V - 1})")
        self.ids, self.offsets = flat, off
        if counts is not None:
            counts = _int_array(counts, "counts")
            if len(counts) != V:
                raise ValueError(f"counts: expected one count per vocabulary word ({V}), got {len(counts)}")
            if len(counts) and counts.min() < 0:
                raise ValueError(f"counts: must be >= 0, got {counts.min()}")
            counts = counts.astype(np.int64)
        self.counts = counts

    def __len__(self):
        """The number of sentences."""
        return len(self.offsets) - 1

    def __repr__(self):
        return f"TokenIds<{len(self)} sentences, {len(self.ids)} ids, vocabulary of {len(self.vocabulary)}>"

    def word_counts(self) -> dict:
        """{word: count} of the words that occur, in order of their ids' first occurrence
        (the order a scan of the equivalent token lists meets them in)."""
        V, N = len(self.vocabulary), len(self.ids)
        first = np.full(V, N, np.int64)
        counted = np.zeros(V, np.int64)
        for a in range(0, N, ID_BLOCK):  # blocks: no (N,) int64 temporaries
            block = self.ids[a:a + ID_BLOCK]
            np.minimum.at(first, block, np.arange(a, a + len(block)))
            if self.counts is None:
                counted += np.bincount(block, minlength=V)
        cnt = counted if self.counts is None else self.counts
        order = np.argsort(first, kind="stable")  # ids never seen last, in id order
        cnt_l, vocab = cnt.tolist(), self.vocabulary
        return {vocab[i]: cnt_l[i] for i in order.tolist() if cnt_l[i] > 0}

    def pieces(self, key_to_index) -> Iterator[tuple[np.ndarray, bool, int]]:
        """(model indices as int32, ends_sentence, raw ids) per sentence, like id_pieces();
        a sentence longer than ID_BLOCK comes in several pieces."""
        remap = np.fromiter((key_to_index.get(w, -1) for w in self.vocabulary), dtype=np.int32,
                            count=len(self.vocabulary))
        ids, off = self.ids, self.offsets
        S, s = len(off) - 1, 0
        while s < S:
            # whole sentences of about ID_BLOCK ids at a time (at least one sentence)
            e = min(S, max(s + 1, int(np.searchsorted(off, off[s] + ID_BLOCK, side="right")) - 1))
            a, b = int(off[s]), int(off[e])
            if b - a > ID_BLOCK:  # one long sentence
                for c in range(a, b, ID_BLOCK):
                    m = remap[ids[c:min(c + ID_BLOCK, b)]]
                    yield m[m >= 0], c + ID_BLOCK >= b, len(m)
            else:
                m = remap[ids[a:b]]
                keep = m >= 0
                kept = m[keep]
                ko = np.concatenate([[0], np.cumsum(keep)])[off[s:e + 1] - a].tolist()
                raw = np.diff(off[s:e + 1]).tolist()
                for k in range(e - s):
                    yield kept[ko[k]:ko[k + 1]], True, raw[k]
            s = e


def model_pieces(sentences, corpus_file, key_to_index) -> Iterator[tuple[np.ndarray, bool, int]]:
    """(model indices, ends_sentence, raw token count) per piece of any kind of corpus."""
    if isinstance(sentences, TokenIds):
        return sentences.pieces(key_to_index)
    return id_pieces(pieces(sentences, corpus_file), key_to_index)


class Corpus:
    """A corpus bound to a model's vocabulary, for the passes of one training call: jobs()
    gives one pass's jobs. A corpus_file is read, tokenised and looked up in C++ (the word
    table is built once, here); token lists and TokenIds go through model_pieces()."""

    def __init__(self, sentences, corpus_file, key_to_index):
        self.sentences, self.corpus_file, self.key_to_index = sentences, corpus_file, key_to_index
        self.vocab = corpus_vocab(key_to_index) if corpus_file is not None else None

    def jobs(self, job_words: int, margin: int) -> Iterator[Job]:
        if self.vocab is not None:
            return block_jobs(file_blocks(self.corpus_file, self.vocab), job_words, margin)
        return jobs(model_pieces(self.sentences, None, self.key_to_index), job_words, margin)


class Job:
    __slots__ = ("tokens", "sent_off", "lead", "trail", "centers", "raw")

    def __init__(self, tokens, sent_off, lead, trail, raw):
        self.tokens, self.sent_off = tokens, sent_off
        self.lead, self.trail = lead, trail
        self.centers = len(tokens) - lead - trail
        self.raw = raw


class _Cutter:
    """The state of job cutting: whole sentences of the job being filled, and the sentence
    being read. piece() takes one piece at a time; sentences() takes a run of whole short
    sentences at once with NumPy (the corpus_file path), with the same result."""

    def __init__(self, job_words: int, margin: int):
        self.job_words, self.margin = job_words, margin
        # complete sentences of the job being filled, in segments: their tokens, and their
        # (non-zero) lengths as arrays or, for sentences taken one by one, a list of ints
        self.done_tok: list[np.ndarray] = []
        self.done_len: list = []
        self.n_done = 0  # their tokens, without the lead
        self.lead = 0  # context-only tokens at the start of the first one
        self.raw = 0
        self.cur: list[np.ndarray] = []  # the sentence being read
        self.cur_len = 0
        self.c0 = 0  # context-only tokens at the start of cur (it continues a split sentence)

    def _add(self, ids):
        """Add one whole sentence (its tokens, context included) to the job being filled."""
        if not self.done_tok:
            self.lead = self.c0
        self.done_tok.append(ids)
        if self.done_len and isinstance(self.done_len[-1], list):
            self.done_len[-1].append(len(ids))
        else:
            self.done_len.append([len(ids)])
        self.n_done += len(ids) - self.c0

    def _take(self, out):
        lengths = np.concatenate(self.done_len) if len(self.done_len) > 1 else self.done_len[0]
        sent_off = np.zeros(len(lengths) + 1, np.int64)
        np.cumsum(lengths, out=sent_off[1:])
        out.append(Job(np.concatenate(self.done_tok), sent_off, self.lead, 0, self.raw))
        self.done_tok, self.done_len, self.n_done, self.lead, self.raw = [], [], 0, 0, 0

    def piece(self, ids, ends, n_raw, out) -> None:
        """One piece (ids, ends_sentence, raw tokens); finished jobs are appended to out."""
        self.raw += n_raw
        if ends and not self.cur_len and len(ids) < self.job_words + self.margin:
            # the common case, in short: a whole sentence that fits in a job
            if len(ids):
                self._add(ids)
                if self.n_done >= self.job_words:
                    self._take(out)
            return
        if len(ids):
            self.cur.append(ids)
            self.cur_len += len(ids)
        jw, margin = self.job_words, self.margin
        if self.cur_len - self.c0 >= jw + margin:
            # A long sentence: flush the job being filled, then emit job-sized slices.
            if self.done_tok:
                raw, self.raw = self.raw, 0
                self._take(out)
                self.raw = raw
            buf, c0 = np.concatenate(self.cur), self.c0
            while len(buf) - c0 >= jw + margin:
                end = c0 + jw
                out.append(Job(buf[: end + margin].copy(), np.array([0, end + margin], np.int64),
                               c0, margin, self.raw))
                self.raw = 0
                buf = buf[end - margin:]
                c0 = margin
            self.cur, self.cur_len, self.c0 = [buf], len(buf), c0
        if ends:
            if self.cur_len:
                self._add(np.concatenate(self.cur) if len(self.cur) > 1 else self.cur[0])
            self.cur, self.cur_len, self.c0 = [], 0, 0
            if self.n_done >= jw:
                self._take(out)

    def sentences(self, ids, off, lengths, raw_cum, i, r, out) -> None:
        """Pieces i..r-1 of a block, each a whole sentence shorter than job_words + margin,
        with no sentence being read: piece() on each of them, a job at a time.
        Piece k holds ids[off[k]:off[k+1]], lengths = diff(off); raw_cum = cumsum of raw from 0."""
        while i < r:
            # the first m with off[m] - off[i] >= what the job still needs: pieces i..m-1 fill it
            m = int(np.searchsorted(off, off[i] + self.job_words - self.n_done, side="left"))
            k = min(m, r)
            if off[k] > off[i]:
                seg = lengths[i:k]
                self.done_tok.append(ids[off[i]:off[k]])
                self.done_len.append(seg[seg > 0])
                self.n_done += int(off[k] - off[i])
            self.raw += int(raw_cum[k] - raw_cum[i])
            if m <= r:
                self._take(out)
            i = k

    def finish(self, out) -> None:
        if self.cur_len:  # a corpus that does not end its last sentence
            self._add(np.concatenate(self.cur))
        if self.done_tok:
            self._take(out)


def jobs(id_stream, job_words: int, margin: int) -> Iterator[Job]:
    """Cut the id stream into jobs of about job_words center tokens."""
    cut, out = _Cutter(job_words, margin), []
    for ids, ends, n_raw in id_stream:
        cut.piece(ids, ends, n_raw, out)
        if out:
            yield from out
            out.clear()
    cut.finish(out)
    yield from out


def block_jobs(blocks, job_words: int, margin: int) -> Iterator[Job]:
    """jobs() of a stream of blocks of pieces (ids, off, raw, ends) as file_blocks() gives
    them: the same jobs, but runs of whole sentences go through NumPy, not one by one."""
    cut, out = _Cutter(job_words, margin), []
    for ids, off, raw, ends in blocks:
        lengths = np.diff(off)
        raw_cum = np.zeros(len(raw) + 1, np.int64)
        np.cumsum(raw, out=raw_cum[1:])
        # pieces that need piece(): unfinished sentences and long ones
        slow = np.flatnonzero(~ends | (lengths >= job_words + margin)).tolist() + [len(raw)]
        i, s = 0, 0
        while i < len(raw):
            if cut.cur_len == 0 and slow[s] > i:
                cut.sentences(ids, off, lengths, raw_cum, i, slow[s], out)
                i = slow[s]
            else:
                a, b = int(off[i]), int(off[i + 1])
                cut.piece(ids[a:b], bool(ends[i]), int(raw[i]), out)
                s += slow[s] == i
                i += 1
            if out:
                yield from out
                out.clear()
    cut.finish(out)
    yield from out


def scan(corpus_iterable, corpus_file, max_vocab_size=None):
    """Count words in one pass: (Counter, sentences, raw tokens). With max_vocab_size, the
    rarest words are pruned whenever the vocabulary grows past it (gensim's rule); a TokenIds
    corpus is counted (or takes its given counts) without pruning."""
    check_source(corpus_iterable, corpus_file, "corpus_iterable")
    t0 = time.perf_counter()
    if isinstance(corpus_iterable, TokenIds):
        counts = corpus_iterable.word_counts()
        n_sent, n_tok = len(corpus_iterable), len(corpus_iterable.ids)
        logger.info("collected %d word types from %d token ids in %d sentences in %.2fs",
                    len(counts), n_tok, n_sent, time.perf_counter() - t0)
        return counts, n_sent, n_tok
    if corpus_file is not None:  # the same counting in C++
        fpath, name = _file_args(corpus_file)
        keys, cnt, n_sent, n_tok = _core.count_corpus_file(
            fpath, BLOCK, -1 if max_vocab_size is None else max_vocab_size, name)
        counts = Counter(dict(zip(keys, cnt.tolist())))
    else:
        counts, n_sent, n_tok = count(sentence_pieces(corpus_iterable), max_vocab_size)
    logger.info("collected %d word types from a corpus of %d raw words and %d sentences in %.2fs",
                len(counts), n_tok, n_sent, time.perf_counter() - t0)
    return counts, n_sent, n_tok


def count(stream, max_vocab_size=None):
    """(Counter, sentences, raw tokens) of a stream of pieces, pruned as scan() says
    (count_corpus_file does the same for a file in C++)."""
    counts: Counter = Counter()
    n_sent = n_tok = 0
    min_reduce = 1
    for toks, ends in stream:
        counts.update(toks)
        n_tok += len(toks)
        n_sent += ends
        if max_vocab_size is not None and len(counts) > max_vocab_size:
            for w in [w for w, c in counts.items() if c < min_reduce]:
                del counts[w]
            min_reduce += 1
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
