"""Write the 8x8 digits scikit-learn ships (no download) as graphspec data files.

``out/digits_train.npz`` and ``out/digits_test.npz`` hold ``pixels`` (N, 64) in [0, 1]
and ``digit`` (N,) integer labels, keyed by the input and output names of
specs/mlp.yaml; ``out/digits_first5.npy`` is five test images for ``predict``.
"""
import os
import sys

import numpy as np
from sklearn.datasets import load_digits


def main(out_dir: str) -> None:
    digits = load_digits()
    pixels = (digits.data / 16.0).astype(np.float32)
    labels = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    split = int(0.8 * len(labels))
    train, test = order[:split], order[split:]
    os.makedirs(out_dir, exist_ok=True)
    np.savez(os.path.join(out_dir, "digits_train.npz"), pixels=pixels[train], digit=labels[train])
    np.savez(os.path.join(out_dir, "digits_test.npz"), pixels=pixels[test], digit=labels[test])
    np.save(os.path.join(out_dir, "digits_first5.npy"), pixels[test[:5]])
    print(f"wrote {len(train)} training and {len(test)} test digits to {out_dir}/")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out")
