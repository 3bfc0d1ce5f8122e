"""Vocabulary and sampling tables for word2vec: counting, min_count / size pruning, the
Huffman tree for hierarchical softmax, the alias table for O(1) negative draws and the
subsampling probabilities. Plain Python + NumPy: each runs once per build_vocab."""

from __future__ import annotations

import heapq

import numpy as np

TWO32 = 1 << 32


def finalize(counts: dict, min_count: int, max_final_vocab: int | None):
    """The kept words, most frequent first (ties in gensim's order), and
    their counts. max_final_vocab raises min_count just enough to fit, as gensim does."""
    if max_final_vocab is not None and len(counts) > max_final_vocab:
        ranked = sorted(counts.values(), reverse=True)
        # the smallest min_count that keeps at most max_final_vocab words
        min_count = max(min_count, ranked[max_final_vocab] + 1)
    words = [w for w, c in counts.items() if c >= min_count]
    cnt = np.array([counts[w] for w in words], dtype=np.int64)
    # gensim's sort_by_descending_frequency, tie order included (later first-seen first)
    order = np.lexsort((-np.arange(len(cnt)), -cnt))
    return [words[i] for i in order], cnt[order]


def vocabulary(counts: dict, n_sent: int, n_tok: int, src: str, min_count: int,
               max_final_vocab: int | None):
    """finalize(), with the clear errors for an empty corpus or an empty vocabulary."""
    if n_tok == 0:
        raise ValueError(f"{src}: the corpus is empty (no tokens in {n_sent} sentences)")
    words, cnt = finalize(counts, min_count, max_final_vocab)
    if not words:
        raise ValueError(
            f"min_count: no word of the {len(counts)} distinct words in {src} occurs "
            f"min_count={min_count} times (the most frequent occurs {max(counts.values())} "
            "times); lower min_count or give a larger corpus"
        )
    return words, cnt


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """P(keep) of each word under frequent-word subsampling, gensim's formula:

        t = sample * total   (sample < 1; else sample is itself the count threshold)
        P(keep w) = min(1, (sqrt(c_w / t) + 1) * t / c_w)
    """
    c = counts.astype(np.float64)
    if sample <= 0 or c.size == 0:
        return np.ones_like(c)
    t = sample * c.sum() if sample < 1.0 else float(sample)
    return np.minimum(1.0, (np.sqrt(c / t) + 1.0) * t / np.maximum(c, 1.0))


def keep_thresholds(p: np.ndarray) -> np.ndarray:
    """P(keep) as uint64 thresholds against a uniform 32-bit draw (2^32 = always)."""
    return np.where(p >= 1.0, TWO32, np.floor(p * TWO32)).astype(np.uint64)


def alias_table(weights: np.ndarray):
    """Walker/Vose alias table of the distribution proportional to `weights` (V,).

    Drawing i uniformly and then keeping i with probability prob[i], else taking alias[i],
    gives each word probability weights / sum(weights) in O(1). prob is returned as uint32
    thresholds against a 32-bit draw (2^32 - 1 stands for 1).
    """
    V = len(weights)
    q = np.asarray(weights, dtype=np.float64)
    q = q * (V / q.sum())
    prob = np.ones(V, dtype=np.float64)
    alias = np.arange(V, dtype=np.int32)
    small = [i for i in range(V) if q[i] < 1.0]
    large = [i for i in range(V) if q[i] >= 1.0]
    ql = q.tolist()
    while small and large:
        s, g = small.pop(), large.pop()
        prob[s] = ql[s]
        alias[s] = g
        ql[g] -= 1.0 - ql[s]
        (small if ql[g] < 1.0 else large).append(g)
    # leftovers are 1 up to rounding
    thr = np.where(prob >= 1.0, TWO32 - 1, np.floor(prob * TWO32)).astype(np.uint32)
    return thr, alias


def alias_probabilities(thr: np.ndarray, alias: np.ndarray) -> np.ndarray:
    """The exact distribution an alias table draws from (for tests)."""
    V = len(thr)
    p_keep = thr.astype(np.float64) / TWO32
    p_keep[thr == TWO32 - 1] = 1.0
    out = p_keep / V
    np.add.at(out, alias, (1.0 - p_keep) / V)
    return out


HUFFMAN_TIES = ("heap", "leaves", "nodes")


class _ByCount:
    """A heap entry ordered by its count alone (equal counts: whatever the heap's layout
    gives, as with gensim's Heapitem)."""

    __slots__ = ("count", "node")

    def __init__(self, count, node):
        self.count, self.node = count, node

    def __lt__(self, other):
        return self.count < other.count


def huffman(counts: np.ndarray, ties: str = "heap"):
    """Huffman tree over the words' counts.

    Returns (code_off (V+1,), points, codes) in CSR form: word w's path is
    points[code_off[w]:code_off[w+1]] (inner nodes 0..V-2, root first) with the branch
    codes[...] (0/1) taken at each; of the two nodes merged, the first taken gets code 0.
    Inner node V-2 is the root. A single word gets a path of length 0.

    Every optimal tree gives the same code lengths (up to a handful of words), but ties
    decide which words become siblings and share their whole path, which matters to what
    hierarchical softmax learns. Many rare words share a count, and a vocabulary sorted by
    count keeps words of equal count in order of first appearance, so neighbours in it
    tend to come from the same document:
      "heap"    a binary heap on counts alone, equal counts in the heap's own order: the
                tree gensim builds (identical paths and codes), which scatters words of
                equal count. Over 20 seeds, skip-gram with hierarchical softmax scored
                0.310 on wordsim353 with it, 0.273 with "nodes" and 0.241 with
                "leaves" (gensim: 0.326; benchmarks/results/
                embeddings-sg-hs-diagnostics-2026-12-03-zen4.txt).
      "leaves"  two queues, a word before an inner node of equal count, equal words by
                vocabulary index.
      "nodes"   word2vec.c's two queues: an inner node before a word of equal count, equal
                words from the end of the vocabulary. nnkern's tree until December 2026;
                models saved before then keep it.
    """
    if ties not in HUFFMAN_TIES:
        raise ValueError(f"ties: expected one of {HUFFMAN_TIES}, got {ties!r}")
    counts = np.asarray(counts)
    V = len(counts)
    if V <= 1:
        return np.zeros(V + 1, dtype=np.int64), np.zeros(0, np.int32), np.zeros(0, np.uint8)
    parent = [0] * (2 * V - 1)
    binary = [0] * (2 * V - 1)
    if ties == "heap":
        heap = [_ByCount(c, i) for i, c in enumerate(counts.tolist())]
        heapq.heapify(heap)
        for a in range(V - 1):
            first, second = heapq.heappop(heap), heapq.heappop(heap)
            parent[first.node] = parent[second.node] = V + a
            binary[second.node] = 1
            heapq.heappush(heap, _ByCount(first.count + second.count, V + a))
    else:
        # Words in the order they are taken (ascending count), inner nodes V.. in the order
        # they are made: their counts never decrease, so the two queues' heads are the
        # candidates, and the whole build is linear.
        if ties == "leaves":
            words = np.lexsort((np.arange(V), counts)).tolist()
        else:
            words = np.argsort(-counts, kind="stable")[::-1].tolist()
        cnt = counts.tolist() + [0] * (V - 1)
        leaf_wins_tie = ties == "leaves"
        w, node = 0, V  # the next word (position in words) and the next inner node
        for a in range(V - 1):
            mins = []
            for _ in range(2):
                if w < V and (node >= V + a or cnt[words[w]] < cnt[node]
                              or (leaf_wins_tie and cnt[words[w]] == cnt[node])):
                    mins.append(words[w])
                    w += 1
                else:
                    mins.append(node)
                    node += 1
            cnt[V + a] = cnt[mins[0]] + cnt[mins[1]]
            parent[mins[0]] = parent[mins[1]] = V + a
            binary[mins[1]] = 1
    parent_a = np.array(parent, dtype=np.int64)
    binary_a = np.array(binary, dtype=np.uint8)
    root = 2 * V - 2
    # Walk all leaves up at once: after t steps leaf w is at node[w].
    node_a = np.arange(V, dtype=np.int64)
    lengths = np.zeros(V, dtype=np.int64)
    pts, cds = [], []
    while True:
        live = node_a != root
        if not live.any():
            break
        lengths += live
        pts.append(np.where(live, parent_a[node_a] - V, 0))
        cds.append(np.where(live, binary_a[node_a], 0))
        node_a = np.where(live, parent_a[node_a], root)
    P = np.array(pts)  # (depth, V): step t from the leaf upwards
    C = np.array(cds)
    code_off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    w_rep = np.repeat(np.arange(V), lengths)
    k = np.arange(code_off[-1]) - code_off[w_rep]
    step = lengths[w_rep] - 1 - k  # root first
    return code_off, P[step, w_rep].astype(np.int32), C[step, w_rep].astype(np.uint8)


def optimal_code_cost(counts) -> int:
    """sum(count * code length) of an optimal prefix code (for tests), via a heap."""
    h = [int(c) for c in counts]
    if len(h) <= 1:
        return 0
    heapq.heapify(h)
    cost = 0
    while len(h) > 1:
        a, b = heapq.heappop(h), heapq.heappop(h)
        cost += a + b
        heapq.heappush(h, a + b)
    return cost
