"""Seq2seq with attention learns to reverse and to sort variable-length digit strings.

Strings of 1-8 digits are padded into batches; the encoder gets their lengths (padding is
masked out of the recurrence and of the attention), the decoder is trained with teacher
forcing and a masked cross-entropy, and evaluation decodes greedily on held-out strings.
Prints the exact-sequence accuracy per task (the check: at least 99%) and, when matplotlib
is installed, writes an attention heatmap of one example per task.

    python examples/seq2seq_attention.py [--steps 5000] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import nnkern
from nnkern import nn, optim

PAD, BOS, EOS, DIGIT0 = 0, 1, 2, 3  # tokens: digits d are DIGIT0 + d
VOCAB = DIGIT0 + 10
MAX_LEN = 8


def make_batch(rng, n, task):
    """(src, src_len, tgt_in, tgt, tgt_mask) for n random strings of 1..MAX_LEN digits."""
    lengths = rng.integers(1, MAX_LEN + 1, n)
    src = np.full((n, MAX_LEN), PAD, np.int64)
    tgt = np.full((n, MAX_LEN + 1), PAD, np.int64)
    for i, L in enumerate(lengths):
        s = rng.integers(0, 10, L)
        out = s[::-1] if task == "reverse" else np.sort(s)
        src[i, :L] = DIGIT0 + s
        tgt[i, :L] = DIGIT0 + out
        tgt[i, L] = EOS
    tgt_in = np.concatenate([np.full((n, 1), BOS), tgt[:, :-1]], axis=1)
    tgt_mask = np.arange(MAX_LEN + 1)[None, :] <= lengths[:, None]
    return src, lengths, tgt_in, tgt, tgt_mask


def train(task, steps, seed=0, log=True):
    rng = np.random.default_rng(seed)
    model = nn.Seq2Seq(VOCAB, VOCAB, embed_size=32, hidden_size=64, cell="gru", bidirectional=True,
                       attention="scaled_dot", bos=BOS, eos=EOS, seed=seed).flatten_parameters()
    opt = optim.Adam(model.parameters(), lr=3e-3, clip_norm=5.0)
    loss = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        src, src_len, tgt_in, tgt, tmask = make_batch(rng, 64, task)
        value = loss.forward(model.forward(src, tgt_in, src_len, tmask.sum(1)), tgt, tmask)
        model.zero_grad()
        model.backward(loss.backward())
        opt.lr = 3e-3 * min(1.0, 2.0 * (1 - step / steps) + 0.05)  # linear decay over the last half
        opt.step(model.gradients())
        if log and step % 500 == 0:
            print(f"  {task} step {step}: loss {value:.4f} ({time.perf_counter() - t0:.1f} s)", flush=True)
    return model


def accuracy(model, task, n=2000, seed=123):
    src, src_len, _, tgt, _ = make_batch(np.random.default_rng(seed), n, task)
    model.eval()
    pred = model.greedy(src, src_len, max_len=MAX_LEN + 1)
    ok = [np.array_equal(pred[i, :L + 1], tgt[i, :L + 1]) for i, L in enumerate(src_len)]
    return float(np.mean(ok)), src, src_len


def heatmap(model, task, src, src_len, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    i = int(np.argmax(src_len))  # the longest string
    s = src[i:i + 1, : src_len[i]]
    model.eval()
    out = model.greedy(s, src_len[i:i + 1], max_len=MAX_LEN + 1)[0]
    L = int(np.argmax(out == EOS)) + 1 if EOS in out else len(out)
    tgt_in = np.concatenate([[BOS], out[: L - 1]])[None]
    model.forward(s, tgt_in, src_len[i:i + 1])  # teacher-forced on its own output: the weights
    w = model.attention.weights[0]
    lab = lambda t: "<eos>" if t == EOS else str(t - DIGIT0)  # noqa: E731
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.imshow(w, cmap="viridis")
    ax.set_xticks(range(s.shape[1]), [lab(t) for t in s[0]])
    ax.set_yticks(range(L), [lab(t) for t in out[:L]])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    ax.set_title(f"attention: {task}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--out", default=".")
    args = ap.parse_args(argv)
    nnkern.set_num_threads(2)
    ok = True
    for task in ("reverse", "sort"):
        model = train(task, args.steps)
        acc, src, src_len = accuracy(model, task)
        path = f"{args.out}/attention_{task}.png"
        wrote = heatmap(model, task, src, src_len, path)
        print(f"{task}: exact-sequence accuracy {100 * acc:.2f}% on 2000 held-out strings"
              + (f"; heatmap {path}" if wrote else "; (matplotlib not installed: no heatmap)"))
        ok &= acc >= 0.99
    print("check:", "PASS" if ok else "FAIL (accuracy below 99%)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
