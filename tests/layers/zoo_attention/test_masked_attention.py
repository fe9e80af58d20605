"""Masks in MultiHeadAttention, Attention and AdditiveAttention, as Keras 3 applies them.

Each case is a small model (masks from ``Embedding(mask_zero)`` or ``Masking``; rows with
right, left, no and all padding) built from YAML text and the same model in Keras (torch
backend) with the same weights: float32 and float64 outputs and the float64 gradients of
one training step agree within 1e-5 relative, and finite differences (float64) confirm
the tape. The fully masked rows are where Keras' code paths differ (see ops/attention.py):
MultiHeadAttention's fused path (uniform over keys) and its Softmax-layer path (scores
returned or dropout: zeros), Attention's ``scores - 1e9``.

Run with ``-s`` to see the largest errors measured."""
import numpy as np
import pytest
from masked_models import (WORST, build_pair, compare_with_keras, finite_differences,
                           front_data, keep_rows, spec_text)
from torch_report import worst_error_reporter
from zoo_reference import build
from zoo_reference import ours as layer_run

import graphspec
from graphspec.autodiff import Variable
from graphspec.errors import ShapeError
from graphspec.layers.base import CallContext

keras = pytest.importorskip("keras")
pytest.importorskip("torch")
report_worst = worst_error_reporter(WORST)

ROWS = ("right", "left", "none", "all")


def inputs_for(fronts, rows=ROWS, seed=0):
    return [front_data(kind, keep_rows(rows), seed=seed + i)
            for i, kind in enumerate(fronts.values())]


def check(label, fronts, layers, calls, outputs, keras_body, inputs, training=False,
          extra=None, keras_rows=None, fd_rows=None, forward_rows=None):
    """Keras comparison, then finite differences (on the rows ``fd_rows`` only)."""
    graph, probes = compare_with_keras(keras, label, fronts, layers, calls, outputs,
                                       keras_body, inputs, training=training, extra=extra,
                                       keras_rows=keras_rows, forward_rows=forward_rows)
    inputs = list(inputs) + list((extra or {}).values())
    if fd_rows is not None:
        probes = [p * fd_rows[..., None] for p in probes]
    finite_differences(graph, inputs, probes, training=training, label=label)
    return graph


# -- MultiHeadAttention -------------------------------------------------------------------
def attended_rows(config, q_keep, v_keep, k_keep=None, allowed=None):
    """(batch, query steps): True where a query has a key to attend to. Elsewhere Keras'
    fused path (torch's flash kernel) back-propagates S times the derivative of its own
    forward (ops/attention.py), so its gradients are compared on these rows only; when
    Keras takes its Softmax-layer path every row is compared."""
    if config.get("dropout") or config.get("return_attention_scores"):
        return None
    keep = q_keep[:, :, None] & v_keep[:, None, :]
    if k_keep is not None:
        keep = keep & k_keep[:, None, :]
    if config.get("use_causal_mask"):
        keep = keep & np.tril(np.ones(keep.shape[1:], bool))
    if allowed is not None:
        keep = keep & (allowed != 0)
    return keep.any(axis=-1)


MHA_CONFIGS = {
    "fused": {"num_heads": 2, "key_dim": 3},
    "scores": {"num_heads": 2, "key_dim": 3, "return_attention_scores": True},
    "dropout-at-inference": {"num_heads": 2, "key_dim": 3, "dropout": 0.25},
    "causal": {"num_heads": 2, "key_dim": 2, "use_causal_mask": True},
    "causal-scores-no-bias": {"num_heads": 2, "key_dim": 2, "use_causal_mask": True,
                              "return_attention_scores": True, "use_bias": False},
}


def keras_mha(config, names, key=None, attention_mask=None):
    """Keras body: MultiHeadAttention 'mha' on tensors ``names`` = (query, value)."""
    call_args = ("use_causal_mask", "return_attention_scores")
    args = {k: v for k, v in config.items() if k not in call_args + ("attention_mask",)}

    def body(keras, t, dtype):
        layer = keras.layers.MultiHeadAttention(**args, name="mha", dtype=dtype)
        kwargs = {k: config[k] for k in call_args if k in config}
        if key:
            kwargs["key"] = t[key]
        if attention_mask:
            kwargs["attention_mask"] = t[attention_mask]
        out = layer(t[names[0]], t[names[1]], **kwargs)
        return list(out) if isinstance(out, tuple) else [out]
    return body


def mha_spec(config, ins):
    outs = ["y", "scores"] if config.get("return_attention_scores") else ["y"]
    return ({"mha": {"type": "MultiHeadAttention", **config}},
            [{"layer": "mha", "in": ins, "out": outs if len(outs) > 1 else outs[0]}], outs)


@pytest.mark.parametrize("front", ["embedding", "masking"])
@pytest.mark.parametrize("case", sorted(MHA_CONFIGS))
def test_mha_self_attention_with_masks(case, front):
    config = MHA_CONFIGS[case]
    fronts = {"x": front}
    layers, calls, outs = mha_spec(config, ["x", "x"])
    keep = keep_rows(ROWS)
    check(f"MHA {case}", fronts, layers, calls, outs, keras_mha(config, ("x", "x")),
          inputs_for(fronts), keras_rows=attended_rows(config, keep, keep))


def test_mha_cross_attention_query_value_and_key_masks():
    """Query, value and key each carry their own mask (Keras ANDs all three)."""
    fronts = {"q": "embedding", "v": "masking", "k": "embedding"}
    config = {"num_heads": 2, "key_dim": 2, "value_dim": 3}
    layers, calls, outs = mha_spec(config, ["q", "v", "k"])
    keeps = [keep_rows(("none", "right", "left", "right")),
             keep_rows(("left", "right", "none", "all")),
             keep_rows(("right", "none", "left", "left"))]
    inputs = [front_data(kind, keep, i) for i, (kind, keep) in
              enumerate(zip(fronts.values(), keeps))]
    check("MHA cross", fronts, layers, calls, outs,
          keras_mha(config, ("q", "v"), key="k"), inputs,
          keras_rows=attended_rows(config, *keeps))


@pytest.mark.parametrize("scores", [False, True])
def test_mha_attention_mask_input_and_causal_combined_with_masks(scores):
    """An explicit attention_mask input (with rows it masks fully) ANDed with the causal
    and the tensors' masks."""
    config = {"num_heads": 2, "key_dim": 2, "attention_mask": True, "use_causal_mask": True,
              "return_attention_scores": scores}
    fronts = {"x": "embedding"}
    layers, calls, outs = mha_spec(config, ["x", "x", "allowed"])
    allowed = np.random.default_rng(5).integers(0, 2, (4, 5, 5)).astype(np.int32)
    allowed[0, 1] = 0               # a query row the attention mask alone empties
    extra = {"allowed": allowed}
    keep = keep_rows(ROWS)
    check(f"MHA attention_mask scores={scores}", fronts, layers, calls, outs,
          keras_mha(config, ("x", "x"), attention_mask="allowed"),
          inputs_for(fronts), extra=extra,
          keras_rows=attended_rows(config, keep, keep, allowed=allowed))


def test_mha_output_mask_is_the_query_mask_and_scores_carry_none():
    """Keras' default compute_mask: the first output gets the query's mask (checked
    at compile time, at run time and against Keras' symbolic tensors)."""
    fronts = {"q": "embedding", "v": "masking"}
    config = {"num_heads": 2, "key_dim": 2, "return_attention_scores": True}
    layers, calls, outs = mha_spec(config, ["q", "v"])
    graph, kmodel = build_pair(keras, fronts, layers, calls, outs,
                               keras_mha(config, ("q", "v")))
    model = graph.model()
    assert [model.tensor(n).mask_source for n in outs] == ["q_embed", None]
    assert [getattr(t, "_keras_mask", None) is not None for t in kmodel.outputs] == \
        [True, False]
    q_keep, v_keep = keep_rows(ROWS), keep_rows(("none", "left", "right", "all"))
    inputs = [front_data("embedding", q_keep, 0), front_data("masking", v_keep, 1)]
    values, masks = model.run_with_masks([Variable(x) for x in inputs], CallContext())
    y, scores = (model.tensor(n).slot for n in outs)
    np.testing.assert_array_equal(masks[y], q_keep)
    assert masks[scores] is None


def test_mha_refuses_masks_on_inputs_of_rank_4():
    text = """
graphspec: 1
layers:
  mask: {type: Masking}
  mha: {type: MultiHeadAttention, num_heads: 2, key_dim: 2}
models:
  m:
    inputs: {x: {shape: [3, 4, 5]}}
    calls:
      - {layer: mask, in: x, out: masked}
      - {layer: mha, in: [masked, masked], out: y}
    outputs: [y]
"""
    model = graphspec.loads(text, seed=0).model()
    with pytest.raises(ShapeError, match="masked inputs need rank 3"):
        model.predict({"x": np.ones((2, 3, 4, 5), np.float32)})


@pytest.mark.parametrize("scores", [False, True])
def test_mha_value_mask_matches_torch_key_padding_mask(scores):
    """torch.nn.MultiheadAttention's key_padding_mask (True: ignore) is the value's mask
    (every query keeps a key: torch gives NaN where none is left); Keras' kernels re-laid
    as in test_attention_layers. Outputs and every gradient, float64."""
    import torch
    config = {"num_heads": 2, "key_dim": 3, "return_attention_scores": scores}
    layer = build("MultiHeadAttention", config, [(4, 6), (5, 6)])
    rng = np.random.default_rng(7)
    q, v = rng.standard_normal((3, 4, 6)), rng.standard_normal((3, 5, 6))
    v_keep = keep_rows(("right", "left", "none"))
    probes = [rng.standard_normal((3, 4, 6)), rng.standard_normal((3, 2, 4, 5))]
    layer.forward = lambda xs, ctx: layer.forward_masked(xs, [None, v_keep], ctx)
    outs, g_in, g_w = layer_run(layer, [q, v], probes)
    w = {n: torch.tensor(var.data, requires_grad=True) for n, var in layer.weights.items()}
    tq, tv = (torch.tensor(a, requires_grad=True) for a in (q, v))
    in_bias = torch.cat([w[f"{r}_bias"].reshape(6) for r in ("query", "key", "value")])
    out, probs = torch.nn.functional.multi_head_attention_forward(
        tq.transpose(0, 1), tv.transpose(0, 1), tv.transpose(0, 1), 6, 2, None, in_bias,
        None, None, False, 0.0, w["attention_output_kernel"].reshape(6, 6).T,
        w["attention_output_bias"], training=False,
        key_padding_mask=torch.tensor(~v_keep), need_weights=True, average_attn_weights=False,
        use_separate_proj_weight=True,
        q_proj_weight=w["query_kernel"].reshape(6, 6).T,
        k_proj_weight=w["key_kernel"].reshape(6, 6).T,
        v_proj_weight=w["value_kernel"].reshape(6, 6).T)
    theirs = [out.transpose(0, 1), probs][:len(outs)]
    total = sum((t * torch.tensor(p)).sum() for t, p in zip(theirs, probes))
    grads = torch.autograd.grad(total, [tq, tv] + list(w.values()))
    pairs = [(a, b.detach().numpy()) for a, b in zip(outs + g_in + [g_w[n] for n in w],
                                                     theirs + list(grads))]
    # relative to the largest magnitude of the same kind (the key bias' gradient is
    # exactly zero in theory: both sides are rounding noise there)
    scale = max(np.max(np.abs(b)) for _, b in pairs[len(outs):])
    errors = [np.max(np.abs(a - b)) / (np.max(np.abs(b)) if i < len(outs) else scale)
              for i, (a, b) in enumerate(pairs)]
    WORST[("MHA value mask", "torch float64")] = max(errors)
    assert max(errors) <= 1e-10, errors


# -- Attention and AdditiveAttention ------------------------------------------------------
def attention_rows(config, v_keep):
    rows = keyed_rows(config, v_keep, v_keep.shape[1])
    return {"fd_rows": rows, "keras_rows": rows, "forward_rows": rows}


def keyed_rows(config, v_keep, steps_q):
    """(batch, query steps): True where a query has an unmasked key. Elsewhere Keras'
    ``scores - 1e9`` is, in float64, a function of the scores rounded to 1e9's spacing
    (1.2e-7), which finite differences cannot resolve; and Keras' own numbers there are
    float32 ones even in a float64 model (its ops.matmul on torch returns float32), so
    they are compared in the float32 run only."""
    keep = np.broadcast_to(v_keep[:, None, :], (len(v_keep), steps_q, v_keep.shape[1]))
    if config.get("use_causal_mask"):
        keep = keep & np.tril(np.ones(keep.shape[1:], bool))
    return keep.any(axis=-1)


ATTENTION_CASES = {
    # name: (type, config)
    "dot": ("Attention", {}),
    "dot-scale-causal-scores": ("Attention", {"use_scale": True, "use_causal_mask": True,
                                              "return_attention_scores": True}),
    "concat": ("Attention", {"score_mode": "concat", "use_scale": True}),
    "additive": ("AdditiveAttention", {}),
    "additive-causal-scores": ("AdditiveAttention", {"use_causal_mask": True,
                                                     "return_attention_scores": True}),
}


def keras_attention(kind, config, names):
    call_args = ("use_causal_mask", "return_attention_scores")
    args = {k: v for k, v in config.items() if k not in call_args}

    def body(keras, t, dtype):
        layer = getattr(keras.layers, kind)(**args, name="att", dtype=dtype)
        out = layer([t[n] for n in names], **{k: config[k] for k in call_args if k in config})
        return list(out) if isinstance(out, tuple) else [out]
    return body


def attention_spec(kind, config, ins):
    outs = ["y", "scores"] if config.get("return_attention_scores") else ["y"]
    return ({"att": {"type": kind, **config}},
            [{"layer": "att", "in": ins, "out": outs if len(outs) > 1 else outs[0]}], outs)


@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_attention_query_and_value_masks(case):
    """Query from Embedding(mask_zero), value from Masking, every padding pattern, a
    value with every step masked included (Keras' scores - 1e9)."""
    kind, config = ATTENTION_CASES[case]
    fronts = {"q": "embedding", "v": "masking"}
    layers, calls, outs = attention_spec(kind, config, ["q", "v"])
    v_keep = keep_rows(("left", "none", "right", "all"))
    inputs = [front_data("embedding", keep_rows(ROWS), 0), front_data("masking", v_keep, 1)]
    check(f"{kind} {case}", fronts, layers, calls, outs,
          keras_attention(kind, config, ("q", "v")), inputs,
          **attention_rows(config, v_keep))


@pytest.mark.parametrize("kind", ["Attention", "AdditiveAttention"])
def test_attention_ignores_the_key_mask_as_keras(kind):
    """Keras reads mask[0] (query) and mask[1] (value) only: a masked key input changes
    nothing but its values."""
    fronts = {"q": "masking", "v": "embedding", "k": "embedding"}
    config = {"use_causal_mask": True}
    layers, calls, outs = attention_spec(kind, config, ["q", "v", "k"])
    v_keep = keep_rows(("right", "none", "left", "none"))
    inputs = [front_data("masking", keep_rows(("none", "right", "left", "none")), 0),
              front_data("embedding", v_keep, 1),
              front_data("embedding", keep_rows(("left", "left", "none", "all")), 2)]
    check(f"{kind} key mask", fronts, layers, calls, outs,
          keras_attention(kind, config, ("q", "v", "k")), inputs,
          **attention_rows(config, v_keep))


def test_attention_output_mask_is_the_query_mask():
    fronts = {"q": "embedding", "v": "masking"}
    layers, calls, outs = attention_spec("Attention", {"return_attention_scores": True},
                                         ["q", "v"])
    model = graphspec.loads(spec_text(fronts, layers, calls, outs), seed=0).model()
    assert [model.tensor(n).mask_source for n in outs] == ["q_embed", None]


# -- a whole Keras model ------------------------------------------------------------------
def test_keras_text_model_end_to_end():
    """Embedding(mask_zero) -> MultiHeadAttention self-attention -> LayerNormalization
    -> GlobalAveragePooling1D (masked mean) -> Dense, written in Keras and as a spec."""
    fronts = {"x": "embedding"}
    layers = {"mha": {"type": "MultiHeadAttention", "num_heads": 2, "key_dim": 3},
              "norm": {"type": "LayerNormalization"},
              "pool": {"type": "GlobalAveragePooling1D"},
              "head": {"type": "Dense", "units": 3}}
    calls = [{"layer": "mha", "in": ["x", "x"], "out": "a"},
             {"layer": "norm", "in": "a", "out": "n"},
             {"layer": "pool", "in": "n", "out": "p"},
             {"layer": "head", "in": "p", "out": "y"}]

    def body(keras, t, dtype):
        L = keras.layers
        a = L.MultiHeadAttention(2, 3, name="mha", dtype=dtype)(t["x"], t["x"])
        n = L.LayerNormalization(name="norm", dtype=dtype)(a)
        return [L.Dense(3, name="head", dtype=dtype)(
            L.GlobalAveragePooling1D(name="pool", dtype=dtype)(n))]
    rows = ("right", "left", "none", "right")
    inputs = [front_data("embedding", keep_rows(rows), 3)]
    # the masked mean drops the padded queries, so every gradient is Keras' own
    check("Keras text model", fronts, layers, calls, ["y"], body, inputs)
