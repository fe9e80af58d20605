"""Stateful RNNs continue each sequence from one batch to the next: every command that
runs batches refuses, before any work, a batch size that would leave a shorter last
batch, and a Dask run (chunks in any order on any worker); reset_states starts over."""
from __future__ import annotations

import numpy as np
import pytest

import graphspec
from graphspec.errors import InputError

SPEC = """graphspec: 1
models:
  m:
    inputs: {x: {shape: [4, 3]}}
    calls:
      - {layer: {type: LSTM, units: 5, stateful: true, name: rnn}, in: x, out: h}
    outputs: [h]
training:
  default: {model: m, loss: mse, optimizer: {type: sgd}, batch_size: 4, shuffle: false}
"""

X = np.random.default_rng(0).normal(size=(12, 4, 3)).astype(np.float32)


def model():
    return graphspec.loads(SPEC, seed=0).models["m"]


def test_predict_refuses_a_shorter_last_batch_before_running():
    m = model()
    with pytest.raises(InputError, match="10 rows do not split into batches of 4"):
        m.predict(X[:10], batch_size=4)
    assert m.layers()[0].states is None or not np.any(m.layers()[0].states)  # nothing ran


def test_batches_continue_the_sequences_and_reset_states_starts_over():
    m = model()
    first = m.predict(X[:4])["h"]
    second = m.predict(X[:4])["h"]             # the same rows again, from the carried state
    assert not np.allclose(first, second)
    assert m.reset_states() == 1
    np.testing.assert_array_equal(m.predict(X[:4])["h"], first)


def test_fit_refuses_a_batch_size_that_leaves_a_shorter_batch():
    m = model()
    with pytest.raises(InputError, match="do not split into batches of 5"):
        m.fit(X[:12], np.zeros((12, 5), np.float32), batch_size=5, epochs=1, verbose=False)
    m.fit(X[:12], np.zeros((12, 5), np.float32), batch_size=4, epochs=1, verbose=False)


def test_the_dask_engine_refuses_stateful_models():
    pytest.importorskip("distributed")
    from graphspec.engines import dask_engine
    with pytest.raises(InputError, match="run it with the embedded engine"):
        dask_engine.predict(model(), {"x": X}, batch_size=4, client=object())


def test_export_keras_takes_the_batch_size_a_stateful_model_needs(tmp_path):
    pytest.importorskip("keras")
    from click.testing import CliRunner

    from graphspec.cli import main
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    runner = CliRunner()
    assert runner.invoke(main, ["build", str(spec), "--seed", "0", "-o",
                                str(tmp_path / "w.npz")]).exit_code == 0
    args = ["export", str(spec), "--weights", str(tmp_path / "w.npz"), "--format", "keras"]
    refused = runner.invoke(main, args + ["-o", str(tmp_path / "m.keras")])
    assert refused.exit_code == 1 and "--batch-size N" in refused.output
    done = runner.invoke(main, args + ["--batch-size", "4", "-o", str(tmp_path / "m.keras")])
    assert done.exit_code == 0, done.output
    wrong = runner.invoke(main, ["export", str(spec), "--weights", str(tmp_path / "w.npz"),
                                 "--format", "onnx", "--batch-size", "4",
                                 "-o", str(tmp_path / "m.onnx")])
    assert wrong.exit_code == 2 and "--batch-size applies to --format keras only" in wrong.output
