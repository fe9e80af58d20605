"""Keras' activation functions by their Keras names and the activation layers (ReLU,
LeakyReLU, PReLU, ELU, Softmax): finite differences (float64), PyTorch (float64,
≤1e-5 relative, where it has the function), Keras 3 on the torch backend (float64 forward
and gradients, ≤1e-7), onnxruntime against predict, names usable in specs."""
import json

import numpy as np
import pytest
from gradcheck import check_gradients
from zoo_util import WORST, compare_all, keras_check, make_layer, onnx_check, run_ours

import graphspec
from graphspec import ops
from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import GraphspecError
from graphspec.layers.base import CallContext

torch = pytest.importorskip("torch")
F = torch.nn.functional

KINKS = (-3.0, 0.0, 3.0, 6.0, 0.5)


def smooth_points(shape, seed=0, low=-8.0, high=8.0):
    """Uniform points at least 0.05 away from every kink of the functions under test
    (finite differences across a kink measure nothing)."""
    x = np.random.default_rng(seed).uniform(low, high, shape)
    for kink in KINKS:
        near = np.abs(x - kink) < 0.05
        x[near] = kink + 0.1 * np.sign(x[near] - kink + 1e-12)
    return x


# name -> PyTorch's function (None: PyTorch has none; Keras is the only reference)
TORCH = {
    "relu6": F.relu6, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "silu": F.silu,
    "swish": F.silu, "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "hard_sigmoid": F.hardsigmoid, "hard_silu": F.hardswish, "hard_swish": F.hardswish,
    "mish": F.mish, "selu": F.selu, "softplus": F.softplus, "softsign": F.softsign,
    "exponential": torch.exp, "elu": F.elu, "log_softmax": lambda x: F.log_softmax(x, -1),
}
NAMES = sorted(TORCH)


def ours_and_grad(name, x, probe):
    with recording():
        xv = Variable(x.copy(), requires_grad=True)
        out = ops.ACTIVATIONS[name](xv)
        backward(out, seed=probe)
    return out.data, xv.grad


def reference(fn, x, probe):
    xt = torch.tensor(x, requires_grad=True)
    out = fn(xt)
    (out * torch.tensor(probe)).sum().backward()
    return out.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("name", NAMES)
def test_activation_finite_differences(name):
    check_gradients(ops.ACTIVATIONS[name], smooth_points((3, 7), low=-4, high=4))


@pytest.mark.parametrize("name", NAMES)
def test_activation_matches_pytorch(name):
    x = smooth_points((4, 25), seed=1)
    probe = np.random.default_rng(2).standard_normal(x.shape)
    ours = ours_and_grad(name, x, probe)
    compare_all(f"activation {name} vs PyTorch", (*ours, {}),
                (*reference(TORCH[name], x, probe), {}), 1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_activation_matches_keras(keras, name):
    """Keras' own function for the name (``gelu_tanh``: ``gelu(x, approximate=True)``;
    ``gelu``: Keras' default, ``approximate=False``)."""
    if name == "gelu_tanh":
        fn = lambda x: keras.activations.gelu(x, approximate=True)  # noqa: E731
    else:
        fn = keras.activations.get(name)
    x = smooth_points((4, 25), seed=3)
    probe = np.random.default_rng(4).standard_normal(x.shape)
    ours = ours_and_grad(name, x, probe)
    # 1e-7, not 1e-9: PyTorch's hardsigmoid/hardswish kernels scale by a float32 1/6
    compare_all(f"activation {name} vs Keras", (*ours, {}), (*reference(fn, x, probe), {}),
                1e-7)


def test_keras_hard_sigmoid_is_relu6_shifted():
    """Keras 3's hard_sigmoid (relu6(x + 3) / 6), not Keras 2's 0.2 x + 0.5."""
    out = ops.ACTIVATIONS["hard_sigmoid"](np.array([-4.0, -1.5, 0.0, 1.5, 4.0])).data
    np.testing.assert_allclose(out, [0.0, 0.25, 0.5, 0.75, 1.0])


def test_keras_names_work_in_specs():
    """A hand-written spec with Keras' spellings just works (Dense, Conv, Activation)."""
    layers = {f"d_{n}": {"type": "Dense", "units": 3, "activation": n} for n in NAMES}
    calls = [{"layer": n, "in": "x", "out": f"y_{n}"} for n in layers]
    spec = {"graphspec": 1, "layers": layers, "models": {"m": {
        "inputs": {"x": {"shape": [4]}}, "calls": calls,
        "outputs": [c["out"] for c in calls]}}}
    graph = graphspec.loads(json.dumps(spec), seed=0, dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 4))
    out = graph.model().predict(x)
    w = graph.weights()
    for name in NAMES:
        z = x @ w[f"d_{name}/kernel"].data + w[f"d_{name}/bias"].data
        want = TORCH[name](torch.tensor(z)).numpy()
        np.testing.assert_allclose(out[f"y_d_{name}"], want, rtol=1e-7, atol=1e-12)


# -- activation layers -----------------------------------------------------------------------
RELU = [
    {},
    {"max_value": 6},
    {"max_value": 5.5, "negative_slope": 0.1},
    {"threshold": 0.5, "negative_slope": 0.2},
    {"threshold": 0.5, "max_value": 3},
    {"negative_slope": 0.3},
]


def layer_fd(kind, cfg, shape):
    layer, _ = make_layer(kind, cfg, shape)
    names = list(layer.weights)
    x = smooth_points((2,) + tuple(shape), seed=7, low=-4, high=7)

    def fn(xv, *weights):
        layer.weights = dict(zip(names, weights))
        return layer.forward([xv], CallContext())[0]
    check_gradients(fn, x, *[layer.weights[n].data for n in names])


@pytest.mark.parametrize("cfg", RELU)
def test_relu_layer(keras, cfg):
    layer_fd("ReLU", cfg, (3, 4))
    x = smooth_points((2, 3, 4), seed=8, low=-4, high=8)
    keras_check(keras, "ReLU", cfg, keras.layers.ReLU, (3, 4), x=x)


def test_relu6_layer_matches_pytorch():
    layer, _ = make_layer("ReLU", {"max_value": 6}, (5,))
    x = smooth_points((3, 5), seed=9)
    probe = np.ones_like(x)
    ours = run_ours(layer, x, probe)
    compare_all("ReLU vs PyTorch", ours, (*reference(F.relu6, x, probe), {}), 1e-5)


LAYERS = [
    ("LeakyReLU", {}, (4, 3), lambda x, w: F.leaky_relu(x, 0.3)),
    ("LeakyReLU", {"negative_slope": 0.05}, (6,), lambda x, w: F.leaky_relu(x, 0.05)),
    ("ELU", {"alpha": 0.7}, (2, 5), lambda x, w: F.elu(x, 0.7)),
    ("Softmax", {}, (3, 4), lambda x, w: F.softmax(x, -1)),
    ("Softmax", {"axis": 1}, (3, 4), lambda x, w: F.softmax(x, 1)),
    ("Softmax", {"axis": [1, 2]}, (3, 4), lambda x, w: torch.exp(
        x - torch.logsumexp(x, dim=(1, 2), keepdim=True))),
    ("PReLU", {}, (3, 4), lambda x, w: torch.where(x >= 0, x, w["alpha"] * x)),
    ("PReLU", {"shared_axes": [1, 2]}, (3, 4, 2), lambda x, w: F.prelu(
        x.permute(0, 3, 1, 2), w["alpha"].reshape(-1)).permute(0, 2, 3, 1)),
    ("PReLU", {"shared_axes": 1}, (3, 4), lambda x, w: torch.where(x >= 0, x, w["alpha"] * x)),
]
IDS = [f"{kind}-{i}" for i, (kind, *_) in enumerate(LAYERS)]


@pytest.mark.parametrize("kind,cfg,shape,torch_fn", LAYERS, ids=IDS)
def test_layer_finite_differences(kind, cfg, shape, torch_fn):
    layer_fd(kind, cfg, shape)


@pytest.mark.parametrize("kind,cfg,shape,torch_fn", LAYERS, ids=IDS)
def test_layer_matches_pytorch(kind, cfg, shape, torch_fn):
    layer, out_shape = make_layer(kind, cfg, shape)
    x = smooth_points((3,) + tuple(shape), seed=10)
    probe = np.random.default_rng(11).standard_normal(x.shape)
    ours = run_ours(layer, x, probe)
    xt = torch.tensor(x, requires_grad=True)
    wt = {n: torch.tensor(w.data, requires_grad=True) for n, w in layer.weights.items()}
    out = torch_fn(xt, wt)
    (out * torch.tensor(probe)).sum().backward()
    compare_all(f"{kind} vs PyTorch", ours, (out.detach().numpy(), xt.grad.numpy(),
                                             {n: w.grad.numpy() for n, w in wt.items()}), 1e-5)


@pytest.mark.parametrize("kind,cfg,shape,torch_fn", LAYERS, ids=IDS)
def test_layer_matches_keras(keras, kind, cfg, shape, torch_fn):
    keras_check(keras, kind, cfg, getattr(keras.layers, kind), shape,
                x=smooth_points((2,) + tuple(shape), seed=12))


def test_prelu_alpha_shape_and_defaults():
    layer, _ = make_layer("PReLU", {"shared_axes": [1, 2]}, (None, None, 3))
    assert layer.weight_shapes["alpha"].shape == (1, 1, 3)
    assert layer.weight_shapes["alpha"].initializer == "zeros"
    graph = graphspec.loads(json.dumps({"graphspec": 1, "models": {"m": {
        "inputs": {"x": {"shape": [2, 3]}},
        "calls": [{"layer": {"type": "PReLU", "name": "p"}, "in": "x", "out": "y"}],
        "outputs": ["y"]}}}), seed=0)
    assert graph.layers["p"].param_count() == (6, 0)
    np.testing.assert_array_equal(graph.model().predict(np.full((1, 2, 3), -2.0))["y"], 0.0)


def test_leaky_relu_layer_default_is_keras_3():
    layer, _ = make_layer("LeakyReLU", {}, (1,))
    assert layer.forward([Variable(np.array([[-10.0]]))], CallContext())[0].data[0, 0] == -3.0


@pytest.mark.parametrize("layer, shape, message", [
    ({"type": "PReLU", "shared_axes": [2]}, [None, 3], "PReLU layer 'bad' needs known sizes on "
                                                       "every axis it does not share"),
    ({"type": "PReLU", "shared_axes": [3]}, [2, 3], "PReLU layer 'bad': shared axis 3 does "
                                                    "not exist"),
    ({"type": "Softmax", "axis": 3}, [2, 3], "Softmax layer 'bad': axis 3 is not a feature "
                                             "axis"),
    ({"type": "ReLU", "max_value": -1}, [3], "max_value"),
    ({"type": "LeakyReLU", "negative_slope": -0.1}, [3], "negative_slope"),
    ({"type": "Activation", "activation": "swishy"}, [3], "swishy"),
])
def test_bad_arguments_are_located(layer, shape, message):
    spec = json.dumps({"graphspec": 1, "models": {"m": {
        "inputs": {"x": {"shape": shape}},
        "calls": [{"layer": dict(layer, name="bad"), "in": "x", "out": "y"}],
        "outputs": ["y"]}}})
    with pytest.raises(GraphspecError) as info:
        graphspec.loads(spec, seed=0)
    assert message in str(info.value) and str(info.value).count("\n") == 0
    assert str(info.value).startswith("<string>:")


ONNX_CASES = {
    **{f"Activation-{n}": ({"type": "Activation", "activation": n}, (4, 5)) for n in NAMES},
    "Activation-log_softmax-axis1": ({"type": "Activation", "activation": "log_softmax",
                                      "axis": 1}, (3, 4)),
    **{f"ReLU-{i}": (dict(cfg, type="ReLU"), (3, 4)) for i, cfg in enumerate(RELU)},
    "LeakyReLU": ({"type": "LeakyReLU"}, (4,)),
    "ELU": ({"type": "ELU", "alpha": 0.5}, (4,)),
    "PReLU": ({"type": "PReLU", "shared_axes": [1]}, (3, 4)),
    "Softmax-axis1": ({"type": "Softmax", "axis": 1}, (3, 4)),
    "Softmax-axes": ({"type": "Softmax", "axis": [1, 2]}, (3, 4)),
}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_exports_to_onnx(case):
    layer, shape = ONNX_CASES[case]
    onnx_check(layer, shape)


def test_report():
    print("\nlargest relative error:")
    for label, err in sorted(WORST.items()):
        print(f"  {label:40s} {err:.1e}")
