"""Layer zoo II (attention, normalisation, preprocessing, noise, transposed and
separable convolutions, activation layers) through Keras 3, both ways."""
import numpy as np
import pytest
from conftest import compare_outputs, random_feeds
from test_keras_export import signature

from graphspec import api
from graphspec.interop.keras_export import export_keras
from graphspec.interop.keras_import import import_keras
from graphspec.interop.keras_layers import CONVERTERS
from graphspec.layers.registry import REGISTRY

ZOO2 = {"Attention", "AdditiveAttention", "MultiHeadAttention", "GaussianDropout", "GaussianNoise",
        "GroupNormalization", "Normalization", "Rescaling", "SpatialDropout1D",
        "SpatialDropout2D", "UnitNormalization", "AveragePooling1D", "Conv2DTranspose",
        "Cropping1D", "Cropping2D", "DepthwiseConv2D", "ELU", "GlobalAveragePooling1D",
        "GlobalMaxPooling1D", "LeakyReLU", "PReLU", "ReLU", "SeparableConv2D", "Softmax",
        "UpSampling1D", "UpSampling2D", "ZeroPadding1D"}
pytestmark = pytest.mark.skipif(not ZOO2 <= set(REGISTRY),
                                reason="layer zoo II is not in this graphspec's registry")


def _zoo2_keras(keras):
    L = keras.layers
    keras.utils.set_random_seed(30)
    seq = keras.Input((8, 4), name="seq")
    img = keras.Input((6, 6, 3), name="img")
    s = L.SpatialDropout1D(0.1)(L.GaussianDropout(0.1)(L.GaussianNoise(0.1)(seq)))
    s = L.UpSampling1D(2)(L.AveragePooling1D(2)(L.Cropping1D((1, 1))(L.ZeroPadding1D(1)(s))))
    att = L.Attention(use_scale=True, score_mode="concat", name="att")(
        [s, seq], use_causal_mask=True)
    add_att, scores = L.AdditiveAttention(name="add_att")([s, seq],
                                                          return_attention_scores=True)
    norm = L.Normalization(mean=[1.0, 2.0, 3.0, 4.0], variance=[1.0, 4.0, 9.0, 2.0],
                           name="given_stats")(seq)
    adapted = L.Normalization(axis=-1, name="adapted_stats")
    adapted.adapt(np.random.default_rng(0).normal(2.0, 3.0, (32, 8, 4)))
    s = L.Concatenate()([att, add_att, norm, adapted(seq)])
    s = L.UnitNormalization()(s)
    pooled = L.Concatenate()([L.GlobalAveragePooling1D()(s), L.GlobalMaxPooling1D()(s),
                              L.Flatten()(scores)])
    x = L.Rescaling(0.5, offset=0.1)(img)
    x = L.Conv2DTranspose(4, 3, strides=2, padding="same")(x)
    x = L.DepthwiseConv2D(3, depth_multiplier=2)(x)
    x = L.SeparableConv2D(5, 3, padding="same", activation="relu")(x)
    x = L.GroupNormalization(groups=5, name="groups")(x)
    x = L.UpSampling2D(2, interpolation="bilinear")(L.Cropping2D(((1, 0), (2, 1)))(x))
    x = L.PReLU(shared_axes=[1, 2], name="prelu")(L.SpatialDropout2D(0.1)(x))
    x = L.Softmax(axis=-1)(L.ReLU(max_value=6.0)(L.LeakyReLU(0.2)(L.ELU(0.5)(x))))
    out = L.Concatenate()([pooled, L.Flatten()(x)])
    model = keras.Model([seq, img], out, name="zoo2")
    rng = np.random.default_rng(1)
    for layer in ("groups", "prelu", "att", "add_att"):
        model.get_layer(layer).set_weights(
            [rng.uniform(0.5, 1.5, w.shape) for w in model.get_layer(layer).get_weights()])
    return model


def test_zoo2_imports_and_predicts_like_keras(keras, keras_dir):
    model = _zoo2_keras(keras)
    path = keras_dir / "zoo2.keras"
    model.save(path)
    result = import_keras(path)
    graph = api.loads(result.text, seed=0, name=str(path))
    graph.set_weights(result.weights)
    top = graph.model("zoo2")
    assert {layer.TYPE for layer in top.layers()} >= ZOO2 - {"MultiHeadAttention"}
    assert result.spec["layers"]["att"].get("use_causal_mask") is True
    assert result.spec["layers"]["add_att"].get("return_attention_scores") is True
    feeds = random_feeds(model)
    compare_outputs("import layer zoo II", [model.predict(feeds, verbose=0)],
                    [top.predict(dict(zip(top.input_names, feeds)))[top.output_names[0]]])

    # and back: graphspec -> .keras -> Keras, and -> graphspec again
    out = keras_dir / "zoo2_export.keras"
    export_keras(graph, out, "zoo2")
    loaded = keras.saving.load_model(out)
    compare_outputs("export layer zoo II", [loaded.predict(feeds, verbose=0)],
                    [top.predict(dict(zip(top.input_names, feeds)))[top.output_names[0]]])
    back = import_keras(out)
    again = api.loads(back.text, seed=1, name="round trip")
    again.set_weights(back.weights)
    before, after = signature(top), signature(again.models["zoo2"])
    assert before["models"] == after["models"]
    changed = {k for k in before["layers"] if before["layers"][k] != after["layers"][k]}
    assert changed == {"given_stats"}          # its statistics travel as variables
    for key, array in before["weights"].items():
        np.testing.assert_array_equal(array, after["weights"][key], err_msg=key)


def test_every_registry_type_is_covered():
    assert ZOO2 <= set(CONVERTERS)


@pytest.mark.parametrize("variant", ["self", "key_and_mask", "mask_only_scores"])
def test_multi_head_attention_both_ways(keras, keras_dir, variant):
    L = keras.layers
    keras.utils.set_random_seed(31)
    # Keras records the scores' shape as (heads, T, T) whatever S is (its
    # compute_output_spec), so the variant returning scores attends over S = T
    steps = 5 if variant == "mask_only_scores" else 7
    query = keras.Input((5, 6), name="query")
    value = keras.Input((steps, 4), name="value")
    inputs = [query, value]
    mha = L.MultiHeadAttention(num_heads=3, key_dim=2, value_dim=4, name="mha",
                               output_shape=8 if variant == "key_and_mask" else None)
    if variant == "self":
        inputs = [query]
        out = mha(query, query, use_causal_mask=True)
    elif variant == "key_and_mask":
        key = keras.Input((7, 5), name="key")
        mask = keras.Input((5, 7), name="mask")
        inputs += [key, mask]
        out = mha(query, value, key=key, attention_mask=mask)
    else:
        mask = keras.Input((1, steps), name="mask")
        inputs.append(mask)
        out, scores = mha(query, value, attention_mask=mask, return_attention_scores=True)
        out = L.Concatenate()([L.Flatten()(out), L.Flatten()(scores)])
    model = keras.Model(inputs, out, name="attend")
    feeds = random_feeds(model)
    if variant != "self":
        feeds[-1] = (np.random.default_rng(2).random(feeds[-1].shape) > 0.3).astype("float32")
    path = keras_dir / f"mha_{variant}.keras"
    model.save(path)
    result = import_keras(path)
    graph = api.loads(result.text, seed=0, name=str(path))
    graph.set_weights(result.weights)
    top = graph.model("attend")
    want = model.predict(feeds[0] if len(feeds) == 1 else feeds, verbose=0)
    got = top.predict(dict(zip(top.input_names, feeds)))[top.output_names[0]]
    compare_outputs(f"import MultiHeadAttention ({variant})", [want], [got])
    out_path = keras_dir / f"mha_{variant}_export.keras"
    export_keras(graph, out_path, "attend")
    loaded = keras.saving.load_model(out_path)
    compare_outputs(f"export MultiHeadAttention ({variant})",
                    [loaded.predict(feeds[0] if len(feeds) == 1 else feeds, verbose=0)],
                    [got])
    again = import_keras(out_path)
    assert again.spec["layers"]["mha"] == result.spec["layers"]["mha"]
