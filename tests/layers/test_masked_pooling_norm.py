"""Masks in GlobalAveragePooling1D, GlobalMaxPooling1D, Softmax and BatchNormalization, as
Keras 3 applies them: models built from YAML text with masks from Embedding(mask_zero)
and Masking (right, left, no and all padding), the same model in Keras (torch backend)
with the same weights: float32 and float64 outputs and one training step's float64
gradients within 1e-5 relative, finite differences (float64) on the tape.

Run with ``-s`` to see the largest errors measured."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "zoo_attention"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from gradcheck import check_gradients  # noqa: E402
from masked_models import (WORST, build_pair, compare_with_keras,  # noqa: E402
                           finite_differences, front_data, keep_rows, ours, rel_err,
                           spec_text)
from torch_report import worst_error_reporter  # noqa: E402

import graphspec  # noqa: E402
from graphspec.autodiff import Variable  # noqa: E402
from graphspec.errors import ShapeError  # noqa: E402
from graphspec.layers.base import CallContext  # noqa: E402
from graphspec.layers.registry import REGISTRY  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
report_worst = worst_error_reporter(WORST)

ROWS = ("right", "left", "none", "all")


def check(label, fronts, layers, calls, outputs, keras_body, rows=ROWS, training=False,
          **sizes):
    inputs = [front_data(kind, keep_rows(rows, sizes.get("steps", 5)), seed=i,
                         features=sizes.get("features", 4))
              for i, kind in enumerate(fronts.values())]
    graph, probes = compare_with_keras(keras, label, fronts, layers, calls, outputs,
                                       keras_body, inputs, training=training, **sizes)
    finite_differences(graph, inputs, probes, training=training, label=label)
    return graph, inputs


def dense_then(layer_spec, keras_layer):
    """A model front -> Dense 'proj' (passes the mask, gives weights) -> the layer."""
    layers = {"proj": {"type": "Dense", "units": 3}, "under_test": layer_spec}
    calls = [{"layer": "proj", "in": "x", "out": "h"},
             {"layer": "under_test", "in": "h", "out": "y"}]

    def body(keras, t, dtype):
        h = keras.layers.Dense(3, name="proj", dtype=dtype)(t["x"])
        return [keras_layer(keras, dtype)(h)]
    return layers, calls, ["y"], body


# -- GlobalAveragePooling1D ---------------------------------------------------------------
@pytest.mark.parametrize("front", ["embedding", "masking"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_average_pooling_averages_unmasked_steps(front, keepdims):
    """A sample with every step masked is 0 / 0 = NaN in both (the probe skips it)."""
    layers, calls, outs, body = dense_then(
        {"type": "GlobalAveragePooling1D", "keepdims": keepdims},
        lambda keras, dtype: keras.layers.GlobalAveragePooling1D(
            keepdims=keepdims, name="under_test", dtype=dtype))
    graph, inputs = check(f"GAP1D {front} keepdims={keepdims}", {"x": front}, layers,
                          calls, outs, body)
    y = ours(graph, inputs)[0][0]
    assert np.isnan(y[3]).all() and not np.isnan(y[:3]).any()
    assert graph.model().tensor("y").mask_source is None     # consumed, as Keras


def test_global_average_pooling_channels_first_mask():
    """channels_first: Keras expands the (batch, steps) mask on axis 1."""
    layer = REGISTRY["GlobalAveragePooling1D"]("pool", {"data_format": "channels_first"})
    layer.compute_output_shapes([(None, 3, 5)])
    keep = keep_rows(("right", "left", "none"))
    x = np.random.default_rng(0).standard_normal((3, 3, 5))
    got = layer.forward_masked([Variable(x)], [keep], CallContext())[0].data
    klayer = keras.layers.GlobalAveragePooling1D(data_format="channels_first",
                                                 dtype="float64")
    want = klayer(torch.tensor(x), mask=torch.tensor(keep)).numpy()
    err = rel_err(got, want)
    WORST[("GAP1D channels_first", "keras float64 forward")] = err
    assert err <= 1e-12
    check_gradients(lambda v: layer.forward_masked([v], [keep], CallContext()), x)
    with pytest.raises(ShapeError, match="does not fit the steps"):
        layer.forward_masked([Variable(x)], [keep[:, :3]], CallContext())


# -- GlobalMaxPooling1D -------------------------------------------------------------------
def test_global_max_pooling_drops_the_mask_with_a_warning_as_keras():
    """Keras' GlobalMaxPooling1D does not support masking: it warns and takes the max
    over every step (the padded zeros included); graphspec warns at compile time."""
    layers, calls, outs, body = dense_then(
        {"type": "GlobalMaxPooling1D"},
        lambda keras, dtype: keras.layers.GlobalMaxPooling1D(name="under_test",
                                                             dtype=dtype))
    graph, _ = check("GMP1D", {"x": "masking"}, layers, calls, outs, body)
    assert any("does not support masking" in w.format() for w in graph.warnings)


# -- Softmax ------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [-1, [1, 2]])
def test_softmax_with_a_mask_that_broadcasts(axis):
    """Keras broadcasts the (batch, steps) mask against (batch, steps, features) aligned
    on the right, so it fits only when steps == features and batch == steps (here 4):
    mask[i, j] then masks x[:, i, j]; masked inputs -1e9, masked outputs 0."""
    layers = {"soft": {"type": "Softmax", "axis": axis}}
    calls = [{"layer": "soft", "in": "x", "out": "y"}]

    def body(keras, t, dtype):
        return [keras.layers.Softmax(axis=axis, name="soft", dtype=dtype)(t["x"])]
    graph, inputs = check(f"Softmax axis={axis}", {"x": "masking"}, layers, calls, ["y"],
                          body, steps=4, features=4)
    model = graph.model()
    assert model.tensor("y").mask_source == "x_mask"       # passed on, as Keras
    values, masks = model.run_with_masks([Variable(x) for x in inputs], CallContext())
    keep = keep_rows(ROWS, 4)
    np.testing.assert_array_equal(masks[model.tensor("y").slot], keep)
    y = values[model.tensor("y").slot].data
    assert (y[:, ~keep] == 0).all()                       # right-aligned: x[:, i, j]


def test_softmax_refuses_a_mask_that_does_not_broadcast_as_keras():
    layers = {"soft": {"type": "Softmax"}}
    calls = [{"layer": "soft", "in": "x", "out": "y"}]
    graph = graphspec.loads(spec_text({"x": "embedding"}, layers, calls, ["y"]), seed=0)
    tokens = front_data("embedding", keep_rows(ROWS))
    with pytest.raises(ShapeError, match="does not broadcast"):
        graph.model().predict({"x_in": tokens})
    i = keras.Input((5,), dtype="int32")
    kmodel = keras.Model(i, keras.layers.Softmax()(
        keras.layers.Embedding(7, 4, mask_zero=True)(i)))
    with pytest.raises(ValueError, match="broadcastable"):
        kmodel.predict(tokens, verbose=0)


# -- BatchNormalization -------------------------------------------------------------------
@pytest.mark.parametrize("front", ["embedding", "masking"])
@pytest.mark.parametrize("axis", [-1, 1])
@pytest.mark.parametrize("training", [True, False])
def test_batch_normalization_masked_moments(front, axis, training):
    """Training: moments over the unmasked positions (Keras' _moments, count + 1e-7);
    inference: the moving statistics, mask or not."""
    config = {"type": "BatchNormalization", "axis": axis}
    layers, calls, outs, body = dense_then(config, lambda keras, dtype:
                                           keras.layers.BatchNormalization(
                                               axis=axis, name="under_test", dtype=dtype))
    graph, _ = check(f"BatchNorm {front} axis={axis} training={training}", {"x": front},
                     layers, calls, outs, body, training=training)
    assert graph.model().tensor("y").mask_source == ("x_embed" if front == "embedding"
                                                      else "x_mask")


def test_batch_normalization_moving_statistics_from_unmasked_positions():
    layers, calls, outs, body = dense_then(
        {"type": "BatchNormalization", "momentum": 0.5},
        lambda keras, dtype: keras.layers.BatchNormalization(momentum=0.5,
                                                             name="under_test", dtype=dtype))
    graph, kmodel = build_pair(keras, {"x": "embedding"}, layers, calls, outs, body)
    tokens = front_data("embedding", keep_rows(ROWS))
    ctx = CallContext(training=True)
    graph.model().forward([Variable(tokens)], ctx)
    updates = {id(var): value for var, value in ctx.state_updates}
    kmodel(torch.tensor(tokens), training=True)
    bn = kmodel.get_layer("under_test")
    for name in ("moving_mean", "moving_variance"):
        ours_var = graph.layers["under_test"].weights[name]
        assert not np.allclose(updates[id(ours_var)], ours_var.data)     # it moved
        err = rel_err(updates[id(ours_var)], getattr(bn, name).numpy())
        WORST[("BatchNorm moving statistics", "keras float64")] = err
        assert err <= 1e-5, name     # Keras' Dense multiplies in float32 (ops.matmul)
