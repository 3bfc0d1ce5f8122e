"""A character-level LSTM language model on English text from the package registry.

The text: the English documentation in Debian's linux-doc-6.1 and python3.11-doc packages
(`apt-get download`, prose paragraphs, lower-cased, punctuation dropped), as built for the
embeddings benchmark and cached in ~/.cache/nnkern (NNKERN_BENCH_CACHE overrides). The first
1 MB is the data: 90% to train on, 10% to validate on.

Training is truncated BPTT: batches of 32 streams, chunks of 100 characters, the LSTM state
carried from chunk to chunk (no gradient through it), Adam with gradient clipping. Prints the
validation bits per character (the check: well below the 4.1 bits of predicting each
character by its frequency alone) and a sample of generated text.

    python examples/char_lstm.py [--steps 1500] [--hidden 256]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import nnkern
from nnkern import nn, optim


def load_text(limit=1_000_000):
    from nnkern.bench import embeddings

    path = os.path.join(embeddings.cache_dir(), "debian-docs-en.txt")
    if not os.path.exists(path):
        print("building the English text from Debian's documentation packages ...", flush=True)
        embeddings.debian_corpus(path)
    with open(path, encoding="utf-8") as f:
        return f.read(limit)


def batches(data, B, T, rng):
    """Contiguous streams: batch k holds characters [k*T, (k+1)*T] of each of B streams."""
    n = (len(data) - 1) // B
    streams = data[: n * B + 1]
    X = np.stack([streams[i * n: i * n + n] for i in range(B)], axis=1)       # (n, B)
    Y = np.stack([streams[i * n + 1: i * n + n + 1] for i in range(B)], axis=1)
    for s in range(0, n - T + 1, T):
        yield X[s:s + T], Y[s:s + T]


def bits_per_char(model, data, T=200, B=16):
    ce = nn.CrossEntropyLoss(reduction="sum")
    model.eval()
    total, count, state = 0.0, 0, None
    for x, y in batches(data, B, T, None):
        total += float(ce.forward(model.forward(x, state), y))
        state = model.state
        count += y.size
    model.train()
    return total / count / np.log(2)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--hidden", type=int, default=256)
    args = ap.parse_args(argv)
    nnkern.set_num_threads(2)
    text = load_text()
    chars = sorted(set(text))
    idx = {c: i for i, c in enumerate(chars)}
    data = np.array([idx[c] for c in text], np.int64)
    split = int(0.9 * len(data))
    train, val = data[:split], data[split:]
    freq = np.bincount(train, minlength=len(chars)) / len(train)
    unigram = float(-(freq[freq > 0] * np.log2(freq[freq > 0])).sum())
    print(f"{len(text):,} characters, {len(chars)} distinct; unigram entropy {unigram:.2f} bits/char")

    model = nn.CharRNN(len(chars), 64, args.hidden, cell="lstm", seed=0).flatten_parameters()
    opt = optim.Adam(model.parameters(), lr=2e-3, clip_norm=5.0)
    ce = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    step, t0 = 0, time.perf_counter()
    while step < args.steps:
        state = None
        for x, y in batches(train, 32, 100, rng):
            value = ce.forward(model.forward(x, state), y)
            state = model.state  # carried to the next chunk; no gradient flows through it
            model.zero_grad()
            model.backward(ce.backward())
            opt.step(model.gradients())
            step += 1
            if step % 250 == 0:
                print(f"  step {step}: train {value / np.log(2):.3f} bits/char "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
            if step >= args.steps:
                break
    bpc = bits_per_char(model, val)
    sample = model.sample([idx[c] for c in "the "], 300, temperature=0.7, seed=1)
    print(f"validation: {bpc:.3f} bits/char (unigram {unigram:.2f}) after {step} steps, "
          f"{time.perf_counter() - t0:.0f} s")
    print("sample: the " + "".join(chars[i] for i in sample))
    ok = bpc < unigram - 1.5
    print("check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
