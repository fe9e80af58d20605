"""UpSampling1D/2D (nearest, bilinear), Cropping1D/2D, ZeroPadding1D, AveragePooling1D,
GlobalAverage/MaxPooling1D and ``keepdims`` on every global pool: finite differences
(float64), PyTorch (float64, ≤1e-5 relative), Keras 3 on the torch backend (float64
forward and gradients, ≤1e-9; ≤1e-6 for the averages, see below), onnxruntime against predict, unknown sizes, located
errors."""
import json

import numpy as np
import pytest
from gradcheck import check_gradients
from zoo_util import WORST, compare_all, keras_check, make_layer, onnx_check, run_ours

import graphspec
from graphspec.errors import GraphspecError
from graphspec.layers.base import CallContext

torch = pytest.importorskip("torch")
F = torch.nn.functional


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def tf_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def torch_avg_pool1d_same(x, k, s):
    """TensorFlow 'same' average pooling: real elements only."""
    left, right = tf_pads(x.shape[1], k, s)
    xc = F.pad(x.permute(0, 2, 1), (left, right))
    ones = F.pad(torch.ones_like(x[:1, :, :1]).permute(0, 2, 1), (left, right))
    return (F.avg_pool1d(xc, k, s) / F.avg_pool1d(ones, k, s)).permute(0, 2, 1)


CASES = [
    # (type, config, feature shape, torch function of the NHWC / NTC tensor)
    ("UpSampling1D", {"size": 3}, (4, 2), lambda x: x.repeat_interleave(3, dim=1)),
    ("UpSampling2D", {"size": [2, 3]}, (3, 4, 2),
     lambda x: nhwc(F.interpolate(nchw(x), scale_factor=(2, 3), mode="nearest"))),
    ("UpSampling2D", {"size": 2, "interpolation": "bilinear"}, (3, 4, 2),
     lambda x: nhwc(F.interpolate(nchw(x), size=(6, 8), mode="bilinear",
                                  align_corners=False))),
    ("UpSampling2D", {"size": [3, 2], "interpolation": "bilinear"}, (4, 1, 2),
     lambda x: nhwc(F.interpolate(nchw(x), size=(12, 2), mode="bilinear",
                                  align_corners=False))),
    ("Cropping1D", {}, (5, 2), lambda x: x[:, 1:-1]),
    ("Cropping1D", {"cropping": [0, 2]}, (5, 2), lambda x: x[:, :-2]),
    ("Cropping2D", {"cropping": 1}, (4, 5, 2), lambda x: x[:, 1:-1, 1:-1]),
    ("Cropping2D", {"cropping": [[1, 0], [2, 1]]}, (4, 5, 2), lambda x: x[:, 1:, 2:-1]),
    ("ZeroPadding1D", {}, (3, 2), lambda x: F.pad(x, (0, 0, 1, 1))),
    ("ZeroPadding1D", {"padding": [0, 3]}, (3, 2), lambda x: F.pad(x, (0, 0, 0, 3))),
    ("AveragePooling1D", {"pool_size": 3}, (7, 2),
     lambda x: F.avg_pool1d(x.permute(0, 2, 1), 3).permute(0, 2, 1)),
    ("AveragePooling1D", {"pool_size": 3, "strides": 2, "padding": "same"}, (8, 2),
     lambda x: torch_avg_pool1d_same(x, 3, 2)),
    ("GlobalAveragePooling1D", {}, (5, 3), lambda x: x.mean(1)),
    ("GlobalAveragePooling1D", {"keepdims": True}, (5, 3), lambda x: x.mean(1, keepdim=True)),
    ("GlobalMaxPooling1D", {}, (5, 3), lambda x: x.amax(1)),
    ("GlobalMaxPooling1D", {"keepdims": True}, (5, 3), lambda x: x.amax(1, keepdim=True)),
    ("GlobalAveragePooling2D", {"keepdims": True}, (3, 4, 2),
     lambda x: x.mean((1, 2), keepdim=True)),
    ("GlobalMaxPooling2D", {"keepdims": True}, (3, 4, 2),
     lambda x: x.amax((1, 2), keepdim=True)),
]
IDS = [f"{kind}-{i}" for i, (kind, *_) in enumerate(CASES)]


@pytest.mark.parametrize("kind,cfg,shape,torch_fn", CASES, ids=IDS)
def test_finite_differences(kind, cfg, shape, torch_fn):
    layer, _ = make_layer(kind, cfg, shape)
    x = np.random.default_rng(1).standard_normal((2,) + tuple(shape))
    check_gradients(lambda xv: layer.forward([xv], CallContext())[0], x)


@pytest.mark.parametrize("kind,cfg,shape,torch_fn", CASES, ids=IDS)
def test_matches_pytorch(kind, cfg, shape, torch_fn):
    layer, _ = make_layer(kind, cfg, shape)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3,) + tuple(shape))
    xt = torch.tensor(x, requires_grad=True)
    out = torch_fn(xt)
    probe = rng.standard_normal(tuple(out.shape))
    (out * torch.tensor(probe)).sum().backward()
    compare_all(f"{kind} vs PyTorch", run_ours(layer, x, probe),
                (out.detach().numpy(), xt.grad.numpy(), {}), 1e-5)


@pytest.mark.parametrize("kind,cfg,shape,torch_fn", CASES, ids=IDS)
def test_matches_keras(keras, kind, cfg, shape, torch_fn):
    if kind == "AveragePooling1D" and cfg.get("padding") == "same":
        # Keras' torch backend pads asymmetric 'same' pooling with *replicated* edge
        # values (its nn._apply_same_padding), which its TensorFlow and JAX backends do
        # not; graphspec follows TensorFlow (real elements only). A symmetric case
        # (torch's own padding, count_include_pad=False) is compared below.
        cfg, shape = {"pool_size": 3, "strides": 1, "padding": "same"}, (8, 2)
    # Keras' torch-backend ops.mean computes in float32 even on float64 tensors
    # (result_type(float64, "float32") is float32 there), so mean-based layers agree to
    # float32 precision only.
    tol = 1e-6 if "Average" in kind else 1e-9
    keras_check(keras, kind, cfg, getattr(keras.layers, kind), shape, tol=tol)


def test_bilinear_reference_numbers():
    """Half-pixel centres, edges clamped: [0, 1] doubled is [0, .25, .75, 1]."""
    layer, _ = make_layer("UpSampling2D", {"size": [1, 2], "interpolation": "bilinear"},
                          (1, 2, 1))
    out = layer.forward([np.array([0.0, 1.0]).reshape(1, 1, 2, 1)], CallContext())[0]
    np.testing.assert_allclose(out.data.ravel(), [0, 0.25, 0.75, 1])


@pytest.mark.parametrize("kind,cfg,shape,expected", [
    ("UpSampling2D", {"size": [2, 3]}, (None, 4, 2), (None, None, 12, 2)),
    ("UpSampling1D", {}, (None, 2), (None, None, 2)),
    ("Cropping1D", {"cropping": 2}, (None, 3), (None, None, 3)),
    ("Cropping2D", {"cropping": [1, 2]}, (5, None, 3), (None, 3, None, 3)),
    ("ZeroPadding1D", {"padding": [1, 2]}, (None, 3), (None, None, 3)),
    ("AveragePooling1D", {"pool_size": 2}, (None, 3), (None, None, 3)),
    ("GlobalMaxPooling1D", {"keepdims": True}, (None, 3), (None, 1, 3)),
    ("GlobalAveragePooling1D", {}, (None, 3), (None, 3)),
])
def test_shapes_with_unknown_sizes(kind, cfg, shape, expected):
    assert make_layer(kind, cfg, shape)[1] == expected


@pytest.mark.parametrize("layer, shape, message", [
    ({"type": "Cropping1D", "cropping": [2, 2]}, [4, 3],
     "Cropping1D layer 'bad': cropping [2, 2] leaves no steps of input shape (None, 4, 3)"),
    ({"type": "Cropping2D", "cropping": [[1, 1], [3, 0]]}, [4, 3, 2],
     "Cropping2D layer 'bad': cropping [[1, 1], [3, 0]] leaves nothing"),
    ({"type": "Cropping2D", "cropping": -1}, [4, 3, 2], "cropping"),
    ({"type": "UpSampling2D", "interpolation": "bicubic"}, [4, 3, 2], "bicubic"),
    ({"type": "UpSampling2D"}, [4, 3], "UpSampling2D layer 'bad' expects input of rank 4"),
    ({"type": "ZeroPadding1D", "padding": [1, 2, 3]}, [4, 3], "padding"),
    ({"type": "GlobalAveragePooling1D"}, [4, 3, 2],
     "GlobalAveragePooling1D layer 'bad' expects input of rank 3 (batch, steps, channels)"),
])
def test_bad_arguments_are_located(layer, shape, message):
    spec = json.dumps({"graphspec": 1, "models": {"m": {
        "inputs": {"x": {"shape": shape}},
        "calls": [{"layer": dict(layer, name="bad"), "in": "x", "out": "y"}],
        "outputs": ["y"]}}})
    with pytest.raises(GraphspecError) as info:
        graphspec.loads(spec, seed=0)
    assert message in str(info.value), str(info.value)
    assert str(info.value).startswith("<string>:") and str(info.value).count("\n") == 0


@pytest.mark.parametrize("kind,cfg,shape,torch_fn", CASES, ids=IDS)
def test_exports_to_onnx(kind, cfg, shape, torch_fn):
    onnx_check(dict(cfg, type=kind), shape)


def test_unknown_sizes_export_to_onnx():
    onnx_check({"type": "UpSampling2D", "size": 2, "interpolation": "bilinear"}, (None, None, 2))
    onnx_check({"type": "Cropping1D", "cropping": [1, 0]}, (None, 2))


def test_report():
    print("\nlargest relative error:")
    for label, err in sorted(WORST.items()):
        print(f"  {label:40s} {err:.1e}")
