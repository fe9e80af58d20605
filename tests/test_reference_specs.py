"""Every spec in specs/ is valid, and each reference behaviour it carries holds."""
import numpy as np
import pytest
from click.testing import CliRunner
from gradcheck import check_model_gradients
from specs_util import SPECS

import graphspec
from graphspec.cli import main

ALL_SPECS = sorted(SPECS.glob("*.yaml"))


def test_every_shipped_spec_validates():
    result = CliRunner().invoke(main, ["validate", str(SPECS)])
    assert result.exit_code == 0, result.output
    assert len(ALL_SPECS) >= 6


def test_shared_layer_two_entry_points():
    """Item 2: model_b on arange(100) gives 0, 10, ..., 990 through the shared times10."""
    graph = graphspec.load(SPECS / "shared_entry.yaml", seed=0)
    out = graph.models["model_b"].predict({"input_b": np.arange(100).reshape(10, 10)})
    np.testing.assert_array_equal(out["scaled"].ravel(), np.arange(0, 1000, 10))
    times10 = graph.layers["times10"]
    assert [(n.node_index, n.model) for n in times10.inbound_nodes] == [
        (0, "model_a"), (1, "model_b"), (2, "scale_by_10")]
    noise = graph.models["model_a"].predict({"input_a": np.zeros((4, 1))}, seed=3)
    assert noise["scaled_noise"].shape == (4, 10)
    assert 3 < noise["scaled_noise"].std() < 20          # 10 x standard normal
    via_submodel = graph.models["model_c"].predict({"input_c": np.zeros((4, 1))}, seed=3)
    np.testing.assert_array_equal(via_submodel["scaled_c"], noise["scaled_noise"])


def test_lambda_slices_keep_the_batch_axis_and_feed_two_dense_layers():
    """Item 11: x[:, :5] and x[:, 5:] each feed their own Dense(10)."""
    graph = graphspec.load(SPECS / "lambda_ops.yaml", seed=0, dtype="float64")
    model = graph.models["split_halves"]
    assert model.tensor("head").shape == (None, 5) and model.tensor("tail").shape == (None, 5)
    x = np.arange(30, dtype=float).reshape(3, 10)
    out = model.predict(x)
    w = {k: v.data for k, v in graph.weights().items()}
    np.testing.assert_allclose(out["head_features"],
                               x[:, :5] @ w["dense_first/kernel"] + w["dense_first/bias"])
    np.testing.assert_allclose(out["tail_features"],
                               x[:, 5:] @ w["dense_second/kernel"] + w["dense_second/bias"])
    check_model_gradients(model, {"vector": x})


def test_output_shape_as_tuple_or_expression():
    """Item 12: a list excludes the batch axis; an expression of s includes it."""
    graph = graphspec.load(SPECS / "lambda_ops.yaml", seed=0)
    assert graph.models["halving"].tensor("narrow").shape == (None, 4)
    out = graph.models["halving"].predict(np.arange(16.0).reshape(2, 8))["narrow"]
    np.testing.assert_array_equal(out, [[0, 2, 4, 6], [8, 10, 12, 14]])


def test_batch_dot_reference_numbers():
    """Item 13: batch_dot([[1,2],[3,4]], [[5,6],[7,8]], axes=1) -> [[17],[53]]."""
    graph = graphspec.load(SPECS / "lambda_ops.yaml", seed=0)
    out = graph.models["batch_dot"].predict({"left": [[1, 2], [3, 4]], "right": [[5, 6], [7, 8]]})
    np.testing.assert_array_equal(out["products"], [[17], [53]])


def test_custom_merge_reference_numbers():
    """Item 14: abs(x[0]) + abs(x[1]) on [-1,-2,3] and [4,-5,-6] gives [5,7,9]."""
    graph = graphspec.load(SPECS / "lambda_ops.yaml", seed=0)
    out = graph.models["abs_merge"].predict({"a": [[-1, -2, 3]], "b": [[4, -5, -6]]})
    np.testing.assert_array_equal(out["summed"], [[5, 7, 9]])


def test_op_tour_values_and_gradients():
    """Item 13: the op set, checked against numpy and differentiated end to end."""
    graph = graphspec.load(SPECS / "lambda_ops.yaml", seed=0, dtype="float64")
    model = graph.models["op_tour"]
    rng = np.random.default_rng(1)
    values = rng.standard_normal((2, 4, 3))
    indices = np.array([[0, 4, 2, 2], [1, 1, 3, 0]])
    out = model.predict({"values": values, "indices": indices})
    t = values.transpose(0, 2, 1)
    reduced = (t ** 2).sum(2) + np.exp(t).mean(2) - t.max(2)
    smooth = np.sqrt(np.clip(np.abs(reduced), 0.01, 100)) + np.log1p(np.abs(reduced))
    onehot_counts = np.eye(5)[indices].sum(1)
    np.testing.assert_allclose(out["joined"], np.concatenate([smooth, onehot_counts], -1))
    np.testing.assert_allclose(out["picked"], values[:, [3, 1], :])
    np.testing.assert_allclose(out["projected"], values @ [[1.0], [2.0], [3.0]])
    check_model_gradients(model, {"values": values, "indices": indices})


def test_node_api_on_a_layer_with_one_node():
    graph = graphspec.load(SPECS / "mlp.yaml", seed=0)
    dense = graph.layers["dense_1"]
    assert dense.input_shape == (None, 784) and dense.output_shape == (None, 64)
    assert dense.output.name == "hidden_1"
    with pytest.raises(ValueError, match="node index 1 does not exist"):
        dense.output_at(1)


def test_multiple_inbound_nodes_need_the_node_indexed_form():
    graph = graphspec.load(SPECS / "shared_entry.yaml", seed=0)
    times10 = graph.layers["times10"]
    with pytest.raises(ValueError, match=r"multiple inbound nodes \(3\).*use output_at"):
        _ = times10.output
    assert times10.output_at(1).name == "scaled"
    assert times10.input_at(1).name == "input_b"
    assert times10.input_shape == (None, 10)   # same at every node: well defined
