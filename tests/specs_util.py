"""Small helpers to write spec files in tests."""
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "specs"


def write_spec(tmp_path, text, name="spec.yaml"):
    path = Path(tmp_path) / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


MLP = """
graphspec: 1
layers:
  dense_1: {type: Dense, units: 8, activation: relu}
  out: {type: Dense, units: 3, activation: softmax}
models:
  mlp:
    inputs:
      x: {shape: [4]}
    calls:
      - {layer: dense_1, in: x, out: h}
      - {layer: out, in: h, out: probs}
    outputs: [probs]
"""
