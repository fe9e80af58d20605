"""Shared by the scale tests: a tiny trainable spec, the MLP, and their data."""
from pathlib import Path

import numpy as np

import graphspec.api as api

ROOT = Path(__file__).resolve().parents[2]
MLP_SPEC = ROOT / "specs" / "mlp.yaml"

TINY = """\
graphspec: 1
params:
  lr: 0.01
  units: 8
layers:
  hidden: {type: Dense, units: "${units}", activation: relu}
  out: {type: Dense, units: 3, activation: softmax}
models:
  tiny:
    inputs:
      x: {shape: [4]}
    calls:
      - {layer: hidden, in: x, out: h}
      - {layer: out, in: h, out: y}
    outputs: [y]
training:
  default:
    model: tiny
    loss: sparse_categorical_crossentropy
    optimizer: {type: adam, learning_rate: "${lr}"}
    metrics: [accuracy]
    epochs: 3
    batch_size: 16
    validation_split: 0.25
"""


def tiny_spec(directory) -> Path:
    path = Path(directory) / "tiny.yaml"
    path.write_text(TINY)
    return path


def tiny_data(rows=200, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 4))
    return {"x": x, "y": (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)}


def mlp(seed=0):
    """specs/mlp.yaml with 64 inputs (the digits size), weights from ``seed``."""
    return api.load(MLP_SPEC, seed=seed, params={"input_dim": 64})


def digits_like(rows, seed=1) -> dict:
    rng = np.random.default_rng(seed)
    return {"pixels": rng.standard_normal((rows, 64)),
            "digit": rng.integers(0, 10, rows)}


def save_dir(directory, arrays: dict) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(directory / f"{name}.npy", array)
    return directory
