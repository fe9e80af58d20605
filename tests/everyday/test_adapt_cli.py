"""`graphspec adapt`: Normalization statistics from data, as Keras' adapt computes them."""
import numpy as np
from click.testing import CliRunner

from graphspec.cli import main

SPEC = """
graphspec: 1
layers:
  norm: {type: Normalization, axis: -1}
  out: {type: Dense, units: 2}
models:
  m:
    inputs:
      x: {shape: [3]}
    calls:
      - {layer: norm, in: x, out: z}
      - {layer: out, in: z, out: y}
    outputs: [y]
"""


def test_adapt_writes_the_data_mean_and_variance_and_predict_uses_them(tmp_path):
    spec = tmp_path / "n.yaml"
    spec.write_text(SPEC)
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(200, 3)) * [1, 5, 10] + [0, 3, -2]).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x)
    result = CliRunner().invoke(main, ["adapt", str(spec), "--data", str(tmp_path / "d.npz"),
                                       "-o", str(tmp_path / "w.npz")])
    assert result.exit_code == 0, result.output
    assert "adapted 'norm' on 200 sample(s)" in result.output
    weights = np.load(tmp_path / "w.npz", allow_pickle=False)
    np.testing.assert_allclose(weights["norm/mean"], x.astype(np.float64).mean(0), rtol=1e-5)
    np.testing.assert_allclose(weights["norm/variance"], x.astype(np.float64).var(0), rtol=1e-4)

    import graphspec
    graph = graphspec.load(spec, seed=0)
    graph.load_weights(tmp_path / "w.npz")
    z = graph.models["m"].predict(x)["y"]
    kernel, bias = weights["out/kernel"], weights["out/bias"]
    expected = (x - weights["norm/mean"]) / np.sqrt(weights["norm/variance"]) @ kernel + bias
    np.testing.assert_allclose(z, expected, rtol=1e-4, atol=1e-5)


def test_adapt_on_a_spec_without_normalization_is_one_line(tmp_path):
    spec = tmp_path / "n.yaml"
    spec.write_text(SPEC.replace("  norm: {type: Normalization, axis: -1}\n", "")
                    .replace("      - {layer: norm, in: x, out: z}\n", "")
                    .replace("in: z, out: y", "in: x, out: y"))
    np.savez(tmp_path / "d.npz", x=np.ones((4, 3), np.float32))
    result = CliRunner().invoke(main, ["adapt", str(spec), "--data", str(tmp_path / "d.npz"),
                                       "-o", str(tmp_path / "w.npz")])
    assert result.exit_code == 1
    assert result.output.strip() == "error: adapt: the spec has no Normalization layer"
    assert not (tmp_path / "w.npz").exists()
