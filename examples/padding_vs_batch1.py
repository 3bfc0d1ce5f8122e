"""Padding with masking against batch size 1: the same gradients, and the speed-up.

A batch of variable-length sequences is run through an LSTM twice: padded into one batch
with `lengths`, and one sequence at a time (batch size 1, no padding). The parameter
gradients must agree to rounding; the padded batch is much faster because every step is one
matrix product for the whole batch instead of one per sequence.

    python examples/padding_vs_batch1.py
"""

from __future__ import annotations

import sys
import time

import numpy as np

import nnkern
from nnkern import nn


def main():
    nnkern.set_num_threads(2)
    rng = np.random.default_rng(0)
    B, T, I, H = 64, 50, 64, 128
    lengths = rng.integers(T // 4, T + 1, B)
    x = rng.standard_normal((T, B, I)).astype(np.float64)
    dout = rng.standard_normal((T, B, H))
    dout[np.arange(T)[:, None] >= lengths[None, :]] = 0  # padding carries no gradient anyway
    lstm = nn.LSTM(I, H, seed=0, dtype=np.float64)

    def padded():
        lstm.zero_grad()
        lstm.forward(x, lengths=lengths)
        lstm.backward(dout)
        return {k: g.copy() for k, g in lstm.grads.items()}

    def one_by_one():
        lstm.zero_grad()
        for b in range(B):
            L = lengths[b]
            lstm.forward(x[:L, b:b + 1])
            lstm.backward(dout[:L, b:b + 1])
        return {k: g.copy() for k, g in lstm.grads.items()}

    padded()  # warm-up: the kernels' scratch memory is allocated on first use
    t0 = time.perf_counter()
    g_pad = padded()
    t1 = time.perf_counter()
    g_one = one_by_one()
    t2 = time.perf_counter()
    worst = max(float(np.abs(g_pad[k] - g_one[k]).max() / (np.abs(g_one[k]).max() + 1e-300)) for k in g_pad)
    print(f"LSTM T={T} B={B} I={I} H={H}, lengths {lengths.min()}-{lengths.max()}, float64")
    print(f"largest relative difference between the gradients: {worst:.2e}")
    print(f"padded batch: {1e3 * (t1 - t0):.1f} ms   one sequence at a time: {1e3 * (t2 - t1):.1f} ms   "
          f"speed-up {(t2 - t1) / (t1 - t0):.1f}x")
    ok = worst < 1e-10
    print("check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
