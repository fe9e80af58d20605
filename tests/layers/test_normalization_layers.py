"""BatchNormalization and LayerNormalization: finite differences (float64) w.r.t. the
input and every weight, PyTorch equivalence of outputs, gradients and moving statistics
(float64 and float32), shape inference and errors, and moving statistics updated by the
real trainer.

Run with ``-s`` to see the largest relative error against PyTorch per layer.
"""
import numpy as np
import pytest
from torch_report import worst_error_reporter
from gradcheck import check_gradients

from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import ShapeError
from graphspec.layers.base import CallContext
from graphspec.layers.batch_normalization import BatchNormalization
from graphspec.layers.layer_normalization import LayerNormalization

TOLERANCE = {np.float64: 1e-5, np.float32: 1e-4}
DTYPES = [np.float64, np.float32]
WORST = {}  # (layer type, dtype) -> largest relative error seen against PyTorch
report_worst = worst_error_reporter(WORST)


# -- helpers ---------------------------------------------------------------------------
def build(layer, feature_shape, dtype=np.float64, seed=0):
    """Shape-check, register and fill the weights (moving variance positive)."""
    shape = (None,) + tuple(feature_shape)
    assert layer.compute_output_shapes([shape]) == [shape]
    layer.register_weights([shape])
    rng = np.random.default_rng(seed)
    layer.weights = {}
    for name, spec in layer.weight_shapes.items():
        low, high = (0.5, 1.5) if name in ("moving_variance", "gamma") else (-0.7, 0.7)
        layer.weights[name] = Variable(rng.uniform(low, high, spec.shape).astype(dtype),
                                       requires_grad=spec.trainable, name=name)
    return layer


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def record(layer, dtype, errors):
    key = (layer.TYPE, np.dtype(dtype).name)
    WORST[key] = max(WORST.get(key, 0.0), max(errors))


def fd_check(layer, feature_shape, training, names, batch=4, seed=1):
    """Finite differences w.r.t. the input and the weights ``names`` (float64)."""
    build(layer, feature_shape)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(feature_shape)) * 1.5 + 0.3
    fixed = dict(layer.weights)

    def fn(xv, *weights):
        layer.weights = dict(fixed, **dict(zip(names, weights)))
        return layer.forward([xv], CallContext(training=training))[0]
    check_gradients(fn, x, *[fixed[n].data for n in names])


def ours(layer, x, g, training):
    """Output, input gradient, weight gradients, and the queued state updates."""
    ctx = CallContext(training=training)
    with recording():
        xv = Variable(x.copy(), requires_grad=True)
        for w in layer.weights.values():
            w.grad = None
        out = layer.forward([xv], ctx)[0]
        backward(out, seed=g)
    grads = {n: w.grad for n, w in layer.weights.items() if w.requires_grad}
    return out.data, xv.grad, grads, ctx


# -- BatchNormalization: finite differences ---------------------------------------------
BN_CASES = [
    # (config, feature shape)
    ({}, (3,)),
    ({}, (4, 3)),
    ({}, (3, 3, 2)),
    ({"axis": 1}, (3, 4)),
    ({"axis": -2}, (2, 3, 2)),
    ({"center": False}, (4, 3)),
    ({"scale": False}, (4, 3)),
    ({"center": False, "scale": False}, (3,)),
    ({"epsilon": 0.1}, (3,)),
]


def trainable_names(layer):
    return [n for n in ("gamma", "beta") if n in layer.weights]


@pytest.mark.parametrize("config, shape", BN_CASES)
def test_batch_norm_train_finite_differences(config, shape):
    layer = build(BatchNormalization("bn", config), shape)
    fd_check(layer, shape, True, trainable_names(layer))


@pytest.mark.parametrize("config, shape", BN_CASES)
def test_batch_norm_inference_finite_differences(config, shape):
    layer = build(BatchNormalization("bn", config), shape)
    # the moving statistics too: a model-level gradient check asks for every weight
    fd_check(layer, shape, False, trainable_names(layer) + ["moving_mean", "moving_variance"])


def test_batch_norm_train_normalises_and_queues_keras_updates():
    layer = build(BatchNormalization("bn", {"momentum": 0.9}), (4, 3))
    x = np.random.default_rng(0).standard_normal((5, 4, 3)) * 2 + 1
    mm0 = layer.weights["moving_mean"].data.copy()
    mv0 = layer.weights["moving_variance"].data.copy()
    ctx = CallContext(training=True)
    out = layer.forward([Variable(x)], ctx)[0].data
    gamma, beta = layer.weights["gamma"].data, layer.weights["beta"].data
    mean, var = x.mean(axis=(0, 1)), x.var(axis=(0, 1))           # biased, as Keras
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3) * gamma + beta, rtol=1e-12)
    updates = {id(v): value for v, value in ctx.state_updates}
    assert len(ctx.state_updates) == 2
    np.testing.assert_allclose(updates[id(layer.weights["moving_mean"])], mm0 * 0.9 + mean * 0.1)
    np.testing.assert_allclose(updates[id(layer.weights["moving_variance"])], mv0 * 0.9 + var * 0.1)
    # the variables themselves only change when the trainer applies the updates
    np.testing.assert_array_equal(layer.weights["moving_mean"].data, mm0)


def test_batch_norm_inference_uses_moving_statistics_and_queues_nothing():
    layer = build(BatchNormalization("bn", {}), (3,))
    x = np.random.default_rng(0).standard_normal((4, 3))
    ctx = CallContext(training=False)
    out = layer.forward([Variable(x)], ctx)[0].data
    w = {k: v.data for k, v in layer.weights.items()}
    expected = (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + 1e-3) * w["gamma"] \
        + w["beta"]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    assert ctx.state_updates == []


def test_frozen_batch_norm_runs_in_inference_mode():
    """Keras: ``trainable=False`` on a BatchNormalization layer means inference mode."""
    layer = build(BatchNormalization("bn", {}, trainable=False), (3,))
    x = np.random.default_rng(0).standard_normal((4, 3))
    ctx = CallContext(training=True)
    out = layer.forward([Variable(x)], ctx)[0].data
    np.testing.assert_array_equal(out, layer.forward([Variable(x)], CallContext())[0].data)
    assert ctx.state_updates == []


def test_shared_batch_norm_updates_compound_in_call_order():
    layer = build(BatchNormalization("bn", {"momentum": 0.5}), (2,))
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    ctx = CallContext(training=True)
    layer.forward([Variable(a)], ctx)
    layer.forward([Variable(b)], ctx)
    mm0 = layer.weights["moving_mean"].data
    last = [value for var, value in ctx.state_updates if var is layer.weights["moving_mean"]][-1]
    expected = (mm0 * 0.5 + a.mean(0) * 0.5) * 0.5 + b.mean(0) * 0.5
    np.testing.assert_allclose(last, expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_norm_keeps_dtype(dtype):
    layer = build(BatchNormalization("bn", {}), (4, 3), dtype=dtype)
    x = np.random.default_rng(0).standard_normal((3, 4, 3)).astype(dtype)
    for training in (True, False):
        out, gx, gw, ctx = ours(layer, x, np.ones_like(x), training)
        assert out.dtype == dtype and gx.dtype == dtype
        assert all(g.dtype == dtype for g in gw.values())
        assert all(value.dtype == dtype for _, value in ctx.state_updates)


# -- BatchNormalization: PyTorch ---------------------------------------------------------
def torch_bn_module(torch, rank, channels, layer, dtype):
    """BatchNorm1d/2d/3d with our weights; torch's momentum is 1 - Keras' momentum."""
    cls = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d,
           5: torch.nn.BatchNorm3d}[rank]
    module = cls(channels, eps=layer.epsilon, momentum=1 - layer.momentum,
                 affine=True, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.weights["gamma"].data))
        module.bias.copy_(torch.tensor(layer.weights["beta"].data))
        module.running_mean.copy_(torch.tensor(layer.weights["moving_mean"].data))
        module.running_var.copy_(torch.tensor(layer.weights["moving_variance"].data))
    return module


BN_TORCH_CASES = [
    ({}, (5,)),                       # BatchNorm1d on (N, C)
    ({}, (6, 4)),                     # BatchNorm1d on (N, C, L), channels-last permuted
    ({}, (5, 4, 3)),                  # BatchNorm2d on (N, C, H, W)
    ({"axis": 1}, (3, 5, 4)),         # channels on axis 1 already (channels-first data)
    ({"momentum": 0.8, "epsilon": 1e-5}, (4, 3, 2)),
    ({}, (2, 3, 2, 3)),               # BatchNorm3d
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config, shape", BN_TORCH_CASES)
def test_batch_norm_matches_torch(config, shape, dtype):
    torch = pytest.importorskip("torch")
    layer = build(BatchNormalization("bn", config), shape, dtype=dtype, seed=3)
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((4,) + shape) * 2 + 0.5).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    rank, axis = x.ndim, layer.config["axis"] % x.ndim
    channels = x.shape[axis]
    errors = []
    for training in (True, False):
        module = torch_bn_module(torch, rank, channels, layer, dtype)
        module.train(training)
        out, gx, gw, ctx = ours(layer, x, g, training)
        xt = torch.tensor(x, requires_grad=True)
        ot = torch.movedim(module(torch.movedim(xt, axis, 1)), 1, axis)
        ot.backward(torch.tensor(g))
        pairs = [("output", out, ot.detach().numpy()), ("input grad", gx, xt.grad.numpy()),
                 ("gamma grad", gw["gamma"], module.weight.grad.numpy()),
                 ("beta grad", gw["beta"], module.bias.grad.numpy())]
        if training:
            updates = {id(v): value for v, value in ctx.state_updates}
            new_mean = updates[id(layer.weights["moving_mean"])]
            new_var = updates[id(layer.weights["moving_variance"])]
            pairs.append(("moving_mean", new_mean, module.running_mean.numpy()))
            # Keras feeds the *biased* batch variance into the moving average, PyTorch
            # the unbiased one (x m/(m-1)): torch's running_var is larger by
            # (1 - momentum) * var_biased / (m - 1). Compare after removing that.
            m = x.size // channels
            var_b = np.moveaxis(x.astype(np.float64), axis, -1).reshape(-1, channels).var(0)
            keras_from_torch = module.running_var.numpy() \
                - (1 - layer.momentum) * var_b / (m - 1)
            pairs.append(("moving_variance", new_var, keras_from_torch))
            assert np.all(module.running_var.numpy() > new_var)   # the difference is real
        for what, a, b in pairs:
            err = rel_err(a, b)
            assert err <= TOLERANCE[dtype], \
                f"BatchNormalization {what} (training={training}): relative error {err:.2e}"
            errors.append(err)
    record(layer, dtype, errors)


# -- LayerNormalization ------------------------------------------------------------------
LN_CASES = [
    ({}, (5,)),
    ({}, (3, 4)),
    ({"axis": [1, 2]}, (3, 4)),
    ({"axis": [-2, -1]}, (2, 3, 2)),
    ({"axis": 1}, (3, 4)),                 # not the last axis
    ({"axis": [2, 1]}, (3, 4)),            # out of order: Keras reshapes the weights
    ({"axis": [1, 3]}, (2, 3, 2)),
    ({"center": False}, (3, 4)),
    ({"scale": False}, (3, 4)),
    ({"center": False, "scale": False, "epsilon": 0.1}, (4,)),
]


@pytest.mark.parametrize("config, shape", LN_CASES)
def test_layer_norm_finite_differences(config, shape):
    layer = build(LayerNormalization("ln", config), shape)
    fd_check(layer, shape, False, trainable_names(layer), batch=3)


def test_layer_norm_values_and_weight_shapes():
    layer = build(LayerNormalization("ln", {"axis": [1, 2]}), (3, 4))
    assert layer.weight_shapes["gamma"].shape == (3, 4)
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    out = layer.forward([Variable(x)], CallContext())[0].data
    mean, var = x.mean(axis=(1, 2), keepdims=True), x.var(axis=(1, 2), keepdims=True)
    w = layer.weights
    np.testing.assert_allclose(
        out, (x - mean) / np.sqrt(var + 1e-3) * w["gamma"].data + w["beta"].data, rtol=1e-12)
    # out of order: Keras sorts the axes first, so the weights are (3, 4) all the same
    layer = build(LayerNormalization("ln", {"axis": [2, 1]}), (3, 4))
    assert layer.weight_shapes["gamma"].shape == (3, 4)
    out = layer.forward([Variable(x)], CallContext())[0].data
    w = {k: v.data.reshape(1, 3, 4) for k, v in layer.weights.items()}
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 1e-3) * w["gamma"] + w["beta"],
                               rtol=1e-12)
    # same in training: no batch statistics, no state
    ctx = CallContext(training=True)
    np.testing.assert_array_equal(layer.forward([Variable(x)], ctx)[0].data, out)
    assert ctx.state_updates == []


LN_TORCH_CASES = [
    ({}, (6,)),
    ({}, (3, 5)),
    ({"axis": [1, 2]}, (3, 5)),
    ({"axis": [-2, -1], "epsilon": 1e-5}, (2, 3, 4)),
    ({"axis": 1}, (4, 3)),                 # moved to the end for torch
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config, shape", LN_TORCH_CASES)
def test_layer_norm_matches_torch(config, shape, dtype):
    torch = pytest.importorskip("torch")
    layer = build(LayerNormalization("ln", config), shape, dtype=dtype, seed=5)
    rng = np.random.default_rng(6)
    x = (rng.standard_normal((3,) + shape) * 2 + 0.5).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    out, gx, gw, _ = ours(layer, x, g, True)
    axes = sorted(a % x.ndim for a in np.atleast_1d(layer.config["axis"]))
    normalized = [x.shape[a] for a in axes]
    module = torch.nn.LayerNorm(normalized, eps=layer.epsilon,
                                dtype=torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        module.weight.copy_(torch.tensor(layer.weights["gamma"].data))
        module.bias.copy_(torch.tensor(layer.weights["beta"].data))
    xt = torch.tensor(x, requires_grad=True)
    last = list(range(x.ndim - len(axes), x.ndim))
    ot = torch.movedim(module(torch.movedim(xt, axes, last)), last, axes)
    ot.backward(torch.tensor(g))
    pairs = [("output", out, ot.detach().numpy()), ("input grad", gx, xt.grad.numpy()),
             ("gamma grad", gw["gamma"], module.weight.grad.numpy()),
             ("beta grad", gw["beta"], module.bias.grad.numpy())]
    errors = []
    for what, a, b in pairs:
        assert a.dtype == dtype
        err = rel_err(a, b)
        assert err <= TOLERANCE[dtype], f"LayerNormalization {what}: relative error {err:.2e}"
        errors.append(err)
    record(layer, dtype, errors)


# -- shapes and errors -------------------------------------------------------------------
def test_shapes_and_weight_specs():
    bn = BatchNormalization("bn", {"axis": 1})
    assert bn.compute_output_shapes([(None, 5, 7)]) == [(None, 5, 7)]
    specs = {s.name: s for s in bn.weight_specs([(None, 5, 7)])}
    assert {n: (s.shape, s.initializer, s.trainable) for n, s in specs.items()} == {
        "gamma": ((5,), "ones", True), "beta": ((5,), "zeros", True),
        "moving_mean": ((5,), "zeros", False), "moving_variance": ((5,), "ones", False)}
    bn = BatchNormalization("bn", {"center": False, "scale": False})
    assert [s.name for s in bn.weight_specs([(None, 4)])] == ["moving_mean", "moving_variance"]
    bn.register_weights([(None, 4)])
    assert bn.param_count() == (0, 8)
    assert BatchNormalization("bn", {}).config["momentum"] == 0.99
    assert BatchNormalization("bn", {}).config["epsilon"] == 1e-3
    ln = LayerNormalization("ln", {"axis": [-1, 1]})
    # Keras sorts the axes before it creates the weights
    assert ln.compute_output_shapes([(None, 2, None, 3)]) == [(None, 2, None, 3)]
    assert [s.shape for s in ln.weight_specs([(None, 2, None, 3)])] == [(2, 3), (2, 3)]
    assert LayerNormalization("ln", {"scale": False}).weight_specs([(None, 4)])[0].name == "beta"


@pytest.mark.parametrize("layer, shape, message", [
    (BatchNormalization("bn", {"axis": 0}), (None, 3), "not a feature axis"),
    (BatchNormalization("bn", {"axis": 3}), (None, 3, 2), "not a feature axis"),
    (BatchNormalization("bn", {"axis": -4}), (None, 3, 2), "not a feature axis"),
    (BatchNormalization("bn", {}), (None,), "at least one feature axis"),
    (BatchNormalization("bn", {}), (None, 4, None), "known size on axis -1"),
    (LayerNormalization("ln", {"axis": 0}), (None, 3), "not a feature axis"),
    (LayerNormalization("ln", {"axis": [1, 5]}), (None, 3), "not a feature axis"),
    (LayerNormalization("ln", {"axis": [1, -2]}), (None, 3, 4), "listed twice"),
    (LayerNormalization("ln", {}), (None, 4, None), "known size on axis 2"),
    (LayerNormalization("ln", {}), (None,), "not a feature axis"),
])
def test_shape_errors(layer, shape, message):
    with pytest.raises(ShapeError, match=message):
        layer.compute_output_shapes([shape])


def test_two_inputs_refused():
    with pytest.raises(ShapeError, match="takes 1 input"):
        BatchNormalization("bn", {}).compute_output_shapes([(None, 3), (None, 3)])
    with pytest.raises(ShapeError, match="takes 1 input"):
        LayerNormalization("ln", {}).compute_output_shapes([(None, 3), (None, 3)])


def test_shared_layer_on_other_channel_count_refused():
    bn = BatchNormalization("bn", {})
    bn.register_weights([(None, 3)])
    with pytest.raises(ShapeError, match="shared layer"):
        bn.register_weights([(None, 4)])


# -- the real trainer --------------------------------------------------------------------
SPEC = """
graphspec: 1
models:
  net:
    inputs: {x: {shape: [4]}}
    calls:
      - {layer: {type: Dense, units: 3, name: d1}, in: x, out: h}
      - {layer: {type: BatchNormalization, name: bn, momentum: 0.9}, in: h, out: n}
      - {layer: {type: Dense, units: 1, name: d2}, in: n, out: y}
    outputs: [y]
training:
  default: {model: net, loss: mse, optimizer: sgd}
"""


@pytest.fixture
def registered(monkeypatch):
    """BatchNormalization in the registry for one test (the lead registers it for good)."""
    from graphspec.layers import registry
    from graphspec.spec.schema import spec_schema
    from graphspec.spec.validate import _validator
    monkeypatch.setitem(registry.REGISTRY, "BatchNormalization", BatchNormalization)
    monkeypatch.setitem(registry.REGISTRY, "LayerNormalization", LayerNormalization)
    spec_schema.cache_clear()
    _validator.cache_clear()
    yield
    monkeypatch.undo()
    spec_schema.cache_clear()
    _validator.cache_clear()


def test_trainer_updates_moving_statistics(registered, tmp_path):
    import graphspec
    graph = graphspec.loads(SPEC, seed=0, dtype="float64")
    weights = graph.weights()
    specs = graph.weight_specs()
    assert not specs["bn/moving_mean"].trainable and not specs["bn/moving_variance"].trainable
    assert graph.models["net"].param_count() == (15 + 6 + 4, 6)
    np.testing.assert_array_equal(weights["bn/moving_mean"].data, 0.0)
    np.testing.assert_array_equal(weights["bn/moving_variance"].data, 1.0)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4)) + 2.0
    y = rng.standard_normal((8, 1))
    h = x @ weights["d1/kernel"].data + weights["d1/bias"].data     # BN's input, before the step
    before = {k: v.data.copy() for k, v in weights.items()}
    graph.models["net"].train_on_batch({"x": x}, {"y": y})
    np.testing.assert_allclose(weights["bn/moving_mean"].data, 0.1 * h.mean(0), rtol=1e-12)
    np.testing.assert_allclose(weights["bn/moving_variance"].data, 0.9 + 0.1 * h.var(0),
                               rtol=1e-12)
    assert not np.array_equal(weights["bn/gamma"].data, before["bn/gamma"])
    assert not np.array_equal(weights["bn/beta"].data, before["bn/beta"])

    # inference uses the moving statistics
    w = {k: v.data for k, v in weights.items()}
    h = x @ w["d1/kernel"] + w["d1/bias"]
    n = (h - w["bn/moving_mean"]) / np.sqrt(w["bn/moving_variance"] + 1e-3) * w["bn/gamma"] \
        + w["bn/beta"]
    np.testing.assert_allclose(graph.models["net"].predict({"x": x})["y"],
                               n @ w["d2/kernel"] + w["d2/bias"], rtol=1e-10)

    # fit moves them further; they are saved and loaded with the other weights
    history = graph.models["net"].fit({"x": x}, {"y": y}, epochs=2, batch_size=4, seed=0,
                                      verbose=False)
    assert len(history["loss"]) == 2
    assert not np.allclose(weights["bn/moving_mean"].data, 0.1 * h.mean(0))
    path = tmp_path / "w.npz"
    graph.save_weights(path)
    fresh = graphspec.loads(SPEC, seed=1, dtype="float64")
    fresh.load_weights(path)
    for key in ("bn/moving_mean", "bn/moving_variance"):
        np.testing.assert_array_equal(fresh.weights()[key].data, weights[key].data)


def test_layer_norm_in_a_spec_trains(registered):
    import graphspec
    text = SPEC.replace("type: BatchNormalization, name: bn, momentum: 0.9",
                        "type: LayerNormalization, name: ln")
    graph = graphspec.loads(text, seed=0)
    before = graph.weights()["ln/gamma"].data.copy()
    rng = np.random.default_rng(0)
    graph.models["net"].train_on_batch({"x": rng.standard_normal((8, 4)).astype(np.float32)},
                                       {"y": rng.standard_normal((8, 1)).astype(np.float32)})
    assert graph.weights()["ln/gamma"].data.dtype == np.float32
    assert not np.array_equal(graph.weights()["ln/gamma"].data, before)
