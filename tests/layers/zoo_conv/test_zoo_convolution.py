"""DepthwiseConv2D, SeparableConv2D, Conv2DTranspose and Conv1D/Conv2D ``groups``:
finite differences (float64) for the input and every weight, PyTorch (float64, ≤1e-5
relative) and Keras 3 on the torch backend (float64: output, input and weight gradients,
≤1e-9), onnxruntime against predict, shapes with unknown sizes, located errors."""
import numpy as np
import pytest
from gradcheck import check_gradients
from zoo_util import WORST, compare_all, keras_check, make_layer, onnx_check, run_ours

import graphspec
from graphspec.errors import GraphspecError
from graphspec.layers.base import CallContext
from graphspec.ops.conv_transpose import transpose_length

torch = pytest.importorskip("torch")
F = torch.nn.functional


def fd_check(kind, config, feature_shape, batch=2):
    layer, _ = make_layer(kind, config, feature_shape)
    names = list(layer.weights)
    x = np.random.default_rng(5).standard_normal((batch,) + tuple(feature_shape))

    def fn(xv, *weights):
        layer.weights = dict(zip(names, weights))
        return layer.forward([xv], CallContext())[0]
    check_gradients(fn, x, *[layer.weights[n].data for n in names])


def tf_pads(n, k, s, d=1):
    """TensorFlow 'same' padding, written independently of the code under test."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


def torch_check(kind, config, feature_shape, torch_fn, batch=3, tol=1e-5):
    """graphspec vs ``torch_fn(x NHWC tensor, weights dict)`` in float64."""
    layer, out_shape = make_layer(kind, config, feature_shape)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((batch,) + tuple(feature_shape))
    probe = rng.standard_normal((batch,) + tuple(out_shape[1:]))
    ours = run_ours(layer, x, probe)
    xt = torch.tensor(x, requires_grad=True)
    wt = {n: torch.tensor(w.data, requires_grad=True) for n, w in layer.weights.items()}
    out = torch_fn(xt, wt)
    (out * torch.tensor(probe)).sum().backward()
    theirs = (out.detach().numpy(), xt.grad.numpy(), {n: w.grad.numpy() for n, w in wt.items()})
    compare_all(f"{kind} vs PyTorch", ours, theirs, tol)


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def torch_same_pad(x, kernel, strides, dilation=(1, 1)):
    top, bottom = tf_pads(x.shape[2], kernel[0], strides[0], dilation[0])
    left, right = tf_pads(x.shape[3], kernel[1], strides[1], dilation[1])
    return F.pad(x, (left, right, top, bottom))


# -- DepthwiseConv2D ------------------------------------------------------------------------
DEPTHWISE = [
    ({"kernel_size": 3}, (6, 5, 3)),
    ({"kernel_size": 3, "depth_multiplier": 2, "strides": 2, "padding": "same"}, (7, 6, 3)),
    ({"kernel_size": [2, 3], "dilation_rate": 2, "padding": "same", "use_bias": False,
      "activation": "relu6"}, (7, 7, 2)),
]


def torch_depthwise(cfg):
    k = cfg["kernel_size"]
    kernel = (k, k) if isinstance(k, int) else tuple(k)
    s = cfg.get("strides", 1)
    d = cfg.get("dilation_rate", 1)

    def fn(xt, wt):
        x = nchw(xt)
        if cfg.get("padding") == "same":
            x = torch_same_pad(x, kernel, (s, s), (d, d))
        w = wt["kernel"]                              # (kh, kw, C, M)
        w = w.reshape(w.shape[0], w.shape[1], 1, -1).permute(3, 2, 0, 1)
        y = F.conv2d(x, w, wt.get("bias"), stride=s, dilation=d, groups=xt.shape[-1])
        y = F.relu6(y) if cfg.get("activation") == "relu6" else y
        return nhwc(y)
    return fn


@pytest.mark.parametrize("cfg,shape", DEPTHWISE)
def test_depthwise_finite_differences(cfg, shape):
    fd_check("DepthwiseConv2D", cfg, shape)


@pytest.mark.parametrize("cfg,shape", DEPTHWISE)
def test_depthwise_matches_pytorch(cfg, shape):
    torch_check("DepthwiseConv2D", cfg, shape, torch_depthwise(cfg))


@pytest.mark.parametrize("cfg,shape", DEPTHWISE[:2])
def test_depthwise_matches_keras(keras, cfg, shape):
    keras_check(keras, "DepthwiseConv2D", cfg, keras.layers.DepthwiseConv2D, shape)


# -- SeparableConv2D -------------------------------------------------------------------------
SEPARABLE = [
    ({"filters": 4, "kernel_size": 3}, (6, 6, 2)),
    ({"filters": 3, "kernel_size": 3, "depth_multiplier": 2, "strides": 2, "padding": "same",
      "activation": "relu"}, (7, 8, 3)),
]


@pytest.mark.parametrize("cfg,shape", SEPARABLE)
def test_separable_finite_differences(cfg, shape):
    fd_check("SeparableConv2D", cfg, shape)


@pytest.mark.parametrize("cfg,shape", SEPARABLE)
def test_separable_matches_pytorch(cfg, shape):
    def fn(xt, wt):
        x = nchw(xt)
        s = cfg.get("strides", 1)
        if cfg.get("padding") == "same":
            x = torch_same_pad(x, (3, 3), (s, s))
        w = wt["depthwise_kernel"]
        w = w.reshape(3, 3, 1, -1).permute(3, 2, 0, 1)
        y = F.conv2d(x, w, stride=s, groups=xt.shape[-1])
        y = F.conv2d(y, wt["pointwise_kernel"].permute(3, 2, 0, 1), wt["bias"])
        return nhwc(F.relu(y) if cfg.get("activation") == "relu" else y)
    torch_check("SeparableConv2D", cfg, shape, fn)


@pytest.mark.parametrize("cfg,shape", SEPARABLE)
def test_separable_matches_keras(keras, cfg, shape):
    keras_check(keras, "SeparableConv2D", cfg, keras.layers.SeparableConv2D, shape)


# -- Conv2DTranspose -------------------------------------------------------------------------
TRANSPOSE = [
    ({"filters": 3, "kernel_size": 3}, (4, 5, 2)),
    ({"filters": 3, "kernel_size": 3, "strides": 2}, (4, 3, 2)),
    ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (4, 5, 3)),
    ({"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same"}, (3, 4, 2)),
    ({"filters": 2, "kernel_size": [3, 2], "strides": [2, 3], "padding": "same",
      "output_padding": [0, 1]}, (3, 4, 2)),
    ({"filters": 2, "kernel_size": 2, "strides": 3, "output_padding": 1,
      "activation": "tanh"}, (3, 3, 2)),
    ({"filters": 2, "kernel_size": 1, "strides": 2, "padding": "same", "use_bias": False},
     (3, 3, 2)),
    ({"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (5, 4, 2)),
]


@pytest.mark.parametrize("cfg,shape", TRANSPOSE)
def test_transpose_finite_differences(cfg, shape):
    fd_check("Conv2DTranspose", cfg, shape)


@pytest.mark.parametrize("cfg,shape", TRANSPOSE)
def test_transpose_matches_keras(keras, cfg, shape):
    keras_check(keras, "Conv2DTranspose", cfg, keras.layers.Conv2DTranspose, shape)


def test_transpose_matches_pytorch_valid():
    """PyTorch's conv_transpose2d is the 'valid' case with output_padding directly."""
    cfg = {"filters": 3, "kernel_size": [3, 2], "strides": [2, 3], "output_padding": [1, 2]}

    def fn(xt, wt):
        y = F.conv_transpose2d(nchw(xt), wt["kernel"].permute(3, 2, 0, 1), wt["bias"],
                               stride=(2, 3), output_padding=(1, 2))
        return nhwc(y)
    torch_check("Conv2DTranspose", cfg, (3, 4, 2), fn)


def test_transpose_sizes_are_keras_sizes():
    """Keras' documented sizes: valid (n-1)s + k + op (op default max(k, s) - k);
    same n*s, or (n-1)s + k%2 + op with output_padding."""
    assert transpose_length(4, 3, 2, "valid") == 9
    assert transpose_length(4, 2, 3, "valid") == 12           # default op = 1
    assert transpose_length(4, 3, 2, "valid", 1) == 10
    assert transpose_length(5, 3, 2, "same") == 10
    assert transpose_length(5, 4, 2, "same", 1) == 9
    assert transpose_length(None, 3, 2, "same") is None
    layer, shape = make_layer("Conv2DTranspose", {"filters": 4, "kernel_size": 3,
                                                  "strides": 2, "padding": "same"},
                              (None, 5, 3))
    assert shape == (None, None, 10, 4) and layer.weight_shapes["kernel"].shape == (3, 3, 4, 3)


# -- groups --------------------------------------------------------------------------------
GROUPS = [
    ("Conv2D", {"filters": 4, "kernel_size": 3, "groups": 2, "padding": "same"}, (5, 5, 6)),
    ("Conv2D", {"filters": 6, "kernel_size": 2, "groups": 3, "activation": "relu",
                "strides": 2}, (6, 5, 3)),
    ("Conv1D", {"filters": 4, "kernel_size": 3, "groups": 2, "padding": "causal"}, (7, 4)),
]


@pytest.mark.parametrize("kind,cfg,shape", GROUPS)
def test_groups_finite_differences(kind, cfg, shape):
    fd_check(kind, cfg, shape)


@pytest.mark.parametrize("kind,cfg,shape", GROUPS)
def test_groups_match_keras(keras, kind, cfg, shape):
    keras_check(keras, kind, cfg, getattr(keras.layers, kind), shape)


def test_groups_match_pytorch():
    cfg = {"filters": 4, "kernel_size": 3, "groups": 2}

    def fn(xt, wt):
        return nhwc(F.conv2d(nchw(xt), wt["kernel"].permute(3, 2, 0, 1), wt["bias"],
                             groups=2))
    torch_check("Conv2D", cfg, (5, 6, 6), fn)


def test_groups_kernel_shape_and_refusal():
    layer, _ = make_layer("Conv2D", {"filters": 6, "kernel_size": 3, "groups": 3}, (5, 5, 9))
    assert layer.weight_shapes["kernel"].shape == (3, 3, 3, 6)
    text = """
    graphspec: 1
    models:
      m:
        inputs:
          x: {shape: [5, 5, 4]}
        calls:
          - {layer: {type: Conv2D, name: c, filters: 6, kernel_size: 3, groups: 4},
             in: x, out: y}
        outputs: [y]
    """
    with pytest.raises(GraphspecError, match=r":8:9: models.m.calls\[0\]: Conv2D layer 'c': groups 4 must divide "
                                        r"both the input channels \(4\) and filters \(6\)"):
        graphspec.loads(__import__("textwrap").dedent(text), seed=0)


# -- shapes, errors, ONNX ---------------------------------------------------------------------
def test_unknown_sizes_flow_through():
    _, shape = make_layer("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2,
                                              "padding": "same", "strides": 2}, (None, 7, 3))
    assert shape == (None, None, 4, 6)
    _, shape = make_layer("SeparableConv2D", {"filters": 5, "kernel_size": 3}, (None, None, 2))
    assert shape == (None, None, None, 5)


@pytest.mark.parametrize("layer, message", [
    ({"type": "Conv2DTranspose", "filters": 2, "kernel_size": 3, "strides": 2,
      "output_padding": 2}, "Conv2DTranspose layer 'bad': output_padding 2 must be below the "
                            "strides [2, 2] on every axis"),
    ({"type": "DepthwiseConv2D", "kernel_size": 5}, "DepthwiseConv2D layer 'bad': input shape "
                                                     "(None, 4, 4, 2) is too small"),
    ({"type": "DepthwiseConv2D", "kernel_size": 3, "depth_multiplier": 0}, "depth_multiplier"),
    ({"type": "SeparableConv2D", "kernel_size": 3}, "filters"),
])
def test_bad_arguments_are_located(layer, message):
    import json
    spec = json.dumps({"graphspec": 1, "models": {"m": {
        "inputs": {"x": {"shape": [4, 4, 2]}},
        "calls": [{"layer": dict(layer, name="bad"), "in": "x", "out": "y"}],
        "outputs": ["y"]}}})
    with pytest.raises(GraphspecError) as info:
        graphspec.loads(spec, seed=0)
    assert message in str(info.value)
    assert str(info.value).count("\n") == 0


ONNX_CASES = {
    "depthwise-same-strided": ({"type": "DepthwiseConv2D", "kernel_size": 3, "strides": 2,
                                "padding": "same", "depth_multiplier": 2}, (7, 6, 3)),
    "depthwise-dilated-relu6": ({"type": "DepthwiseConv2D", "kernel_size": 2,
                                 "dilation_rate": 2, "activation": "relu6",
                                 "use_bias": False}, (6, 6, 2)),
    "depthwise-same-unknown": ({"type": "DepthwiseConv2D", "kernel_size": 3,
                                "padding": "same"}, (None, None, 2)),
    "separable": ({"type": "SeparableConv2D", "filters": 4, "kernel_size": 3,
                   "padding": "same", "activation": "hard_swish"}, (6, 5, 3)),
    "transpose-valid": ({"type": "Conv2DTranspose", "filters": 3, "kernel_size": 3,
                         "strides": 2}, (4, 3, 2)),
    "transpose-same": ({"type": "Conv2DTranspose", "filters": 2, "kernel_size": 3,
                        "strides": 2, "padding": "same"}, (4, 5, 3)),
    "transpose-output-padding": ({"type": "Conv2DTranspose", "filters": 2,
                                  "kernel_size": [3, 2], "strides": [2, 3], "padding": "same",
                                  "output_padding": [0, 1]}, (3, 4, 2)),
    "transpose-k1-same": ({"type": "Conv2DTranspose", "filters": 2, "kernel_size": 1,
                           "strides": 2, "padding": "same"}, (3, 3, 2)),
    "transpose-valid-op": ({"type": "Conv2DTranspose", "filters": 2, "kernel_size": 2,
                            "strides": 3, "output_padding": 1}, (3, 3, 2)),
    "conv2d-groups": ({"type": "Conv2D", "filters": 4, "kernel_size": 3, "groups": 2,
                       "padding": "same"}, (5, 5, 6)),
    "conv1d-groups": ({"type": "Conv1D", "filters": 6, "kernel_size": 2, "groups": 3},
                      (6, 3)),
}


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_exports_to_onnx(case):
    layer, shape = ONNX_CASES[case]
    onnx_check(layer, shape)


def test_report():
    """The measured agreement (run with -s to see it)."""
    print("\nlargest relative error:")
    for label, err in sorted(WORST.items()):
        print(f"  {label:40s} {err:.1e}")
