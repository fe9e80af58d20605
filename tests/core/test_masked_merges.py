"""Keras' Multiply, Maximum and Minimum change values, not only masks, when their inputs
carry masks: a masked step counts as 1 in a product, and takes the other side's value in
a maximum or minimum. Same weights -> same numbers and gradients as Keras (torch)."""
from __future__ import annotations

import os

import numpy as np
import pytest

import graphspec
from graphspec import ops
from graphspec.autodiff import backward, recording
from graphspec.runtime import executor

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

A = np.array([[3, 1, 0, 0, 0], [0, 0, 2, 4, 1], [0, 0, 0, 0, 0], [5, 6, 7, 8, 9]])
B = np.array([[0, 1, 1, 0, 0], [1, 0, 0, 0, 1], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]])


def spec(merge: str, second_masked: bool) -> str:
    return f"""graphspec: 1
models:
  m:
    inputs: {{a: {{shape: [5], dtype: int32}}, b: {{shape: [5], dtype: int32}}}}
    calls:
      - {{layer: {{type: Embedding, input_dim: 10, output_dim: 3, mask_zero: true, name: ea}},
         in: a, out: xa}}
      - {{layer: {{type: Embedding, input_dim: 10, output_dim: 3,
                  mask_zero: {str(second_masked).lower()}, name: eb}}, in: b, out: xb}}
      - {{layer: {{type: {merge}, name: merge}}, in: [xa, xb], out: y}}
      - {{layer: {{type: GlobalAveragePooling1D, name: pool}}, in: y, out: z}}
    outputs: [z]
"""


def keras_model(merge: str, second_masked: bool, graph):
    a = keras.Input((5,), dtype="int32")
    b = keras.Input((5,), dtype="int32")
    ea = keras.layers.Embedding(10, 3, mask_zero=True)
    eb = keras.layers.Embedding(10, 3, mask_zero=second_masked)
    y = getattr(keras.layers, merge)()([ea(a), eb(b)])
    model = keras.Model([a, b], keras.layers.GlobalAveragePooling1D()(y))
    ea.set_weights([graph.layers["ea"].weights["embeddings"].data])
    eb.set_weights([graph.layers["eb"].weights["embeddings"].data])
    return model, ea, eb


@pytest.mark.parametrize("merge", ["Multiply", "Maximum", "Minimum"])
@pytest.mark.parametrize("second_masked", [True, False])
def test_masked_merge_values_and_gradients_match_keras(merge, second_masked):
    graph = graphspec.loads(spec(merge, second_masked), seed=3)
    model = graph.models["m"]
    km, ea, eb = keras_model(merge, second_masked, graph)
    ours = model.predict({"a": A, "b": B}, allow_nonfinite=True)["z"]
    theirs = keras.ops.convert_to_numpy(km([A, B]))
    rows = [0, 1, 3]                         # row 2 is fully padded: 0 / 0 on both sides
    np.testing.assert_allclose(ours[rows], theirs[rows], rtol=1e-6, atol=1e-7)
    assert np.isnan(ours[2]).all() == np.isnan(theirs[2]).all()
    # gradients of sum(z) over the unpadded rows, for both embedding tables
    for var in graph.weights().values():
        var.requires_grad, var.grad = True, None
    with recording(True):
        values = executor.run(model, {"a": A[rows], "b": B[rows]}, record=True)
        z = values[model.outputs[0].slot]
        backward(ops.sum_(z))
    out = km([A[rows], B[rows]])
    grads = torch.autograd.grad(out.sum(), [ea.embeddings.value, eb.embeddings.value])
    np.testing.assert_allclose(graph.layers["ea"].weights["embeddings"].grad,
                               grads[0].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(graph.layers["eb"].weights["embeddings"].grad,
                               grads[1].numpy(), rtol=1e-5, atol=1e-6)


def test_masked_merges_differ_from_the_plain_merge():
    """The test above can fail: without the masked path the numbers are others."""
    graph = graphspec.loads(spec("Multiply", True), seed=3)
    model = graph.models["m"]
    masked = model.predict({"a": A, "b": B}, allow_nonfinite=True)["z"]
    layer = graph.layers["merge"]
    type(layer).USES_MASK = False
    try:
        plain = model.predict({"a": A, "b": B}, allow_nonfinite=True)["z"]
    finally:
        type(layer).USES_MASK = True
    assert np.abs(masked[[0, 1]] - plain[[0, 1]]).max() > 1e-3
