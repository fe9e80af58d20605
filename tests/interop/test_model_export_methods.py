"""`graph.models[m].to_onnx(...)` / `.to_keras(...)`: the API form of `graphspec export`."""
import numpy as np
import pytest

import graphspec

onnxruntime = pytest.importorskip("onnxruntime")


def test_to_onnx_runs_in_onnxruntime_like_predict(tmp_path):
    graph = graphspec.load("specs/vae.yaml", seed=0)
    decoder = graph.models["decoder"]            # an alternate entry point, exported alone
    proto = decoder.to_onnx(tmp_path / "decoder.onnx", opset=17)
    assert [i.name for i in proto.graph.input] == decoder.input_names
    z = np.random.default_rng(1).normal(size=(5,) + decoder.inputs[0].shape[1:]).astype("float32")
    session = onnxruntime.InferenceSession(str(tmp_path / "decoder.onnx"))
    got = session.run(None, {decoder.input_names[0]: z})[0]
    want = decoder.predict(z)[decoder.output_names[0]]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_to_keras_writes_an_archive_that_imports_back_to_the_same_weights(tmp_path):
    from graphspec.interop.keras_import import import_keras
    graph = graphspec.load("specs/mlp.yaml", seed=3, params={"input_dim": 12})
    path = graph.models["mlp"].to_keras(tmp_path / "mlp.keras")
    imported = import_keras(path)
    for key, var in graph.weights().items():
        np.testing.assert_array_equal(imported.weights[key], var.data)
