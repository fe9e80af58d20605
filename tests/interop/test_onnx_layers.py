"""Every layer type and configuration the shipped specs do not cover, exported and run
in onnxruntime against ``predict`` (agreement rule: graphspec.interop.onnx_check)."""
import json

import numpy as np
import pytest
from specs_util import SPECS

import graphspec
from graphspec.interop.onnx_check import check_against_predict, random_feeds
from graphspec.interop.onnx_export import to_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")


def one_call(layer: dict, shapes, outputs: int = 1, dtypes=None) -> str:
    """A spec with one model calling ``layer`` once on inputs of ``shapes``."""
    dtypes = dtypes or [None] * len(shapes)
    inputs = {f"x{i}": dict({"shape": list(s)}, **({"dtype": d} if d else {}))
              for i, (s, d) in enumerate(zip(shapes, dtypes))}
    ins = list(inputs) if len(inputs) > 1 else "x0"
    outs = [f"y{i}" for i in range(outputs)]
    call = {"layer": layer, "in": ins, "out": outs if outputs > 1 else outs[0]}
    return json.dumps({"graphspec": 1, "models": {"m": {
        "inputs": inputs, "calls": [call], "outputs": outs}}})


def randomize(graph, seed=0, scale=0.5):
    """Weights away from their initial values (BatchNormalization statistics included),
    so a converter that drops a weight or reorders gates cannot pass."""
    rng = np.random.default_rng(seed)
    for key, var in graph.weights().items():
        values = rng.standard_normal(var.data.shape) * scale
        if key.endswith("moving_variance"):
            values = rng.uniform(0.5, 1.5, var.data.shape)
        var.data = values.astype(var.data.dtype)


def export_and_compare(text, feeds=None, opset=None, batch=3, seed=0):
    graph = graphspec.loads(text, seed=0)
    randomize(graph, seed)
    model = graph.model()
    proto = to_onnx(model, opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    feeds = feeds or random_feeds(model, batch, seed)
    report = check_against_predict(model, proto, feeds)
    assert all(r["ok"] for r in report.values()), report
    return proto, report


ACTIVATIONS = ["linear", "relu", "sigmoid", "tanh", "softmax", "elu", "selu", "softplus",
               "gelu"]

CASES = {
    **{f"Activation-{a}": ({"type": "Activation", "activation": a}, [(4, 5)])
       for a in ACTIVATIONS},
    "Activation-softmax-axis1": ({"type": "Activation", "activation": "softmax", "axis": 1},
                                 [(3, 4)]),
    "Dense-gelu-rank3": ({"type": "Dense", "units": 3, "activation": "gelu"}, [(2, 4)]),
    "Dense-no-bias": ({"type": "Dense", "units": 3, "use_bias": False}, [(4,)]),
    "Average": ({"type": "Average"}, [(4,), (4,), (4,)]),
    "Maximum": ({"type": "Maximum"}, [(4,), (4,)]),
    "Minimum": ({"type": "Minimum"}, [(2, 4), (1, 4)]),
    "Multiply": ({"type": "Multiply"}, [(4,), (4,)]),
    "Subtract": ({"type": "Subtract"}, [(4,), (4,)]),
    "AveragePooling2D-valid": ({"type": "AveragePooling2D", "pool_size": 2}, [(6, 5, 2)]),
    "AveragePooling2D-same": ({"type": "AveragePooling2D", "pool_size": 3, "strides": 2,
                               "padding": "same"}, [(7, 6, 2)]),
    "MaxPooling2D-same": ({"type": "MaxPooling2D", "pool_size": [2, 3], "padding": "same"},
                          [(5, 7, 2)]),
    "MaxPooling1D-valid": ({"type": "MaxPooling1D", "pool_size": 2}, [(7, 3)]),
    "MaxPooling1D-same": ({"type": "MaxPooling1D", "pool_size": 3, "strides": 2,
                           "padding": "same"}, [(8, 3)]),
    "BatchNormalization-last": ({"type": "BatchNormalization"}, [(4,)]),
    "BatchNormalization-axis1": ({"type": "BatchNormalization", "axis": 1}, [(3, 5, 2)]),
    "BatchNormalization-plain": ({"type": "BatchNormalization", "center": False,
                                  "scale": False, "epsilon": 0.1}, [(2, 3)]),
    "LayerNormalization-last": ({"type": "LayerNormalization"}, [(3, 5)]),
    "LayerNormalization-axes": ({"type": "LayerNormalization", "axis": [2, 1]}, [(3, 4, 2)]),
    "LayerNormalization-no-center": ({"type": "LayerNormalization", "center": False,
                                      "axis": [1]}, [(3, 4)]),
    "Conv1D-causal-dilated": ({"type": "Conv1D", "filters": 3, "kernel_size": 3,
                               "padding": "causal", "dilation_rate": 2}, [(9, 2)]),
    "Conv1D-same-strided": ({"type": "Conv1D", "filters": 2, "kernel_size": 4, "strides": 2,
                             "padding": "same", "activation": "tanh"}, [(9, 3)]),
    "Conv2D-same-strided": ({"type": "Conv2D", "filters": 3, "kernel_size": [3, 2],
                             "strides": 2, "padding": "same"}, [(7, 6, 2)]),
    "Conv2D-dilated-no-bias": ({"type": "Conv2D", "filters": 2, "kernel_size": 3,
                                "dilation_rate": 2, "use_bias": False,
                                "activation": "sigmoid"}, [(8, 8, 3)]),
    "Dot-axes1": ({"type": "Dot", "axes": 1}, [(5,), (5,)]),
    "Dot-axes22": ({"type": "Dot", "axes": [2, 2]}, [(3, 4), (5, 4)]),
    "Dot-normalize": ({"type": "Dot", "axes": [1, 2], "normalize": True}, [(3, 4), (5, 3)]),
    "Dropout": ({"type": "Dropout", "rate": 0.5}, [(6,)]),
    "Flatten": ({"type": "Flatten"}, [(2, 3, 4)]),
    "GlobalAveragePooling2D": ({"type": "GlobalAveragePooling2D"}, [(3, 4, 2)]),
    "GlobalMaxPooling2D-keepdims": ({"type": "GlobalMaxPooling2D", "keepdims": True},
                                    [(3, 4, 2)]),
    "Permute": ({"type": "Permute", "dims": [2, 3, 1]}, [(2, 3, 4)]),
    "RepeatVector": ({"type": "RepeatVector", "n": 3}, [(4,)]),
    "Reshape": ({"type": "Reshape", "target_shape": [-1, 2]}, [(3, 4)]),
    "ZeroPadding2D": ({"type": "ZeroPadding2D", "padding": [[1, 2], [0, 1]]}, [(3, 3, 2)]),
    "TimeDistributed-Dense": ({"type": "TimeDistributed",
                               "layer": {"type": "Dense", "units": 3}}, [(4, 5)]),
    "TimeDistributed-Conv2D": ({"type": "TimeDistributed",
                                "layer": {"type": "Conv2D", "filters": 2, "kernel_size": 2}},
                               [(3, 4, 4, 1)]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_layer_exports_and_agrees(case):
    layer, shapes = CASES[case]
    export_and_compare(one_call(layer, shapes))


RECURRENT = {
    "SimpleRNN": {"type": "SimpleRNN", "units": 4},
    "SimpleRNN-relu-seq-backwards": {"type": "SimpleRNN", "units": 3, "activation": "relu",
                                     "return_sequences": True, "go_backwards": True},
    "LSTM-seq-state": {"type": "LSTM", "units": 4, "return_sequences": True,
                       "return_state": True},
    "LSTM-backwards-state": {"type": "LSTM", "units": 3, "go_backwards": True,
                             "return_state": True},
    "LSTM-hard-sigmoid-no-bias": {"type": "LSTM", "units": 3, "use_bias": False,
                                  "recurrent_activation": "hard_sigmoid",
                                  "return_sequences": True},
    "LSTM-linear-softplus": {"type": "LSTM", "units": 2, "activation": "linear",
                             "recurrent_activation": "softplus"},
    "LSTM-elu-relu": {"type": "LSTM", "units": 2, "activation": "elu",
                      "recurrent_activation": "relu", "return_sequences": True},
    "GRU-reset-after": {"type": "GRU", "units": 4, "return_sequences": True},
    "GRU-reset-before-state": {"type": "GRU", "units": 3, "reset_after": False,
                               "return_state": True},
    "GRU-backwards-hard-sigmoid": {"type": "GRU", "units": 3, "go_backwards": True,
                                   "recurrent_activation": "hard_sigmoid",
                                   "return_sequences": True},
    "GRU-no-bias-relu": {"type": "GRU", "units": 2, "use_bias": False, "activation": "relu"},
    # selu is not an activation of ONNX's recurrent nodes: these are unrolled over time
    "unrolled-SimpleRNN-selu-seq-backwards": {"type": "SimpleRNN", "units": 3,
                                              "activation": "selu", "return_sequences": True,
                                              "go_backwards": True},
    "unrolled-LSTM-selu-seq-state": {"type": "LSTM", "units": 3, "activation": "selu",
                                     "return_sequences": True, "return_state": True},
    "unrolled-LSTM-selu-gates-no-bias": {"type": "LSTM", "units": 2, "use_bias": False,
                                         "recurrent_activation": "selu"},
    "unrolled-GRU-selu-reset-after-state": {"type": "GRU", "units": 3, "activation": "selu",
                                            "return_state": True, "return_sequences": True},
    "unrolled-GRU-selu-reset-before": {"type": "GRU", "units": 3, "activation": "selu",
                                       "reset_after": False, "return_sequences": True,
                                       "recurrent_activation": "hard_sigmoid"},
    "unrolled-GRU-selu-backwards-no-bias": {"type": "GRU", "units": 2, "activation": "selu",
                                            "use_bias": False, "go_backwards": True},
}


def _outputs(layer: dict) -> int:
    if layer["type"] == "Bidirectional":
        inner = layer["layer"]
        states = (2 if inner["type"] == "LSTM" else 1) * 2 if inner.get("return_state") else 0
        return (2 if layer.get("merge_mode", "concat") is None else 1) + states
    return 1 + ((2 if layer["type"] == "LSTM" else 1) if layer.get("return_state") else 0)


@pytest.mark.parametrize("case", sorted(RECURRENT))
def test_recurrent_layer_agrees(case):
    """Gate reordering, reset_after, go_backwards, states: on weights of scale 0.5,
    so every gate is away from its saturation and a swapped block shows."""
    layer = RECURRENT[case]
    proto, _ = export_and_compare(one_call(layer, [(5, 3)], _outputs(layer)), batch=4)
    op = {"SimpleRNN": "RNN"}.get(layer["type"], layer["type"])
    unrolled = case.startswith("unrolled")
    assert [n.op_type for n in proto.graph.node].count(op) == (0 if unrolled else 1)


BIDIRECTIONAL = {
    "concat-seq": {"merge_mode": "concat", "layer": {"type": "LSTM", "units": 3,
                                                      "return_sequences": True}},
    "sum-gru": {"merge_mode": "sum", "layer": {"type": "GRU", "units": 3}},
    "mul-rnn-seq": {"merge_mode": "mul", "layer": {"type": "SimpleRNN", "units": 2,
                                                    "return_sequences": True}},
    "ave-lstm-state": {"merge_mode": "ave", "layer": {"type": "LSTM", "units": 2,
                                                       "return_state": True}},
    "none-gru-seq-state": {"merge_mode": None, "layer": {"type": "GRU", "units": 2,
                                                         "return_sequences": True,
                                                         "return_state": True}},
    # a wrapped layer going backwards needs its own backward_layer (Keras' rule)
    "concat-backwards-inner": {"layer": {"type": "LSTM", "units": 2, "go_backwards": True,
                                         "return_sequences": True},
                               "backward_layer": {"type": "GRU", "units": 3,
                                                  "return_sequences": True}},
    "unrolled-concat-gru-selu": {"layer": {"type": "GRU", "units": 2, "activation": "selu",
                                           "return_sequences": True, "return_state": True}},
}


@pytest.mark.parametrize("case", sorted(BIDIRECTIONAL))
def test_bidirectional_agrees(case):
    layer = dict(BIDIRECTIONAL[case], type="Bidirectional")
    export_and_compare(one_call(layer, [(4, 3)], _outputs(layer)))


def test_shared_lstm_is_one_set_of_initializers():
    """Two calls of one LSTM: two LSTM nodes reading the same W, R and B."""
    text = json.dumps({"graphspec": 1, "layers": {"enc": {"type": "LSTM", "units": 3}},
                       "models": {"m": {"inputs": {"a": {"shape": [4, 2]},
                                                   "b": {"shape": [4, 2]}},
                                        "calls": [{"layer": "enc", "in": "a", "out": "ea"},
                                                  {"layer": "enc", "in": "b", "out": "eb"}],
                                        "outputs": ["ea", "eb"]}}})
    proto, _ = export_and_compare(text)
    lstms = [n for n in proto.graph.node if n.op_type == "LSTM"]
    assert len(lstms) == 2 and list(lstms[0].input[1:]) == list(lstms[1].input[1:])
    assert sorted(i.name for i in proto.graph.initializer if i.name.startswith("enc/")) == \
        ["enc/onnx_B", "enc/onnx_R", "enc/onnx_W"]


def test_embedding_on_float_indices():
    text = one_call({"type": "Embedding", "input_dim": 7, "output_dim": 3}, [(4,)])
    feeds = {"x0": np.array([[0, 6, 2, 2], [5, 1, 0, 3]], dtype=np.float32)}
    export_and_compare(text, feeds=feeds)


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_opsets_at_the_edges(opset):
    """Reductions take axes as an attribute before opset 18 and as an input from 18."""
    layer = {"type": "Lambda", "expr": "max(x, axis=1) + mean(x, axis=(1, 2))[:, None] + "
                                       "min(sum(x, axis=2), axis=1, keepdims=True)"}
    proto, _ = export_and_compare(one_call(layer, [(3, 4)]), opset=opset)
    assert proto.opset_import[0].version == opset
    export_and_compare(one_call({"type": "LayerNormalization", "axis": [1, 2]}, [(3, 4)]),
                       opset=opset)


def test_float64_graph_exports_as_float32():
    graph = graphspec.load(SPECS / "lambda_ops.yaml", seed=0, dtype="float64")
    model = graph.models["op_tour"]
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert {i.data_type for i in proto.graph.initializer} <= {onnx.TensorProto.FLOAT,
                                                              onnx.TensorProto.INT64}
    feeds = random_feeds(model, 3, 0)
    feeds = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in feeds.items()}
    report = check_against_predict(model, proto, feeds)
    assert all(r["ok"] for r in report.values()), report


def test_unknown_time_axis_stays_symbolic():
    """A (batch, None, 3) sequence: the time axis is a symbolic dim; any length runs."""
    text = one_call({"type": "GRU", "units": 3, "return_sequences": True}, [(None, 3)])
    graph = graphspec.loads(text, seed=0)
    randomize(graph)
    model = graph.model()
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "x0_dim1", 3]
    for steps in (2, 6):
        x = np.random.default_rng(steps).standard_normal((2, steps, 3))
        feeds = {"x0": x.astype(np.float32)}
        report = check_against_predict(model, proto, feeds)
        assert all(r["ok"] for r in report.values()), report


@pytest.mark.parametrize("layer", [
    {"type": "Conv2D", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
    {"type": "MaxPooling2D", "pool_size": 3, "strides": 2, "padding": "same"},
    {"type": "AveragePooling2D", "pool_size": 2, "padding": "same"},
], ids=["Conv2D", "MaxPooling2D", "AveragePooling2D"])
def test_same_padding_on_unknown_image_sizes(layer):
    """Sizes unknown when exporting: ONNX's SAME_UPPER, TensorFlow's rule, at run time."""
    text = one_call(layer, [(None, None, 2)])
    for height, width in ((7, 6), (4, 5)):
        x = np.random.default_rng(height).standard_normal((2, height, width, 2))
        export_and_compare(text, feeds={"x0": x.astype(np.float32)})
