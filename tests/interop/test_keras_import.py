"""Keras 3 models of the functional-API guide (REFERENCE-MODELS.md section A), built in
Keras, saved as .keras, imported as specs: graphspec predicts what Keras predicts
(within 1e-5), with Keras' layer names, shared instances and node indices."""
import numpy as np
import pytest
from conftest import compare_outputs, random_feeds
from test_keras_table import BASE

from graphspec import api
from graphspec.interop.keras_import import import_keras


def assert_same_nodes(keras, path, graph):
    """Keras' own nodes of the saved model, per layer and in order, are graphspec's:
    same count, same inbound layers (what inspect-nodes lists)."""
    def inbound(tensor):
        return tensor.name if tensor.history is None else tensor.history.layer.name

    def walk(model):
        for layer in model.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            ours = graph.layers.get(layer.name) or graph.models[layer.name]
            theirs = layer._inbound_nodes
            assert len(ours.inbound_nodes) == len(theirs), layer.name
            for mine, node in zip(ours.inbound_nodes, theirs):
                names = [t._keras_history.operation.name for t in node.input_tensors]
                assert [inbound(t) for t in mine.input_tensors] == names, layer.name
            if isinstance(layer, keras.Model):
                walk(layer)
    walk(keras.saving.load_model(path))


def run_both(keras, model, keras_dir, label, feeds=None, tol=1e-5):
    """Save ``model``, import it, and compare predictions; returns (graph, result)."""
    path = keras_dir / f"{label}.keras"
    model.save(path)
    result = import_keras(path)
    graph = api.loads(result.text, seed=0, name=str(path))
    graph.set_weights(result.weights)
    top = graph.model(model.name)
    feeds = random_feeds(model) if feeds is None else feeds
    want = model.predict(feeds[0] if len(feeds) == 1 else feeds, verbose=0)
    want = want if isinstance(want, list) else [want]
    got = top.predict(dict(zip(top.input_names, feeds)))
    compare_outputs(label, want, [got[name] for name in top.output_names], tol)
    return graph, result


def test_functional_mlp(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(1)
    pixels = keras.Input((784,), name="pixels")
    h = L.Dense(64, activation="relu", name="dense_1")(pixels)
    h = L.Dense(64, activation="relu", name="dense_2")(h)
    digit = L.Dense(10, activation="softmax", name="predictions")(h)
    graph, result = run_both(keras, keras.Model(pixels, digit, name="mlp"), keras_dir, "A1_mlp")
    assert list(graph.layers) == ["dense_1", "dense_2", "predictions"]
    assert result.spec["layers"]["predictions"] == {"type": "Dense", "units": 10,
                                                    "activation": "softmax"}
    assert sorted(result.weights) == sorted(graph.weight_specs())


def test_shared_layer_shifted_entry_point(keras, keras_dir):
    # The rule of item 2 with weights: one `times10` instance in two models; the file
    # of model B holds it, and B on arange(100) gives 0, 10, ..., 990.
    L = keras.layers
    times10 = L.Dense(10, use_bias=False, name="times10")
    dummy = keras.Input((1,), name="dummy")
    keras.Model(dummy, times10(L.Dense(10, name="noise")(dummy)), name="model_a")
    values = keras.Input((10,), name="input_b")
    model_b = keras.Model(values, times10(values), name="model_b")
    times10.set_weights([10 * np.eye(10, dtype="float32")])
    feeds = [np.arange(100, dtype="float32").reshape(10, 10)]
    graph, _ = run_both(keras, model_b, keras_dir, "A2_shared_entry", feeds)
    out = graph.models["model_b"].predict({"input_b": feeds[0]})["times10"]
    np.testing.assert_allclose(out.ravel(), np.arange(0, 1000, 10))


def test_submodel_as_layer_shares_weights(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(3)
    digit = keras.Input((12, 12, 1), name="digit")
    x = L.Conv2D(8, 3, name="conv_1")(digit)
    x = L.Conv2D(8, 3, name="conv_2")(x)
    x = L.MaxPooling2D(2, name="pool")(x)
    vision = keras.Model(digit, L.Flatten(name="flatten")(x), name="vision")
    a, b = keras.Input((12, 12, 1), name="digit_a"), keras.Input((12, 12, 1), name="digit_b")
    both = L.Concatenate(name="join")([vision(a), vision(b)])
    model = keras.Model([a, b], L.Dense(1, activation="sigmoid", name="same")(both),
                        name="same_digit_classifier")
    graph, result = run_both(keras, model, keras_dir, "A3_shared_vision")
    assert_same_nodes(keras, keras_dir / "A3_shared_vision.keras", graph)
    assert list(result.spec["models"]) == ["vision", "same_digit_classifier"]
    vision_model = graph.models["vision"]
    assert [n.node_index for n in vision_model.inbound_nodes] == [0, 1]
    assert "conv_1/kernel" in graph.weights() and len(graph.weights()) == 6


def test_model_in_time_distributed(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(4)
    pixels = keras.Input((20,), name="pixels")
    classes = L.Dense(10, activation="softmax", name="classes")(
        L.Dense(16, activation="relu", name="hidden")(pixels))
    classifier = keras.Model(pixels, classes, name="classifier")
    sequence = keras.Input((6, 20), name="sequence")
    digits = L.TimeDistributed(classifier, name="per_step")(sequence)
    model = keras.Model(sequence, digits, name="sequence_classifier")
    graph, result = run_both(keras, model, keras_dir, "A4_time_distributed")
    assert result.spec["layers"]["per_step"] == {"type": "TimeDistributed",
                                                 "layer": "classifier"}
    assert graph.models["sequence_classifier"].outputs[0].shape == (None, 6, 10)


def test_multi_input_multi_output(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(5)
    main_input = keras.Input((10,), dtype="int32", name="main_input")
    lstm_out = L.LSTM(8, name="lstm")(L.Embedding(100, 16, name="embedding")(main_input))
    aux_output = L.Dense(1, activation="sigmoid", name="aux_output")(lstm_out)
    aux_input = keras.Input((5,), name="aux_input")
    x = L.Concatenate(name="join")([lstm_out, aux_input])
    for i in range(3):
        x = L.Dense(16, activation="relu", name=f"dense_{i + 1}")(x)
    main_output = L.Dense(1, activation="sigmoid", name="main_output")(x)
    model = keras.Model([main_input, aux_input], [main_output, aux_output], name="headline")
    graph, result = run_both(keras, model, keras_dir, "A5_multi_io",
                             random_feeds(model, high=100))
    assert_same_nodes(keras, keras_dir / "A5_multi_io.keras", graph)
    top = graph.models["headline"]
    assert top.input_names == ["main_input", "aux_input"]
    assert top.output_names == ["main_output", "aux_output"]
    assert top.inputs[0].dtype == "int32"


def test_shared_lstm_siamese(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(6)
    a, b = keras.Input((7, 12), name="tweet_a"), keras.Input((7, 12), name="tweet_b")
    shared = L.LSTM(16, name="shared_lstm")
    both = L.Concatenate(axis=-1, name="merged")([shared(a), shared(b)])
    model = keras.Model([a, b], L.Dense(1, activation="sigmoid", name="same_author")(both),
                        name="siamese")
    graph, result = run_both(keras, model, keras_dir, "A6_siamese_lstm")
    assert_same_nodes(keras, keras_dir / "A6_siamese_lstm.keras", graph)
    lstm = graph.layers["shared_lstm"]
    assert len(lstm.inbound_nodes) == 2
    assert [t.name for t in lstm.inbound_nodes[1].input_tensors] == ["tweet_b"]
    assert sum(k.startswith("shared_lstm/") for k in result.weights) == 3


def test_node_indices_and_shapes(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(7)
    small, large = keras.Input((8, 8, 3), name="small"), keras.Input((12, 12, 3), name="large")
    conv = L.Conv2D(16, 3, padding="same", name="shared_conv")
    model = keras.Model([small, large], [conv(small), conv(large)], name="two_sizes")
    graph, _ = run_both(keras, model, keras_dir, "A7_node_shapes")
    assert_same_nodes(keras, keras_dir / "A7_node_shapes.keras", graph)
    layer = graph.layers["shared_conv"]
    assert layer.input_shape_at(0) == (None, 8, 8, 3)
    assert layer.input_shape_at(1) == (None, 12, 12, 3)
    with pytest.raises(ValueError, match="input_shape_at"):
        layer.input_shape
    records = [n.describe() for n in graph.nodes(layer="shared_conv")]
    assert [(r["node_index"], r["inbound"]) for r in records] == [(0, ["small"]),
                                                                  (1, ["large"])]


def test_inception_module(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(8)
    image = keras.Input((16, 16, 3), name="image")
    t1 = L.Conv2D(8, 3, padding="same", activation="relu")(
        L.Conv2D(8, 1, padding="same", activation="relu")(image))
    t2 = L.Conv2D(8, 5, padding="same", activation="relu")(
        L.Conv2D(8, 1, padding="same", activation="relu")(image))
    t3 = L.Conv2D(8, 1, padding="same", activation="relu")(
        L.MaxPooling2D(3, strides=1, padding="same")(image))
    model = keras.Model(image, L.Concatenate(axis=-1)([t1, t2, t3]), name="inception")
    run_both(keras, model, keras_dir, "A8_inception")


def test_residual_connection(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(9)
    x = keras.Input((16, 16, 3), name="x")
    y = L.Conv2D(3, 3, padding="same", name="conv")(x)
    model = keras.Model(x, L.Add(name="shortcut")([x, y]), name="residual")
    run_both(keras, model, keras_dir, "A9_residual")


def _vision_model(keras):
    L = keras.layers
    return keras.Sequential([
        keras.Input((16, 16, 3)),
        L.Conv2D(8, 3, activation="relu", padding="same"), L.Conv2D(8, 3, activation="relu"),
        L.MaxPooling2D((2, 2)), L.Conv2D(16, 3, activation="relu", padding="same"),
        L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D((2, 2)), L.Flatten()],
        name="vision_model")


def test_visual_question_answering(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(10)
    vision = _vision_model(keras)
    image = keras.Input((16, 16, 3), name="image_input")
    question = keras.Input((6,), dtype="int32", name="question_input")
    encoded_q = L.LSTM(8)(L.Embedding(50, 8)(question))
    merged = L.Concatenate()([encoded_q, vision(image)])
    model = keras.Model([image, question], L.Dense(10, activation="softmax")(merged),
                        name="vqa")
    graph, result = run_both(keras, model, keras_dir, "A10_vqa",
                             random_feeds(model, high=50))
    assert "vision_model" in result.spec["models"]           # Sequential -> sub-model


def test_video_question_answering(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(11)
    vision = _vision_model(keras)
    question = keras.Input((6,), dtype="int32", name="question")
    question_encoder = keras.Model(question, L.LSTM(8)(L.Embedding(50, 8)(question)),
                                   name="question_encoder")
    video = keras.Input((3, 16, 16, 3), name="video_input")
    encoded_video = L.LSTM(8, name="video_lstm")(L.TimeDistributed(vision)(video))
    video_question = keras.Input((6,), dtype="int32", name="video_question_input")
    merged = L.Concatenate()([encoded_video, question_encoder(video_question)])
    model = keras.Model([video, video_question],
                        L.Dense(10, activation="softmax", name="video_answer")(merged),
                        name="video_qa")
    _, result = run_both(keras, model, keras_dir, "A10_video_qa",
                         random_feeds(model, high=50))
    assert list(result.spec["models"]) == ["vision_model", "question_encoder", "video_qa"]


def test_layer_zoo(keras, keras_dir):
    """Every importable class, with non-default arguments where they change the math
    (GRU both bias layouts, BatchNormalization with moving statistics, Dot normalize)."""
    L = keras.layers
    keras.utils.set_random_seed(12)
    raw = keras.Input((6, 4), name="seq")
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    img = keras.Input((6, 6, 2), name="img")
    seq = L.TimeDistributed(L.Dense(4))(L.Add()([raw, L.Embedding(20, 4)(tokens)]))
    r1 = L.GRU(5, return_sequences=True, name="gru_after")(seq)
    r2 = L.GRU(5, reset_after=False, go_backwards=True, return_sequences=True,
               name="gru_before")(seq)
    r3 = L.SimpleRNN(5, return_sequences=True, activation="relu", name="rnn")(seq)
    lstm_out, h, c = L.LSTM(5, return_state=True, name="lstm_state")(seq)
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True, name="inner"), merge_mode="ave",
                         name="bi")(seq)
    merged = L.Average()([L.Subtract()([r1, r2]), L.Multiply()([r3, r1])])
    merged = L.Maximum()([L.Minimum()([merged, r2]), r3])
    seq_feats = L.Concatenate()([merged, bi])
    seq_feats = L.LayerNormalization(axis=-1, epsilon=1e-5)(seq_feats)
    seq_feats = L.MaxPooling1D(2)(L.Conv1D(4, 2, padding="causal", activation="tanh")(seq_feats))
    seq_feats = L.Dropout(0.3)(L.Permute((2, 1))(seq_feats))
    x = L.BatchNormalization(name="bn")(L.ZeroPadding2D(((1, 0), (0, 2)))(img))
    x = L.AveragePooling2D(2, padding="same")(L.Conv2D(3, 2, strides=1, dilation_rate=2)(x))
    x = L.MaxPooling2D(2, padding="same")(x)
    pooled = L.Concatenate()([L.GlobalAveragePooling2D()(x), L.GlobalMaxPooling2D()(x)])
    vec = L.Activation("gelu")(L.Dense(5, kernel_regularizer=keras.regularizers.L2(0.01))(
        L.Flatten()(seq_feats)))
    dots = L.Dot(axes=1, normalize=True)([vec, L.Dense(5)(pooled)])
    rep = L.Reshape((15,))(L.RepeatVector(3)(L.Add()([h, c])))
    out = L.Concatenate()([dots, rep, lstm_out])
    model = keras.Model([raw, tokens, img], out, name="zoo")
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 2, 2), rng.normal(size=2), rng.normal(size=2),
                    rng.uniform(0.5, 2, 2)])
    graph, result = run_both(keras, model, keras_dir, "zoo_all_layer_classes")
    types = {layer.TYPE for layer in graph.layers.values()}
    assert types == BASE
    # Keras names the directions forward_inner and backward_inner; graphspec's backward
    # copy gets the same name, the forward one keeps the wrapped layer's own
    assert result.spec["layers"]["bi"]["layer"]["name"] == "inner"
    assert {"inner/kernel", "backward_inner/kernel"} <= set(result.weights)


def test_nested_models_as_outputs(keras, keras_dir):
    # output_layers count a nested Functional's nodes from 1, a Sequential's from 0
    L = keras.layers
    keras.utils.set_random_seed(14)
    inner_in = keras.Input((4,), name="inner_in")
    sub = keras.Model(inner_in, L.Dense(3, name="inner")(inner_in), name="submodel")
    seq = keras.Sequential([keras.Input((4,)), L.Dense(2, name="sd")], name="seqm")
    a = keras.Input((4,), name="a")
    model = keras.Model(a, [sub(a), seq(a), sub(L.Dense(4, name="pre")(a))], name="top")
    graph, _ = run_both(keras, model, keras_dir, "nested_outputs")
    assert graph.models["top"].output_names == ["submodel__0", "seqm", "submodel__1"]


def test_keras_applications_mobilenet(keras, keras_dir):
    """A model as Keras ships it (random weights, small input): depthwise convolutions,
    batch normalisation, ReLU(6), padding, global pooling with keepdims, reshape."""
    keras.utils.set_random_seed(16)
    model = keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3), alpha=0.25,
                                         classes=10, classifier_activation=None,
                                         name="mobilenet")   # logits: a sharper check
    # Random weights make the activations vanish (logits ~1e-17, a vacuous check):
    # random scales and shifts, and moving statistics from one training-mode pass
    # (momentum 0), so every BatchNormalization sees inputs like its statistics.
    feeds = random_feeds(model, batch=16)
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, _, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape),
                               rng.normal(0, 0.5, gamma.shape), mean, var])
            layer.momentum = 0.0
    model(feeds[0], training=True)
    assert np.abs(model.predict(feeds[0], verbose=0)).max() > 0.1
    # 27 batch normalisations, each dividing by a standard deviation estimated from 16
    # images, amplify float32 rounding: every layer agrees to ~1e-7 on its own, the
    # logits to ~1e-5 after all of them.
    graph, result = run_both(keras, model, keras_dir, "keras.applications.MobileNet",
                             feeds, tol=1e-4)
    assert len(graph.layers) == len(model.layers) - 1          # all but the InputLayer


def test_sequential_model_and_trainable_flags(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(13)
    model = keras.Sequential([keras.Input((3,), name="features"),
                              L.Dense(4, activation="tanh", name="inner"),
                              L.Dense(1, name="head")], name="regressor")
    model.get_layer("inner").trainable = False
    graph, result = run_both(keras, model, keras_dir, "sequential")
    assert graph.layers["inner"].trainable is False
    assert graph.models["regressor"].input_names == ["features"]


def test_names_yaml_or_specs_would_misread(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(15)
    x = keras.Input((3,), name="null")
    y = L.Dense(2, name="on")(L.Dense(3, name="dénse-1")(x))
    graph, result = run_both(keras, keras.Model(x, L.Dense(1, name="true")(y), name="yes"),
                             keras_dir, "awkward_names")
    assert set(graph.layers) == {"on", "d_nse_1", "true"}
    assert graph.models["yes"].input_names == ["null"]
    assert result.renamed == {"dénse-1": "d_nse_1"}
