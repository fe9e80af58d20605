"""MultiHeadAttention, Attention and AdditiveAttention: finite differences (float64) for
every input and weight; same weights -> same outputs and gradients as Keras 3 (torch
backend, float64) and PyTorch (torch.nn.MultiheadAttention with the weights re-laid,
scaled_dot_product_attention); Keras' weight layout; shapes with unknown steps; errors;
dropout on the attention probabilities only while training, seeded.

Run with ``-s`` to see the largest relative error against Keras per layer type."""
import numpy as np
import pytest
from gradcheck import check_gradients
from zoo_reference import WORST, build, compare_with_keras, ours, rel_err

import graphspec
from graphspec.autodiff import Variable
from graphspec.errors import ShapeError
from graphspec.layers.base import CallContext
from torch_report import worst_error_reporter

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
report_worst = worst_error_reporter(WORST)


def data(shapes, seed=1, mask_shape=None):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((2,) + s) for s in shapes]
    if mask_shape is not None:      # 0/1 integers, at least one key per query row
        mask = (rng.random((2,) + mask_shape) > 0.4).astype(np.int64)
        mask[..., 0] = 1
        arrays.append(mask)
    return arrays


# -- MultiHeadAttention -------------------------------------------------------------------
MHA_CASES = {
    # name: (config, feature shapes of query, value[, key], mask shape or None)
    "self": ({"num_heads": 2, "key_dim": 3}, [(4, 5), (4, 5)], None),
    "cross-key-value_dim-output_shape": (
        {"num_heads": 3, "key_dim": 2, "value_dim": 4, "output_shape": [3, 2]},
        [(3, 5), (6, 4), (6, 2)], None),
    "causal-no-bias-scores": (
        {"num_heads": 2, "key_dim": 3, "use_bias": False, "use_causal_mask": True,
         "return_attention_scores": True}, [(4, 5), (4, 5)], None),
    "mask-causal-scores": (
        {"num_heads": 2, "key_dim": 2, "output_shape": 3, "attention_mask": True,
         "use_causal_mask": True, "return_attention_scores": True},
        [(4, 5), (6, 3)], (4, 6)),
    "mask-broadcast-rows": (
        {"num_heads": 2, "key_dim": 2, "attention_mask": True}, [(4, 5), (6, 5)], (1, 6)),
}


def keras_mha(config, n_shapes, dtype="float64"):
    args = {k: v for k, v in config.items()
            if k not in ("attention_mask", "use_causal_mask", "return_attention_scores")}
    if isinstance(args.get("output_shape"), list):
        args["output_shape"] = tuple(args["output_shape"])
    klayer = keras.layers.MultiHeadAttention(**args, dtype=dtype)

    def call(layer, tensors):
        kwargs = {"use_causal_mask": config.get("use_causal_mask", False),
                  "return_attention_scores": config.get("return_attention_scores", False)}
        rest = list(tensors[2:])
        if config.get("attention_mask"):
            kwargs["attention_mask"] = rest.pop()
        if rest:
            kwargs["key"] = rest[0]
        return layer(tensors[0], tensors[1], **kwargs)
    return klayer, call


@pytest.mark.parametrize("case", sorted(MHA_CASES))
def test_mha_matches_keras_forward_and_gradients(case):
    config, shapes, mask_shape = MHA_CASES[case]
    inputs = data(shapes, mask_shape=mask_shape)
    layer = build("MultiHeadAttention", config, shapes + ([mask_shape] if mask_shape else []))
    klayer, call = keras_mha(config, len(shapes))
    call(klayer, [torch.tensor(x) for x in inputs])          # builds the Keras weights
    assert [tuple(v.shape) for v in klayer.weights] == \
        [s.shape for s in layer.weight_shapes.values()]       # Keras' layout, Keras' order
    compare_with_keras(layer, klayer, call, inputs)


@pytest.mark.parametrize("case", sorted(MHA_CASES))
def test_mha_finite_differences(case):
    config, shapes, mask_shape = MHA_CASES[case]
    layer = build("MultiHeadAttention", config, shapes + ([mask_shape] if mask_shape else []))
    inputs = data(shapes, mask_shape=mask_shape)
    names = list(layer.weights)
    fixed_mask = inputs[len(shapes):]

    def fn(*arrays):
        xs, ws = arrays[:len(shapes)], arrays[len(shapes):]
        layer.weights = dict(zip(names, ws))
        return layer.forward(list(xs) + [Variable(m) for m in fixed_mask], CallContext())
    check_gradients(fn, *inputs[:len(shapes)], *[layer.weights[n].data for n in names])


def test_mha_matches_torch_multihead_attention():
    """torch.nn.MultiheadAttention with Keras' kernels re-laid: (d, N, K) -> (N*K, d)^T;
    its boolean mask is the opposite ('True: may not attend')."""
    config = {"num_heads": 2, "key_dim": 3, "attention_mask": True,
              "return_attention_scores": True}
    shapes = [(4, 6), (5, 6)]
    layer = build("MultiHeadAttention", config, shapes + [(4, 5)])
    q, v, mask = data(shapes, mask_shape=(4, 5))
    outs, _, _ = ours(layer, [q, v, mask], [np.zeros((2, 4, 6)), np.zeros((2, 2, 4, 5))])
    w = {n: var.data for n, var in layer.weights.items()}
    mha = torch.nn.MultiheadAttention(6, 2, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(np.concatenate(
            [w[f"{r}_kernel"].reshape(6, 6).T for r in ("query", "key", "value")])))
        mha.in_proj_bias.copy_(torch.tensor(np.concatenate(
            [w[f"{r}_bias"].reshape(6) for r in ("query", "key", "value")])))
        mha.out_proj.weight.copy_(torch.tensor(w["attention_output_kernel"].reshape(6, 6).T))
        mha.out_proj.bias.copy_(torch.tensor(w["attention_output_bias"]))
    blocked = torch.tensor(mask == 0).repeat_interleave(2, dim=0)     # (B*N, T, S)
    out, scores = mha(torch.tensor(q), torch.tensor(v), torch.tensor(v), attn_mask=blocked,
                      average_attn_weights=False)
    errors = (rel_err(outs[0], out.detach().numpy()), rel_err(outs[1], scores.detach().numpy()))
    WORST[("MultiHeadAttention", "torch")] = max(errors)
    assert max(errors) <= 1e-12, errors


def test_mha_shapes_with_unknown_steps_and_keras_weight_layout():
    layer = graphspec.layers.registry.REGISTRY["MultiHeadAttention"](
        "mha", {"num_heads": 4, "key_dim": 8, "value_dim": 5, "output_shape": [2, 3],
                "return_attention_scores": True, "attention_mask": True})
    shapes = [(None, None, 16), (None, 7, 12), (None, 7, 10), (None, None, 7)]
    assert layer.compute_output_shapes(shapes) == [(None, None, 2, 3), (None, 4, None, 7)]
    assert {s.name: (s.shape, s.initializer) for s in layer.weight_specs(shapes)} == {
        "query_kernel": ((16, 4, 8), "glorot_uniform"), "query_bias": ((4, 8), "zeros"),
        "key_kernel": ((10, 4, 8), "glorot_uniform"), "key_bias": ((4, 8), "zeros"),
        "value_kernel": ((12, 4, 5), "glorot_uniform"), "value_bias": ((4, 5), "zeros"),
        "attention_output_kernel": ((4, 5, 2, 3), "glorot_uniform"),
        "attention_output_bias": ((2, 3), "zeros")}


@pytest.mark.parametrize("config, shapes, message", [
    ({}, [(None, 4, 5), (None, 4)], "the value must have shape (steps, features)"),
    ({}, [(None, 4, 5), (None, 3, 5), (None, 2, 5)],
     "key and value must have the same number of steps, got 2 and 3"),
    ({"attention_mask": True}, [(None, 4, 5), (None, 3, 5), (None, 4, 2)],
     "the attention mask must have shape (query steps, key steps) = (4, 3)"),
    ({"attention_mask": True}, [(None, 4, 5), (None, 3, 5)],
     "takes query, value and optionally key and, last, the attention mask: got 2"),
    ({}, [(None, 4, 5)], "takes 2 to 4 input tensor(s), got 1"),
])
def test_mha_bad_inputs(config, shapes, message):
    layer = graphspec.layers.registry.REGISTRY["MultiHeadAttention"](
        "mha", dict({"num_heads": 2, "key_dim": 2}, **config))
    with pytest.raises(ShapeError) as info:
        layer.compute_output_shapes(shapes)
    assert message in str(info.value) and "'mha'" in str(info.value)


def test_mha_bad_arguments_are_located(tmp_path):
    from specs_util import write_spec
    text = """
graphspec: 1
models:
  m:
    inputs:
      x: {shape: [4, 6]}
    calls:
      - {layer: {type: MultiHeadAttention, name: att, num_heads: 0, key_dim: 2},
         in: [x, x], out: y}
    outputs: [y]
"""
    path = write_spec(tmp_path, text)
    errors = [e.format() for e in graphspec.validate(path)]
    assert errors == [f"{path}:7:66: models.m.calls[0].layer.num_heads: 0 is less than the "
                      "minimum of 1"]
    bad_key = text.replace("[x, x]", "[x, x, k]").replace(
        "x: {shape: [4, 6]}", "x: {shape: [4, 6]}\n      k: {shape: [3, 6]}")
    errors = [e.format() for e in graphspec.validate(write_spec(tmp_path, bad_key.replace(
        "num_heads: 0", "num_heads: 2")))]
    assert len(errors) == 1 and errors[0].startswith(f"{path}:8:") and errors[0].endswith(
        "models.m.calls[0]: MultiHeadAttention layer 'att': key and value must have the same "
        "number of steps, got 3 and 4"), errors


def test_mha_dropout_only_in_training_and_seeded():
    config = {"num_heads": 2, "key_dim": 3, "dropout": 0.5, "return_attention_scores": True}
    layer = build("MultiHeadAttention", config, [(4, 5), (4, 5)])
    q, v = data([(4, 5), (4, 5)])

    def run(training, seed):
        ctx = CallContext(training=training, rng=np.random.default_rng(seed))
        return [o.data for o in layer.forward([Variable(q), Variable(v)], ctx)]
    inference = run(False, 0)
    plain = build("MultiHeadAttention", dict(config, dropout=0.0), [(4, 5), (4, 5)])
    np.testing.assert_array_equal(
        inference[0], plain.forward([Variable(q), Variable(v)], CallContext())[0].data)
    a, b, c = run(True, 3), run(True, 3), run(True, 4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.allclose(a[0], c[0]) and not np.allclose(a[0], inference[0])
    np.testing.assert_allclose(a[1], inference[1])   # Keras returns the scores before dropout


# -- Attention and AdditiveAttention ----------------------------------------------------------
ATTENTION_CASES = {
    "dot": ("Attention", {}, [(4, 3), (5, 3)]),
    "dot-scale-key-causal-scores": ("Attention", {"use_scale": True, "use_causal_mask": True,
                                                  "return_attention_scores": True},
                                    [(4, 3), (5, 2), (5, 3)]),
    "concat": ("Attention", {"score_mode": "concat"}, [(4, 3), (5, 3)]),
    "concat-scale-causal": ("Attention", {"score_mode": "concat", "use_scale": True,
                                          "use_causal_mask": True}, [(5, 3), (5, 2), (5, 3)]),
    "additive": ("AdditiveAttention", {}, [(4, 3), (5, 3)]),
    "additive-no-scale-scores": ("AdditiveAttention", {"use_scale": False,
                                                       "return_attention_scores": True},
                                 [(4, 3), (5, 2), (5, 3)]),
    "additive-rank4-causal": ("AdditiveAttention", {"use_causal_mask": True},
                              [(2, 4, 3), (2, 4, 3)]),
}


def keras_attention(kind, config):
    args = {k: v for k, v in config.items()
            if k not in ("use_causal_mask", "return_attention_scores")}
    klayer = getattr(keras.layers, kind)(**args, dtype="float64")

    def call(layer, tensors):
        return layer(list(tensors), use_causal_mask=config.get("use_causal_mask", False),
                     return_attention_scores=config.get("return_attention_scores", False))
    return klayer, call


@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_attention_matches_keras_forward_and_gradients(case):
    kind, config, shapes = ATTENTION_CASES[case]
    inputs = data(shapes)
    layer = build(kind, config, shapes)
    klayer, call = keras_attention(kind, config)
    call(klayer, [torch.tensor(x) for x in inputs])
    assert [tuple(v.shape) for v in klayer.weights] == \
        [s.shape for s in layer.weight_shapes.values()]
    compare_with_keras(layer, klayer, call, inputs)


@pytest.mark.parametrize("case", sorted(ATTENTION_CASES))
def test_attention_finite_differences(case):
    kind, config, shapes = ATTENTION_CASES[case]
    layer = build(kind, config, shapes)
    names = list(layer.weights)

    def fn(*arrays):
        layer.weights = dict(zip(names, arrays[len(shapes):]))
        return layer.forward(list(arrays[:len(shapes)]), CallContext())
    check_gradients(fn, *data(shapes), *[layer.weights[n].data for n in names])


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_torch_scaled_dot_product(causal):
    q, k, v = data([(5, 4), (5, 4), (5, 3)])
    layer = build("Attention", {"use_causal_mask": causal}, [(5, 4), (5, 3), (5, 4)])
    got = layer.forward([Variable(q), Variable(v), Variable(k)], CallContext())[0].data
    want = torch.nn.functional.scaled_dot_product_attention(
        torch.tensor(q), torch.tensor(k), torch.tensor(v), is_causal=causal, scale=1.0)
    WORST[("Attention", "torch")] = rel_err(got, want.numpy())
    assert rel_err(got, want.numpy()) <= 1e-12


def test_attention_shapes_and_errors():
    from graphspec.layers.registry import REGISTRY
    att = REGISTRY["Attention"]("att", {"return_attention_scores": True})
    assert att.compute_output_shapes([(None, None, 4), (None, 7, 2), (None, 7, 4)]) == \
        [(None, None, 2), (None, None, 7)]
    with pytest.raises(ShapeError, match="query and key must have the same number of "
                                         "features, got 4 and 3"):
        att.compute_output_shapes([(None, 5, 4), (None, 7, 3)])
    with pytest.raises(ShapeError, match="key and value must have the same number of steps"):
        att.compute_output_shapes([(None, 5, 4), (None, 7, 4), (None, 6, 4)])
    add = REGISTRY["AdditiveAttention"]("add", {})
    assert [s.shape for s in add.weight_specs([(None, 5, 4), (None, 7, 4)])] == [(4,)]
    with pytest.raises(ShapeError, match="needs a known query feature size"):
        add.compute_output_shapes([(None, 5, None), (None, 7, None)])


def test_attention_dropout_seeded_in_training_only():
    layer = build("Attention", {"dropout": 0.4}, [(4, 3), (5, 3)])
    q, v = data([(4, 3), (5, 3)])

    def run(training, seed):
        ctx = CallContext(training=training, rng=np.random.default_rng(seed))
        return layer.forward([Variable(q), Variable(v)], ctx)[0].data
    plain = build("Attention", {}, [(4, 3), (5, 3)])
    np.testing.assert_array_equal(
        run(False, 0), plain.forward([Variable(q), Variable(v)], CallContext())[0].data)
    np.testing.assert_array_equal(run(True, 1), run(True, 1))
    assert not np.allclose(run(True, 1), run(False, 0))
