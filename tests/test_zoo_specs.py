"""Reference models built from the layer zoo: shapes, parameter counts, weight sharing,
and training that improves."""
import sys

import numpy as np
import pytest
from specs_util import REPO, SPECS

import graphspec

sys.path.insert(0, str(REPO / "examples"))


def test_node_shapes_differ_between_the_nodes_of_one_layer():
    """Item 7: one Conv2D on a 32x32 and a 64x64 image."""
    graph = graphspec.load(SPECS / "node_shapes.yaml", seed=0)
    conv = graph.layers["shared_conv"]
    assert conv.input_shape_at(0) == (None, 32, 32, 3)
    assert conv.input_shape_at(1) == (None, 64, 64, 3)
    assert conv.output_shape_at(1) == (None, 64, 64, 16)
    with pytest.raises(ValueError, match="use input_shape_at"):
        _ = conv.input_shape
    with pytest.raises(ValueError, match="use output_at"):
        _ = conv.output
    out = graph.models["two_sizes"].predict({"small": np.ones((2, 32, 32, 3)),
                                             "large": np.ones((2, 64, 64, 3))})
    kernel = graph.weights()["shared_conv/kernel"].data
    # an interior pixel of an all-ones image sees the whole kernel, in both nodes
    np.testing.assert_allclose(out["small_features"][0, 5, 5], kernel.sum(axis=(0, 1, 2)),
                               rtol=1e-5)
    np.testing.assert_allclose(out["large_features"][1, 40, 7], kernel.sum(axis=(0, 1, 2)),
                               rtol=1e-5)


def test_shared_vision_sub_model_param_counts_and_weight_identity():
    """Item 3: Keras reports conv 640 + 36,928, Dense(1) on 2 x 7,744 features: 15,489."""
    graph = graphspec.load(SPECS / "shared_vision.yaml", seed=0, initialize=False)
    model = graph.models["same_digit_classifier"]
    assert model.tensor("features_a").shape == (None, 7744)
    assert model.param_count() == (640 + 36928 + 15489, 0)
    vision = graph.models["vision"]
    assert [n.node_index for n in vision.inbound_nodes] == [0, 1]


def _digit_pairs(n, seed):
    """Pairs of 8x8 digits labelled "do they add up to 9 or more?": a task a single
    Dense on the concatenated shared features can learn (equality needs more)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(images), n), rng.integers(0, len(images), n)
    label = (digits.target[a] + digits.target[b] >= 9).astype(np.float32)[:, None]
    return {"digit_a": images[a], "digit_b": images[b], "same": label}


def test_shared_vision_trains_on_digit_pairs():
    pytest.importorskip("sklearn")
    graph = graphspec.load(SPECS / "shared_vision.yaml", seed=0, params={"image_size": 8})
    model = graph.models["same_digit_classifier"]
    train, test = _digit_pairs(800, 0), _digit_pairs(300, 1)
    before = model.evaluate(test)
    model.fit(train, epochs=4, batch_size=32, seed=0, verbose=False)
    after = model.evaluate(test)
    assert after["loss"] < before["loss"] - 0.1
    assert after["accuracy"] > 0.7


def test_time_distributed_model_shares_weights_across_time():
    """Item 4: TimeDistributed(classifier) on (20, 784) -> (20, 10)."""
    graph = graphspec.load(SPECS / "time_distributed.yaml", seed=0)
    sequence = graph.models["sequence_classifier"]
    assert sequence.outputs[0].shape == (None, 20, 10)
    x = np.random.default_rng(0).random((3, 20, 784)).astype(np.float32)
    out = sequence.predict(x)["digits"]
    per_step = graph.models["classifier"].predict(x.reshape(-1, 784))["digit"]
    np.testing.assert_allclose(out, per_step.reshape(3, 20, 10), rtol=1e-5, atol=1e-7)
    assert sequence.param_count() == (784 * 64 + 64 + 64 * 10 + 10, 0)


def test_inception_module_shapes_and_params():
    """Item 8: 140,160 parameters (Keras), 3 x 64 channels out."""
    graph = graphspec.load(SPECS / "inception.yaml", initialize=False)
    model = graph.models["inception"]
    assert model.outputs[0].shape == (None, 256, 256, 192)
    assert model.param_count() == (140160, 0)
    small = graphspec.load(SPECS / "inception.yaml", seed=0, params={"image_size": 9})
    x = np.random.default_rng(0).random((2, 9, 9, 3)).astype(np.float32)
    out = small.models["inception"].predict(x)["mixed"]
    assert out.shape == (2, 9, 9, 192) and (out >= 0).all()


def test_residual_connection_adds_the_input():
    """Item 9: z = x + conv(x)."""
    graph = graphspec.load(SPECS / "residual.yaml", seed=0, params={"image_size": 6},
                           dtype="float64")
    model = graph.models["residual"]
    x = np.random.default_rng(0).random((2, 6, 6, 3))
    conv = graph.layers["conv"]
    from graphspec.autodiff import Variable
    from graphspec.layers import CallContext
    y = conv.forward([Variable(x)], CallContext())[0].data
    np.testing.assert_allclose(model.predict(x)["z"], x + y)
    assert model.param_count() == (84, 0)


@pytest.mark.parametrize("encoder, inner", [(True, True), (True, False), (False, True),
                                            (False, False)])
def test_container_trainable_spec(encoder, inner):
    """Item 18 through the shipped spec and --set style params."""
    graph = graphspec.load(SPECS / "container_trainable.yaml", seed=0,
                           params={"encoder_trainable": encoder, "inner_trainable": inner})
    before = {k: v.data.copy() for k, v in graph.weights().items()}
    rng = np.random.default_rng(0)
    graph.models["regressor"].fit(rng.random((16, 3)), rng.random((16, 1)), epochs=1,
                                  batch_size=8, seed=0, verbose=False)
    moved = {k for k, v in graph.weights().items() if not np.array_equal(v.data, before[k])}
    assert ("inner/kernel" in moved) == (encoder and inner)
    assert "head/kernel" in moved


def test_value_iteration_network_learns_a_policy():
    """Item 20: shared weights over 10 iterations, max over actions, attention."""
    import gridworlds
    graph = graphspec.load(SPECS / "vin.yaml", seed=0)
    model = graph.models["vin"]
    q_conv = graph.layers["q_conv"]
    assert len(q_conv.inbound_nodes) == 10 and len(q_conv.weights) == 1
    train, test = gridworlds.make(2000, seed=0), gridworlds.make(400, seed=1)
    majority = np.bincount(test["action"]).max() / len(test["action"])
    model.fit(train, epochs=3, batch_size=64, seed=0, verbose=False)
    accuracy = model.evaluate(test)["accuracy"]
    assert accuracy > majority + 0.12 and accuracy > 0.25 + 0.25   # chance is 0.25


def test_vin_gradients_through_shared_iterations_and_attention():
    from gradcheck import check_model_gradients
    import gridworlds
    graph = graphspec.load(SPECS / "vin.yaml", seed=0, dtype="float64",
                           params={"grid": 4, "hidden": 3})
    data = gridworlds.make(3, grid=4, seed=2)
    check_model_gradients(graph.models["vin"], {"grid": data["grid"].astype(np.float64),
                                                 "position": data["position"]},
                          max_entries=12, rtol=1e-4, jitter=0.1)


def test_time_distributed_gradients_through_a_sub_model():
    from gradcheck import check_model_gradients
    graph = graphspec.load(SPECS / "time_distributed.yaml", seed=0, dtype="float64",
                           params={"input_dim": 5, "steps": 3})
    x = np.random.default_rng(0).standard_normal((2, 3, 5))
    check_model_gradients(graph.models["sequence_classifier"], {"sequence": x}, jitter=0.1)
