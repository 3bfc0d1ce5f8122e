"""Vanishing and exploding gradients: ||dL/dh_t|| at every step for four recurrent cells.

A loss on the last hidden state is differentiated back through 60 steps of a vanilla RNN
(tanh, sigmoid, relu), a GRU and an LSTM with PyTorch's default initialisation, and of a
relu RNN whose recurrent weights have gain 1.5, with and without per-step gradient clipping.
Prints the gradient norm at a few distances from the loss, and writes the curves to
vanishing_gradients.png when matplotlib is installed.

    python examples/vanishing_gradients.py [--out DIR]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import nnkern
from nnkern import nn


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=".")
    args = ap.parse_args(argv)
    nnkern.set_num_threads(2)
    T, B, I, H = 60, 16, 8, 64
    x = np.random.default_rng(0).standard_normal((T, B, I))
    cells = {
        "rnn tanh": nn.RNN(I, H, nonlinearity="tanh", seed=1, dtype=np.float64),
        "rnn sigmoid": nn.RNN(I, H, nonlinearity="sigmoid", seed=1, dtype=np.float64),
        "rnn relu": nn.RNN(I, H, nonlinearity="relu", seed=1, dtype=np.float64),
        "gru": nn.GRU(I, H, seed=1, dtype=np.float64),
        "lstm": nn.LSTM(I, H, seed=1, dtype=np.float64),
    }
    big = nn.RNN(I, H, nonlinearity="relu", seed=1, dtype=np.float64)
    big.weight_hh_l0[...] = 1.5 * np.eye(H)
    curves = {name: nn.hidden_gradient_norms(m, x) for name, m in cells.items()}
    curves["rnn relu, gain 1.5"] = nn.hidden_gradient_norms(big, x)
    curves["rnn relu, gain 1.5, clipped at 10"] = nn.hidden_gradient_norms(big, x, clip=10.0)
    print(f"||dL/dh_t|| for a loss on h_{T - 1} (T={T}, B={B}, H={H})")
    print(f"{'cell':<36}" + "".join(f"{'t=' + str(T - 1 - d):>12}" for d in (0, 10, 30, 59)))
    for name, n in curves.items():
        print(f"{name:<36}" + "".join(f"{n[T - 1 - d]:>12.3g}" for d in (0, 10, 30, 59)))
    ok = (curves["rnn sigmoid"][0] < 1e-6 * curves["rnn sigmoid"][-1]
          and curves["rnn relu, gain 1.5"][0] > 1e3 * curves["rnn relu, gain 1.5"][-1]
          and curves["rnn relu, gain 1.5, clipped at 10"].max() <= 10 + 1e-9
          and curves["lstm"][0] > curves["rnn sigmoid"][0])
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, n in curves.items():
            ax.semilogy(T - 1 - np.arange(T), np.maximum(n, 1e-300), label=name)
        ax.set_xlabel("steps back from the loss (T-1-t)")
        ax.set_ylabel("||dL/dh_t||")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(f"{args.out}/vanishing_gradients.png", dpi=100)
        print(f"wrote {args.out}/vanishing_gradients.png")
    except ImportError:
        print("(matplotlib not installed: no plot)")
    print("check:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
