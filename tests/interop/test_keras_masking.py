"""Masks and stateful recurrent layers across the Keras boundary: Embedding(mask_zero),
Masking, masked recurrent layers, attention and pooling import and agree with Keras;
the mask Keras records for a call must be the one graphspec propagates (else refused);
stateful layers carry their state across batches on both sides; the reverse direction
(export) gives Keras models that compute the same numbers."""
import numpy as np
import pytest
from conftest import compare_outputs

from graphspec import api
from graphspec.errors import InputError
from graphspec.interop.keras_export import export_keras
from graphspec.interop.keras_import import import_keras


def imported(keras_model, path):
    keras_model.save(path)
    result = import_keras(str(path))
    graph = api.loads(result.text, seed=0, name=str(path))
    graph.set_weights(result.weights)
    return graph.model(result.renamed.get(keras_model.name, keras_model.name)), result


def tokens_with_padding(seed, shape=(6, 9), vocab=30):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, vocab, shape)
    tokens[0, :4] = 0          # left padding
    tokens[1, 5:] = 0          # right padding
    tokens[2, 3] = 0           # a hole
    return tokens.astype("int32")


def test_masking_layer_and_masked_recurrences_agree(keras, keras_dir):
    """Masking(mask_value) before a GRU (go_backwards), a SimpleRNN with return_state
    and zero_output_for_mask, and a Bidirectional LSTM whose sequences are averaged
    over the unmasked steps; Keras' NotEqual/Any/LogicalOr mask operations are not
    layers in the spec."""
    keras.utils.set_random_seed(11)
    L = keras.layers
    x = keras.Input((8, 3), name="features")
    masked = L.Masking(mask_value=-1.0, name="masking")(x)
    gru = L.GRU(5, go_backwards=True, name="gru")(masked)
    seq, state = L.SimpleRNN(4, return_sequences=True, return_state=True,
                             zero_output_for_mask=True, name="rnn")(masked)
    bi = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi")(seq)
    merged = L.Add(name="add")([seq, L.Dense(4, name="project")(bi)])
    pooled = L.GlobalAveragePooling1D(name="mean")(merged)
    out = L.Concatenate(name="joined")([gru, state, pooled,
                                        L.GlobalAveragePooling1D(name="bimean")(bi)])
    model = keras.Model(x, out, name="masked_rnns")
    top, result = imported(model, keras_dir / "masked_rnns.keras")
    assert result.spec["layers"]["masking"] == {"type": "Masking", "mask_value": -1.0}
    assert result.spec["layers"]["rnn"]["zero_output_for_mask"] is True
    assert not any(s["type"] == "Lambda" for s in result.spec["layers"].values())
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((5, 8, 3)).astype("float32")
    feats[0, :3] = -1.0
    feats[1, 6:] = -1.0
    feats[2, 4] = -1.0
    compare_outputs("Masking + masked GRU/SimpleRNN/Bidirectional", [model.predict(
        feats, verbose=0)], [top.predict({"features": feats})["joined"]])


def test_attention_layers_take_query_and_value_masks(keras, keras_dir):
    keras.utils.set_random_seed(12)
    L = keras.layers
    q_tokens = keras.Input((6,), dtype="int32", name="q")
    v_tokens = keras.Input((9,), dtype="int32", name="v")
    q = L.Embedding(30, 8, mask_zero=True, name="q_embedding")(q_tokens)
    v = L.Embedding(30, 8, mask_zero=True, name="v_embedding")(v_tokens)
    dot = L.Attention(use_scale=True, name="dot")([q, v])
    additive = L.AdditiveAttention(name="additive")([q, v])
    cross = L.MultiHeadAttention(2, 4, name="cross")(L.Dense(8, name="q2")(q),
                                                    L.Dense(8, name="v2")(v))
    pooled = [L.GlobalAveragePooling1D(name=f"mean_{i}")(t)
              for i, t in enumerate((dot, additive, cross))]
    model = keras.Model([q_tokens, v_tokens], L.Concatenate(name="out")(pooled),
                        name="attentions")
    top, _ = imported(model, keras_dir / "attentions.keras")
    feeds = [tokens_with_padding(1, (5, 6)), tokens_with_padding(2, (5, 9))]
    compare_outputs("masked Attention/AdditiveAttention/MultiHeadAttention",
                    [model.predict(feeds, verbose=0)],
                    [top.predict(dict(zip(top.input_names, feeds)))["out"]])
    # the same attentions on the same tensors: Keras runs the MultiHeadAttention first,
    # which deletes the masks the two others would have used
    shared = L.MultiHeadAttention(2, 4, name="shared")(q, v)
    model = keras.Model([q_tokens, v_tokens], [dot, shared], name="shared_inputs")
    with pytest.raises(InputError, match=r"layer 'dot' runs without the mask of "
                                         r"'q_embedding' in Keras 3.15"):
        imported(model, keras_dir / "shared_inputs.keras")


def test_an_explicit_mask_graphspec_would_not_propagate_is_refused(keras, keras_dir):
    L = keras.layers
    tokens = keras.Input((7,), dtype="int32", name="tokens")
    embedded = L.Embedding(20, 4, name="embedding")(tokens)       # no mask_zero
    out = L.LSTM(3, name="lstm")(embedded, mask=keras.ops.not_equal(tokens, 0))
    keras.Model(tokens, out).save(keras_dir / "explicit_mask.keras")
    with pytest.raises(InputError, match=r"layer 'lstm' is given a mask graphspec gives "
                                         r"this input no mask"):
        import_keras(str(keras_dir / "explicit_mask.keras"))


def test_stateful_lstm_carries_its_state_across_batches(keras, keras_dir):
    keras.utils.set_random_seed(13)
    L = keras.layers
    x = keras.Input(batch_shape=(4, 5, 3), name="x")
    y = L.LSTM(6, stateful=True, return_sequences=True, name="rnn")(x)
    model = keras.Model(x, L.Dense(2, name="d")(y), name="stateful")
    top, result = imported(model, keras_dir / "stateful.keras")
    assert result.spec["layers"]["rnn"]["stateful"] is True
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((4, 5, 3)).astype("float32") for _ in range(3)]
    want = [model.predict(b, verbose=0) for b in batches]
    got = [top.predict({"x": b})["d"] for b in batches]
    compare_outputs("stateful LSTM, three batches", want, got)
    fresh = model.predict(batches[0], verbose=0)      # Keras' state goes on...
    assert not np.allclose(fresh, want[0], atol=1e-4)


MASKED_SPEC = """
graphspec: 1
layers:
  embedding: {type: Embedding, input_dim: 30, output_dim: 8, mask_zero: true}
  lstm: {type: LSTM, units: 6, return_sequences: true}
  bi: {type: Bidirectional, layer: {type: GRU, units: 4, return_sequences: true}}
  attention: {type: MultiHeadAttention, num_heads: 2, key_dim: 4}
  residual: {type: Add}
  norm: {type: LayerNormalization}
  mean: {type: GlobalAveragePooling1D}
  masking: {type: Masking, mask_value: 0.0}
  rnn: {type: SimpleRNN, units: 3}
  joined: {type: Concatenate}
  out: {type: Dense, units: 2, activation: softmax}
models:
  masked:
    inputs:
      tokens: {shape: [9], dtype: int32}
      feats: {shape: [9, 2]}
    calls:
      - {layer: embedding, in: tokens, out: e}
      - {layer: lstm, in: e, out: s}
      - {layer: bi, in: s, out: b}
      - {layer: norm, in: b, out: n}
      - {layer: attention, in: [n, n], out: a}
      - {layer: residual, in: [b, a], out: r}
      - {layer: mean, in: r, out: p}
      - {layer: masking, in: feats, out: f}
      - {layer: rnn, in: f, out: h}
      - {layer: joined, in: [p, h], out: j}
      - {layer: out, in: j, out: probs}
    outputs: [probs]
"""


def test_masked_spec_exports_to_keras_with_the_same_numbers(keras, tmp_path):
    graph = api.loads(MASKED_SPEC, seed=0)
    rng = np.random.default_rng(4)
    for var in graph.weights().values():
        var.data = (var.data + rng.normal(0, 0.3, var.data.shape)).astype(var.data.dtype)
    path = tmp_path / "masked.keras"
    export_keras(graph, path)
    model = keras.saving.load_model(path)
    feats = rng.standard_normal((6, 9, 2)).astype("float32")
    feats[0, :3] = 0.0
    feats[1, 7:] = 0.0
    feeds = {"tokens": tokens_with_padding(5), "feats": feats}
    compare_outputs("masked spec -> .keras", [model.predict(feeds, verbose=0)],
                    [graph.model().predict(feeds)["probs"]])
    back, _ = imported(model, tmp_path / "again.keras")
    compare_outputs("masked spec -> .keras -> spec", [graph.model().predict(feeds)["probs"]],
                    [back.predict(feeds)[back.output_names[0]]])


def test_stateful_export_needs_a_batch_size_and_runs_in_keras(keras, tmp_path):
    spec = """
graphspec: 1
models:
  m:
    inputs: {x: {shape: [5, 3]}}
    calls:
      - {layer: {type: GRU, name: rnn, units: 4, stateful: true}, in: x, out: y}
    outputs: [y]
"""
    graph = api.loads(spec, seed=0)
    with pytest.raises(InputError, match="GRU layer 'rnn' is stateful"):
        export_keras(graph, tmp_path / "m.keras")
    export_keras(graph, tmp_path / "m.keras", batch_size=2)
    model = keras.saving.load_model(tmp_path / "m.keras")
    rng = np.random.default_rng(5)
    batches = [rng.standard_normal((2, 5, 3)).astype("float32") for _ in range(2)]
    top = graph.model()
    compare_outputs("stateful GRU -> .keras, two batches",
                    [model.predict(b, verbose=0) for b in batches],
                    [top.predict({"x": b})["y"] for b in batches])


def test_post_norm_masked_attention_is_refused_on_export(tmp_path):
    """Two attentions reading a masked tensor and its residual: in Keras the second
    would run unmasked (MultiHeadAttention deletes its inputs' masks)."""
    spec = MASKED_SPEC.replace(
        "      - {layer: mean, in: r, out: p}",
        "      - {layer: attention2, in: [r, r], out: a2}\n"
        "      - {layer: mean, in: a2, out: p}").replace(
        "  residual: {type: Add}",
        "  residual: {type: Add}\n  attention2: {type: MultiHeadAttention, num_heads: 1, "
        "key_dim: 4}")
    spec = spec.replace("in: [n, n], out: a}", "in: [b, b], out: a}")
    graph = api.loads(spec, seed=0)
    with pytest.raises(InputError, match=r"cannot be exported to Keras: layer 'attention2' "
                                         r"runs without the mask of 'r'"):
        export_keras(graph, tmp_path / "m.keras")


def test_merges_whose_values_depend_on_masks_agree_both_ways(keras, keras_dir, tmp_path):
    """Keras' Multiply puts 1 at masked steps (Maximum/Minimum: the other input's value)
    before merging, and so does graphspec: imported and exported, the same numbers."""
    L = keras.layers
    tokens = keras.Input((9,), dtype="int32", name="tokens")
    a = L.Embedding(30, 3, mask_zero=True, name="a")(tokens)
    b = L.Embedding(30, 3, mask_zero=True, name="b")(tokens)
    c = L.Embedding(30, 3, name="c")(tokens)
    product = L.Multiply(name="product")([a, b])
    top = L.Maximum(name="top")([product, c])
    out = L.GlobalAveragePooling1D(name="mean")(L.Minimum(name="low")([top, a]))
    keras_model = keras.Model(tokens, out)
    model, _ = imported(keras_model, keras_dir / "masked_merges.keras")
    feeds = tokens_with_padding(7)
    compare_outputs("masked Multiply/Maximum/Minimum", [keras_model.predict(feeds, verbose=0)],
                    [model.predict(feeds)[model.output_names[0]]])
    spec = MASKED_SPEC.replace("residual: {type: Add}", "residual: {type: Maximum}")
    graph = api.loads(spec, seed=0)
    export_keras(graph, tmp_path / "m.keras")
    exported = keras.saving.load_model(tmp_path / "m.keras")
    rng = np.random.default_rng(4)
    feats = rng.standard_normal((6, 9, 2)).astype("float32")
    feats[0, :3] = 0.0
    feeds = {"tokens": tokens_with_padding(5), "feats": feats}
    compare_outputs("masked Maximum -> .keras", [exported.predict(feeds, verbose=0)],
                    [graph.model().predict(feeds)["probs"]])
