"""GroupNormalization, UnitNormalization, LayerNormalization (rms_scaling, Keras' sorted
weight axes, center/scale off), BatchNormalization with center/scale off, Rescaling and
Normalization (with adapt): finite differences (float64), same weights -> same outputs
and gradients as Keras 3 (torch backend, float64) and PyTorch where it has the layer;
shapes with unknown sizes; errors."""
import numpy as np
import pytest
from gradcheck import check_gradients
from torch_report import worst_error_reporter
from zoo_reference import WORST, build, compare_with_keras, rel_err

import graphspec
from graphspec.autodiff import Variable
from graphspec.errors import InputError, ShapeError
from graphspec.layers.base import CallContext
from graphspec.layers.normalization_adapt import adapt, adapt_all
from graphspec.layers.registry import REGISTRY

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
report_worst = worst_error_reporter(WORST)     # with -s: largest error per layer type


def single(layer, tensors):
    return layer(tensors[0])


def sample(shape, seed=1, batch=3):
    return np.random.default_rng(seed).standard_normal((batch,) + shape) * 1.5 + 0.4


CASES = {
    # name: (TYPE, config, feature shape)
    "GroupNormalization-last": ("GroupNormalization", {"groups": 2}, (4, 6)),
    "GroupNormalization-axis1-plain": ("GroupNormalization", {"groups": 3, "axis": 1,
                                                              "center": False, "scale": False},
                                       (6, 4, 2)),
    "GroupNormalization-instance": ("GroupNormalization", {"groups": -1, "epsilon": 0.1},
                                    (5, 3)),
    "UnitNormalization-last": ("UnitNormalization", {}, (4, 5)),
    "UnitNormalization-axes": ("UnitNormalization", {"axis": [1, 2]}, (4, 5)),
    "LayerNormalization-rms": ("LayerNormalization", {"rms_scaling": True}, (4, 5)),
    "LayerNormalization-rms-axes": ("LayerNormalization", {"rms_scaling": True,
                                                           "axis": [2, 1]}, (4, 5)),
    "LayerNormalization-axes-unsorted": ("LayerNormalization", {"axis": [2, 1]}, (4, 5)),
    "LayerNormalization-no-scale": ("LayerNormalization", {"scale": False}, (4, 5)),
    "LayerNormalization-no-center-no-scale": ("LayerNormalization",
                                              {"center": False, "scale": False}, (4, 5)),
    "Rescaling": ("Rescaling", {"scale": [0.5, -2.0, 1.0], "offset": 0.25}, (2, 3)),
    "Normalization-last": ("Normalization", {}, (4, 3)),
    "Normalization-axes": ("Normalization", {"axis": [2, 1]}, (4, 3)),
    "Normalization-none-invert": ("Normalization", {"axis": None, "invert": True}, (4, 3)),
}


def keras_layer(kind, config, shape):
    klayer = getattr(keras.layers, kind)(**config, dtype="float64")
    klayer.build((None,) + shape)
    return klayer


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_keras_forward_and_gradients(case):
    kind, config, shape = CASES[case]
    layer = build(kind, config, [shape])
    klayer = keras_layer(kind, config, shape)
    float_weights = [v for v in klayer.weights if v.dtype.startswith("float")]
    assert [tuple(v.shape) for v in float_weights] == \
        [s.shape for s in layer.weight_shapes.values()]      # Keras' shapes, Keras' order
    call = single
    if kind == "Normalization":          # Keras reads its statistics at finalize_state
        def call(klayer, tensors):
            klayer.finalize_state()
            return klayer(tensors[0])
    compare_with_keras(layer, klayer, call, [sample(shape)])


@pytest.mark.parametrize("case", sorted(CASES))
def test_finite_differences(case):
    kind, config, shape = CASES[case]
    layer = build(kind, config, [shape])
    names = list(layer.weights)

    def fn(x, *weights):
        layer.weights = dict(zip(names, weights))
        return layer.forward([x], CallContext())[0]
    check_gradients(fn, sample(shape), *[layer.weights[n].data for n in names])


def test_group_norm_matches_torch():
    layer = build("GroupNormalization", {"groups": 3, "epsilon": 1e-5}, [(4, 5, 6)])
    x = sample((4, 5, 6))
    got = layer.forward([Variable(x)], CallContext())[0].data
    w = {n: v.data for n, v in layer.weights.items()}
    want = torch.nn.functional.group_norm(torch.tensor(x).permute(0, 3, 1, 2), 3,
                                          torch.tensor(w["gamma"]), torch.tensor(w["beta"]),
                                          eps=1e-5).permute(0, 2, 3, 1).numpy()
    WORST[("GroupNormalization", "torch")] = rel_err(got, want)
    assert rel_err(got, want) <= 1e-12


def test_unit_norm_matches_torch_and_keeps_zero_slices_at_zero():
    x = sample((3, 4))
    x[0, 1] = 0.0
    layer = build("UnitNormalization", {}, [(3, 4)])
    got = layer.forward([Variable(x)], CallContext())[0].data
    want = torch.nn.functional.normalize(torch.tensor(x), dim=-1, eps=1e-12).numpy()
    assert rel_err(got, want) <= 1e-12
    np.testing.assert_array_equal(got[0, 1], 0.0)
    # at the zero slice the capped scale (1e12) is a constant: Keras' gradient there too
    compare_with_keras(layer, keras_layer("UnitNormalization", {}, (3, 4)), single, [x])


def test_layer_norm_unsorted_axes_take_keras_weights_as_they_are():
    """Keras sorts the axes: axis [2, 1] on (4, 5) has gamma (4, 5); Keras' own file
    loads into graphspec's weights without reshaping and computes the same."""
    klayer = keras_layer("LayerNormalization", {"axis": [2, 1]}, (4, 5))
    rng = np.random.default_rng(3)
    for v in klayer.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape))
    layer = build("LayerNormalization", {"axis": [2, 1]}, [(4, 5)])
    assert layer.weight_shapes["gamma"].shape == (4, 5)
    for name, v in zip(("gamma", "beta"), klayer.weights):
        layer.weights[name] = Variable(np.asarray(v.numpy()))
    x = sample((4, 5))
    got = layer.forward([Variable(x)], CallContext())[0].data
    assert rel_err(got, klayer(torch.tensor(x)).detach().numpy()) <= 1e-6


@pytest.mark.parametrize("config", [{"center": False}, {"scale": False},
                                    {"center": False, "scale": False}])
def test_batch_norm_center_scale_off_matches_keras(config):
    shape = (4, 3)
    layer = build("BatchNormalization", config, [shape])
    klayer = keras_layer("BatchNormalization", config, shape)
    assert [tuple(v.shape) for v in klayer.weights] == \
        [s.shape for s in layer.weight_shapes.values()]
    weights = [layer.weights[n].data for n in layer.weight_shapes]
    for v, value in zip(klayer.weights, weights):
        v.assign(value)
    x = sample(shape)
    for training in (False, True):
        got = layer.forward([Variable(x)], CallContext(training=training))[0].data
        want = klayer(torch.tensor(x), training=training).detach().numpy()
        assert rel_err(got, want) <= 1e-6, training


# -- Rescaling ---------------------------------------------------------------------------------
def test_rescaling_integer_pixels_and_shapes():
    layer = REGISTRY["Rescaling"]("r", {"scale": 1 / 255})
    assert layer.compute_output_shapes([(None, None, None, 3)]) == [(None, None, None, 3)]
    pixels = np.array([[[0, 51, 255]]], dtype=np.uint8)
    out = layer.forward([Variable(pixels)], CallContext())[0].data
    np.testing.assert_allclose(out, [[[0.0, 0.2, 1.0]]], rtol=1e-6)
    with pytest.raises(ShapeError, match="scale of shape \\(2,\\) does not broadcast to the "
                                         "features \\(4, 3\\)"):
        REGISTRY["Rescaling"]("r", {"scale": [1, 2]}).compute_output_shapes([(None, 4, 3)])


# -- Normalization and adapt -------------------------------------------------------------------
def norm_graph(axis, shape=(4, 3)):
    text = f"""
graphspec: 1
models:
  m:
    inputs:
      x: {{shape: {list(shape)}}}
    calls:
      - {{layer: {{type: Normalization, name: norm, axis: {axis}}}, in: x, out: y}}
    outputs: [y]
"""
    return graphspec.loads(text, seed=0, dtype="float64")


@pytest.mark.parametrize("axis", ["-1", "[1, 2]", "null", "1"])
def test_adapt_matches_keras_on_one_array_and_on_batches(axis):
    data = sample((4, 3), seed=5, batch=20) * np.arange(1, 4)
    batches = [data[:7], data[7:12], data[12:]]
    kaxis = None if axis == "null" else eval_axis(axis)
    klayer = keras.layers.Normalization(axis=kaxis, dtype="float64")
    klayer.adapt(data)    # Keras adapts a list of batches only with tensorflow installed:
    for given in (data, batches):   # batches combined as Keras does = the whole array's
        graph = norm_graph(axis)
        stats = adapt(graph, "norm", given)
        assert rel_err(stats["mean"], klayer.adapt_mean.numpy()) <= 1e-12
        assert rel_err(stats["variance"], klayer.adapt_variance.numpy()) <= 1e-12
        got = graph.model().predict(data)["y"]
        assert rel_err(got, klayer(torch.tensor(data)).detach().numpy()) <= 1e-6
    assert stats["count"] == 20 * (4 * 3 if axis == "null" else 3 if axis == "1" else
                                   4 if axis == "-1" else 1)


def eval_axis(text):
    return [int(a) for a in text.strip("[]").split(",")] if text.startswith("[") else int(text)


def test_adapt_takes_a_model_input_by_name_and_refuses_bad_data():
    graph = norm_graph("-1")
    data = sample((4, 3), batch=6)
    stats = adapt(graph, "norm", {"x": data})
    np.testing.assert_allclose(stats["mean"], data.mean(axis=(0, 1)))
    np.testing.assert_allclose(graph.layers["norm"].weights["variance"].data,
                               data.var(axis=(0, 1)))
    for arrays, message in [
        ({"z": data}, "the data has no array 'x' (the input Normalization layer 'norm' is "
                      "called on); it has: z"),
        (data[:, :, :2], "batch 0 for Normalization layer 'norm' has 2 entries on axis 2; "
                         "the layer was built with 3"),
        (data[0], "has shape (4, 3); the layer takes rank 3"),
        ([], "no data for Normalization layer 'norm'"),
        (np.full((2, 4, 3), np.nan), "holds NaN or infinite values"),
    ]:
        with pytest.raises(InputError) as info:
            adapt(graph, "norm", arrays)
        assert message in str(info.value), str(info.value)
    with pytest.raises(InputError, match="'nope' is no layer, not a Normalization layer"):
        adapt(graph, "nope", data)


def test_normalization_given_mean_and_variance_as_keras():
    config = {"axis": [1, 2], "mean": [1.0, 2.0, 3.0], "variance": [4.0, 0.5, 2.0]}
    graph = graphspec.loads(f"""
graphspec: 1
models:
  m:
    inputs:
      x: {{shape: [2, 3]}}
    calls:
      - {{layer: {{type: Normalization, name: n, axis: [1, 2], mean: [1.0, 2.0, 3.0],
                  variance: [4.0, 0.5, 2.0]}}, in: x, out: y}}
    outputs: [y]
""", seed=0, dtype="float64")
    x = sample((2, 3))
    klayer = keras.layers.Normalization(**config, dtype="float64")
    want = klayer(torch.tensor(x)).detach().numpy()
    assert rel_err(graph.model().predict(x)["y"], want) <= 1e-6   # Keras: float32 inside
    with pytest.raises(ShapeError, match="give both mean and variance"):
        REGISTRY["Normalization"]("n", {"mean": 1.0}).compute_output_shapes([(None, 3)])
    with pytest.raises(ShapeError, match="mean must be a number or a list that broadcasts"):
        REGISTRY["Normalization"]("n", {"mean": [1, 2], "variance": [1, 1]}) \
            .compute_output_shapes([(None, 3)])
    with pytest.raises(ShapeError, match=r"must have the same shape \(Keras' rule\), got "
                                         r"\(3,\) and \(\)"):
        REGISTRY["Normalization"]("n", {"mean": [1, 2, 3], "variance": 1}) \
            .compute_output_shapes([(None, 3)])


@pytest.mark.parametrize("kind, config, shape, message", [
    ("GroupNormalization", {"groups": 4}, (None, 6), "6 channels cannot be split into 4"),
    ("GroupNormalization", {"groups": 0}, (None, 6), "6 channels cannot be split into 0"),
    ("GroupNormalization", {}, (None, 3, None), "needs a known size on axis -1"),
    ("UnitNormalization", {"axis": [1, -2]}, (None, 3, 4), "axis -2 is not a distinct"),
    ("Normalization", {"axis": 1}, (None, None, 3), "needs a known size on axis 1"),
    ("LayerNormalization", {"axis": 0, "rms_scaling": True}, (None, 3), "axis 0 is not"),
])
def test_bad_configurations_name_the_layer(kind, config, shape, message):
    with pytest.raises(ShapeError) as info:
        REGISTRY[kind]("bad", config).compute_output_shapes([shape])
    assert message in str(info.value) and "'bad'" in str(info.value)


def test_shapes_keep_unknown_axes():
    for kind, config in [("GroupNormalization", {"groups": 2}), ("UnitNormalization", {}),
                         ("Normalization", {}), ("Rescaling", {"scale": 2.0}),
                         ("LayerNormalization", {"rms_scaling": True})]:
        layer = REGISTRY[kind]("l", config)
        assert layer.compute_output_shapes([(None, None, 4)]) == [(None, None, 4)], kind


def test_adapt_all_adapts_every_normalization_layer_on_a_model_input():
    graph = graphspec.loads("""
graphspec: 1
models:
  m:
    inputs:
      a: {shape: [3]}
      b: {shape: [2, 4]}
    calls:
      - {layer: {type: Normalization, name: na}, in: a, out: ya}
      - {layer: {type: Normalization, name: nb, axis: null}, in: b, out: yb}
      - {layer: {type: Dense, name: d, units: 2}, in: ya, out: z}
    outputs: [z, yb]
""", seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    data = {"a": rng.normal(3, 2, (50, 3)), "b": rng.normal(-1, 5, (50, 2, 4))}
    stats = adapt_all(graph, data)
    assert list(stats) == ["na", "nb"]
    np.testing.assert_allclose(stats["na"]["mean"], data["a"].mean(axis=0))
    np.testing.assert_allclose(stats["nb"]["variance"], data["b"].var())
    out = graph.model().predict(data)["yb"]
    assert abs(out.mean()) < 1e-12 and abs(out.std() - 1) < 1e-9
    assert list(adapt_all(graph, data, ["nb"])) == ["nb"]
    with pytest.raises(InputError, match="'d' is a Dense layer, not a Normalization layer"):
        adapt_all(graph, data, ["d"])
    with pytest.raises(InputError, match="the spec has no Normalization layer"):
        adapt_all(graphspec.loads(_DENSE_ONLY, seed=0), data)


_DENSE_ONLY = """
graphspec: 1
models:
  m:
    inputs:
      a: {shape: [3]}
    calls:
      - {layer: {type: Dense, name: d, units: 2}, in: a, out: z}
    outputs: [z]
"""


@pytest.mark.parametrize("layer, message", [
    ("{type: GroupNormalization, name: bad, groups: -2}",
     "layers.bad.groups: -2 is less than the minimum of -1"),
    ("{type: Rescaling, name: bad, scale: half}",
     "layers.bad.scale: expected number or array, got string 'half'"),
    ("{type: Normalization, name: bad, axis: first}",
     "layers.bad.axis: expected integer or array or null, got string 'first'"),
    ("{type: UnitNormalization, name: bad, axis: [1], epsilon: 1}",
     "layers.bad.epsilon: unknown key 'epsilon' for UnitNormalization layer"),
    ("{type: GaussianDropout, name: bad, rate: 1}",
     "layers.bad.rate: 1 is greater than or equal to the maximum of 1"),
    ("{type: LayerNormalization, name: bad, rms_scaling: 3}",
     "layers.bad.rms_scaling: expected boolean, got"),
])
def test_bad_arguments_are_one_located_line(tmp_path, layer, message):
    from specs_util import write_spec
    path = write_spec(tmp_path, f"""
graphspec: 1
layers:
  bad: {layer}
models:
  m:
    inputs:
      x: {{shape: [4, 6]}}
    calls:
      - {{layer: bad, in: x, out: y}}
    outputs: [y]
""")
    errors = [e.format() for e in graphspec.validate(path)]
    assert len(errors) == 1 and errors[0].startswith(f"{path}:3:") and message in errors[0], \
        errors


def test_given_statistics_are_not_broadcast_before_the_weight_size_check():
    """mean/variance given as numbers on huge axes: refused by the size limit, at once."""
    with pytest.raises(graphspec.errors.SpecErrors, match="weight 'n/mean' of shape "
                                                          "\\(16777216, 16777216\\) is larger"):
        graphspec.loads("""
graphspec: 1
models:
  m:
    inputs:
      x: {shape: [16777216, 16777216]}
    calls:
      - {layer: {type: Normalization, name: n, axis: [1, 2], mean: 1.0, variance: 2.0},
         in: x, out: y}
    outputs: [y]
""", seed=0)
