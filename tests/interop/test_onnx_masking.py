"""Masks in ONNX export: a model where masks travel (Embedding mask_zero, Masking)
exports with the masks built as ONNX tensors beside the values, and onnxruntime gives
what ``predict`` gives: masked recurrent layers unrolled with Keras' carry-over (and
zero outputs), merges OR-ing masks, attention key/query masks on each of Keras' code
paths, masked mean, masked softmax. What cannot be exported exactly is refused with one
located line naming the layer and the mask (or the state)."""
import numpy as np
import pytest

from graphspec import api
from graphspec.errors import SpecError
from graphspec.interop.onnx_check import check_against_predict
from graphspec.interop.onnx_export import to_onnx

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

MASKED = """
graphspec: 1
layers:
  emb: {type: Embedding, input_dim: 20, output_dim: 6, mask_zero: true}
  forward: {type: LSTM, units: 5, return_sequences: true}
  backward: {type: LSTM, units: 5, return_sequences: true, zero_output_for_mask: true,
             go_backwards: true}
  add: {type: Add}
  bi: {type: Bidirectional, layer: {type: GRU, units: 4, return_sequences: true}}
  bi_states: {type: Bidirectional, merge_mode: sum,
              layer: {type: SimpleRNN, units: 3, return_state: true, activation: selu}}
  mha: {type: MultiHeadAttention, num_heads: 2, key_dim: 3}
  mha_scores: {type: MultiHeadAttention, num_heads: 1, key_dim: 3,
               return_attention_scores: true}
  att: {type: Attention, use_scale: true, use_causal_mask: true}
  additive: {type: AdditiveAttention}
  project: {type: Dense, units: 5}
  mean: {type: GlobalAveragePooling1D}
  mean2: {type: GlobalAveragePooling1D, keepdims: true}
  flat: {type: Flatten}
  masking: {type: Masking, mask_value: 0.5}
  gru: {type: GRU, units: 3, reset_after: false}
  joined: {type: Concatenate}
  time_joined: {type: Concatenate, axis: 1}
models:
  m:
    inputs:
      tokens: {shape: [7], dtype: int32}
      feats: {shape: [7, 2]}
    calls:
      - {layer: emb, in: tokens, out: e}
      - {layer: forward, in: e, out: s1}
      - {layer: backward, in: e, out: s2}
      - {layer: add, in: [s1, s2], out: s}
      - {layer: bi, in: s, out: b}
      - {layer: bi_states, in: b, out: [b2, h1, h2]}
      - {layer: mha, in: [b, b], out: a}
      - {layer: mha_scores, in: [a, s], out: [a2, scores]}
      - {layer: att, in: [a2, b], out: at}
      - {layer: additive, in: [at, b], out: ad}
      - {layer: project, in: ad, out: p}
      - {layer: time_joined, in: [p, s1], out: t}
      - {layer: mean, in: t, out: pooled}
      - {layer: masking, in: feats, out: f}
      - {layer: gru, in: f, out: g}
      - {layer: mean2, in: f, out: fm}
      - {layer: flat, in: fm, out: fmf}
      - {layer: joined, in: [pooled, b2, g, h1, fmf], out: y}
    outputs: [y, scores]
"""


def feeds(batch=6, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(1, 20, (batch, 7))
    tokens[0, :3] = 0          # left padding
    tokens[1, 4:] = 0          # right padding
    tokens[2, 2] = 0           # a hole
    tokens[3, 1::2] = 0
    feats = rng.normal(size=(batch, 7, 2)).astype("float32")
    feats[0, :2] = 0.5
    feats[4, 5:] = 0.5
    return {"tokens": tokens.astype("int32"), "feats": feats}


def _graph(text, seed=1):
    graph = api.loads(text, seed=0, name="masked.yaml")
    rng = np.random.default_rng(seed)
    for var in graph.weights().values():     # away from zero biases
        var.data = (var.data + rng.normal(0, 0.3, var.data.shape)).astype(var.data.dtype)
    return graph


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_masked_model_runs_in_onnxruntime_as_predict(opset):
    graph = _graph(MASKED)
    model = graph.model()
    proto = to_onnx(model, opset=opset)
    onnx.checker.check_model(proto, full_check=True)
    report = check_against_predict(model, proto, feeds())
    assert all(r["ok"] for r in report.values()), report
    # the masks change the numbers: the same weights without them do not agree
    plain = _graph(MASKED.replace(", mask_zero: true", ""))
    plain.set_weights({k: v.data for k, v in graph.weights().items()})
    ours = model.predict(feeds())["y"]
    assert not np.allclose(ours, plain.model().predict(feeds())["y"], atol=1e-3)


def test_masked_softmax_exports():
    """Keras' Softmax with a mask (broadcast aligned on the right: a (B, T) mask on
    (B, T, T) values fits when B == T)."""
    text = """
graphspec: 1
models:
  m:
    inputs: {tokens: {shape: [4], dtype: int32}}
    calls:
      - {layer: {type: Embedding, name: emb, input_dim: 9, output_dim: 4, mask_zero: true},
         in: tokens, out: e}
      - {layer: {type: Softmax, name: soft}, in: e, out: y}
    outputs: [y]
"""
    model = _graph(text).model()
    tokens = np.array([[1, 2, 0, 0], [0, 3, 4, 5], [6, 0, 7, 8], [1, 1, 1, 1]], "int32")
    report = check_against_predict(model, to_onnx(model), {"tokens": tokens})
    assert report["y"]["ok"], report


@pytest.mark.parametrize("layer", [
    "{type: LSTM, name: rnn, units: 3, return_sequences: true}",
    "{type: Bidirectional, name: bi, layer: {type: GRU, units: 3, return_state: true}}",
    "{type: SimpleRNN, name: rnn, units: 3, activation: selu, go_backwards: true}",
])
def test_masked_recurrence_of_unknown_length_runs_as_a_scan(layer):
    """Steps known only at run time: one ONNX Scan over time, the step mask applied in
    its body as in the unrolled loop."""
    text = f"""
graphspec: 1
models:
  m:
    inputs: {{tokens: {{shape: [null], dtype: int32}}}}
    calls:
      - {{layer: {{type: Embedding, name: emb, input_dim: 20, output_dim: 4,
                  mask_zero: true}}, in: tokens, out: e}}
      - {{layer: {layer}, in: e, out: {"[y, h1, h2]" if "return_state" in layer else "y"}}}
    outputs: [y]
"""
    model = _graph(text).model()
    proto = to_onnx(model)
    onnx.checker.check_model(proto, full_check=True)
    assert "Scan" in {n.op_type for n in proto.graph.node}
    for steps in (7, 3):
        tokens = {"tokens": feeds()["tokens"][:, :steps]}
        report = check_against_predict(model, proto, tokens)
        assert report["y"]["ok"], report


def test_stateful_recurrence_is_refused_by_name():
    text = """
graphspec: 1
models:
  m:
    inputs: {x: {shape: [5, 2]}}
    calls:
      - {layer: {type: GRU, name: rnn, units: 3, stateful: true}, in: x, out: y}
    outputs: [y]
"""
    with pytest.raises(SpecError, match="GRU layer 'rnn' cannot be exported to ONNX: it is "
                                        "stateful"):
        to_onnx(api.loads(text, seed=0).model())


def test_a_fully_masked_row_is_nan_on_both_sides_and_agrees():
    """Keras' masked mean of a row with every step masked is 0 / 0; graphspec and the
    exported graph give NaN there too, and the agreement check accepts NaN on both
    sides (only there)."""
    from graphspec.interop.onnx_check import agreement
    text = """
graphspec: 1
models:
  m:
    inputs: {tokens: {shape: [null], dtype: int32}}
    calls:
      - {layer: {type: Embedding, name: emb, input_dim: 9, output_dim: 2, mask_zero: true},
         in: tokens, out: e}
      - {layer: {type: GlobalAveragePooling1D, name: mean}, in: e, out: y}
    outputs: [y]
"""
    model = _graph(text).model()
    tokens = np.array([[0, 0, 0], [1, 0, 2]], "int32")
    report = check_against_predict(model, to_onnx(model), {"tokens": tokens})
    assert report["y"]["ok"], report
    assert np.isnan(model.predict({"tokens": tokens}, allow_nonfinite=True)["y"][0]).all()
    one_sided = agreement({"y": np.array([np.nan, 1.0])}, {"y": np.array([0.0, 1.0])})
    assert not one_sided["y"]["ok"]
