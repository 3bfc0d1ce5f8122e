"""An autoencoder on scikit-learn's 8x8 digits: reconstruction error and a 2-D code scatter.

The 1,797 digit images (64 pixels, scaled to [0, 1]) are split 80/20; a dense autoencoder
64 -> 32 -> 2 -> 32 -> 64 with tanh is trained with nn.fit and Adam. Prints the test
reconstruction error against two baselines (predicting the mean image, and the best rank-2
linear reconstruction, PCA), and writes the 2-D codes coloured by digit to
autoencoder_codes.png when matplotlib is installed. Needs scikit-learn
(`pip install scikit-learn`), which ships the data set.

    python examples/autoencoder_digits.py [--epochs 300] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import nnkern
from nnkern import nn, optim


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--out", default=".")
    args = ap.parse_args(argv)
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("this example needs scikit-learn: pip install scikit-learn")
        return 2
    nnkern.set_num_threads(2)
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(X))
    cut = int(0.8 * len(X))
    tr, te = order[:cut], order[cut:]
    model = nn.Autoencoder([64, 32, 2], activation="tanh", seed=0).flatten_parameters()
    opt = optim.Adam(model.parameters(), lr=3e-3)
    hist = nn.fit(model, nn.MSELoss(), opt, (X[tr], X[tr]), val_data=(X[te], X[te]), epochs=args.epochs,
                  batch_size=64, seed=0, progress=False)
    model.eval()
    err = float(np.mean((model.forward(X[te]) - X[te]) ** 2))
    mean_err = float(np.mean((X[tr].mean(0) - X[te]) ** 2))
    mu = X[tr].mean(0)
    _, _, Vt = np.linalg.svd(X[tr] - mu, full_matrices=False)
    P = Vt[:2].T @ Vt[:2]
    pca_err = float(np.mean(((X[te] - mu) @ P + mu - X[te]) ** 2))
    print(f"test reconstruction MSE: autoencoder {err:.4f}, PCA rank 2 {pca_err:.4f}, mean image {mean_err:.4f} "
          f"({hist.epochs} epochs, {sum(hist.seconds):.1f} s)")
    codes = model.encode(X)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 5))
        sc = ax.scatter(codes[:, 0], codes[:, 1], c=d.target, cmap="tab10", s=6)
        fig.colorbar(sc, ax=ax, label="digit")
        ax.set_title("autoencoder codes of the 8x8 digits")
        fig.tight_layout()
        fig.savefig(f"{args.out}/autoencoder_codes.png", dpi=100)
        hist.plot(f"{args.out}/autoencoder_loss.png", title="autoencoder: MSE per epoch")
        print(f"wrote {args.out}/autoencoder_codes.png and autoencoder_loss.png")
    except ImportError:
        print("(matplotlib not installed: no plots)")
    ok = err < pca_err < mean_err
    print("check:", "PASS" if ok else "FAIL (the autoencoder should beat the rank-2 linear reconstruction)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
