"""Convolution, pooling and padding layers: finite differences (float64) w.r.t. inputs
and every weight, PyTorch equivalence of outputs and gradients (float64 and float32),
TensorFlow 'same' padding, shape inference and shape errors.

Run with ``-s`` to see the largest relative error against PyTorch per layer.
"""
import numpy as np
import pytest
from torch_report import worst_error_reporter
from gradcheck import check_gradients

from graphspec.autodiff import Variable, backward, recording
from graphspec.errors import ShapeError
from graphspec.layers.average_pooling2d import AveragePooling2D
from graphspec.layers.base import CallContext
from graphspec.layers.conv1d import Conv1D
from graphspec.layers.conv2d import Conv2D
from graphspec.layers.global_average_pooling2d import GlobalAveragePooling2D
from graphspec.layers.global_max_pooling2d import GlobalMaxPooling2D
from graphspec.layers.max_pooling1d import MaxPooling1D
from graphspec.layers.max_pooling2d import MaxPooling2D
from graphspec.layers.zero_padding2d import ZeroPadding2D
from graphspec.ops import conv as conv_ops
from graphspec.ops import pooling as pooling_ops

TOLERANCE = {np.float64: 1e-5, np.float32: 1e-4}
WORST = {}  # (layer type, dtype) -> largest relative error seen against PyTorch
report_worst = worst_error_reporter(WORST)


# -- helpers ---------------------------------------------------------------------------
def build(layer, feature_shape, dtype=np.float64, seed=0):
    """Shape-check, register and fill the layer's weights (biases non-zero)."""
    shape = (None,) + tuple(feature_shape)
    layer.compute_output_shapes([shape])
    layer.register_weights([shape])
    rng = np.random.default_rng(seed)
    layer.weights = {name: Variable(rng.uniform(-0.7, 0.7, spec.shape).astype(dtype),
                                    requires_grad=True, name=name)
                     for name, spec in layer.weight_shapes.items()}
    return layer


def weight_names(layer):
    return [n for n in ("kernel", "bias") if n in layer.weights]


def fd_check(layer, feature_shape, batch=2, seed=1):
    """Finite-difference check of the input and every weight, in float64."""
    build(layer, feature_shape)
    names = weight_names(layer)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch,) + tuple(feature_shape))

    def fn(xv, *weights):
        layer.weights = dict(zip(names, weights))
        return layer.forward([xv], CallContext())[0]
    check_gradients(fn, x, *[layer.weights[n].data for n in names])


def ours(layer, x, g):
    """Forward output and gradients (input, then weights by name) for seed gradient g."""
    with recording():
        xv = Variable(x.copy(), requires_grad=True)
        for w in layer.weights.values():
            w.grad = None
        out = layer.forward([xv], CallContext())[0]
        backward(out, seed=g)
    return out.data, xv.grad, {n: w.grad for n, w in layer.weights.items()}


def compare(layer, feature_shape, torch_fn, dtype, batch=3, seed=0, x=None):
    """Run the layer and ``torch_fn(x_tensor, weights_dict)`` (both in our channels-last
    layout; torch_fn permutes itself) and compare outputs and all gradients."""
    torch = pytest.importorskip("torch")
    build(layer, feature_shape, dtype, seed)
    rng = np.random.default_rng(seed + 100)
    if x is None:
        x = rng.standard_normal((batch,) + tuple(feature_shape)).astype(dtype)
    out_shape = layer.compute_output_shapes([(None,) + tuple(feature_shape)])[0]
    g = rng.standard_normal((x.shape[0],) + tuple(out_shape[1:])).astype(dtype)
    out, gx, gw = ours(layer, x, g)
    assert out.dtype == dtype and gx.dtype == dtype
    assert all(v.dtype == dtype for v in gw.values())

    xt = torch.tensor(x, requires_grad=True)
    wt = {n: torch.tensor(w.data, requires_grad=True) for n, w in layer.weights.items()}
    ot = torch_fn(xt, wt)
    assert tuple(ot.shape) == out.shape, (tuple(ot.shape), out.shape)
    ot.backward(torch.tensor(g))
    pairs = [("output", out, ot.detach().numpy()), ("input grad", gx, xt.grad.numpy())]
    pairs += [(f"{n} grad", gw[n], wt[n].grad.numpy()) for n in wt]
    worst = 0.0
    for what, a, b in pairs:
        err = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
        assert err <= TOLERANCE[dtype], f"{layer.TYPE} {what}: relative error {err:.2e}"
        worst = max(worst, err)
    key = (layer.TYPE, np.dtype(dtype).name)
    WORST[key] = max(WORST.get(key, 0.0), worst)
    return out


def tf_pads(n, k, s, d=1):
    """TensorFlow 'same' padding, written independently of the code under test."""
    out = -(-n // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
    return total // 2, total - total // 2


DTYPES = [np.float64, np.float32]


# -- Conv2D ----------------------------------------------------------------------------
CONV2D_CASES = [
    # (config, feature shape)
    ({"filters": 4, "kernel_size": 3}, (7, 6, 3)),
    ({"filters": 4, "kernel_size": 3, "strides": 2}, (7, 8, 3)),
    ({"filters": 3, "kernel_size": 3, "padding": "same"}, (6, 5, 2)),
    ({"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (8, 7, 2)),
    ({"filters": 3, "kernel_size": [4, 2], "strides": [2, 3], "padding": "same"}, (9, 10, 2)),
    ({"filters": 3, "kernel_size": 3, "dilation_rate": 2, "padding": "same"}, (9, 8, 2)),
    ({"filters": 3, "kernel_size": [3, 2], "dilation_rate": [2, 1]}, (9, 6, 2)),
    ({"filters": 5, "kernel_size": 1}, (4, 4, 3)),
    ({"filters": 4, "kernel_size": 3, "activation": "relu"}, (6, 6, 1)),
    ({"filters": 4, "kernel_size": 2, "activation": "tanh", "use_bias": False}, (5, 5, 3)),
]


def torch_conv2d(cfg):
    import torch
    import torch.nn.functional as F
    kh, kw = conv_ops.normalize_tuple(cfg["kernel_size"], 2)
    sh, sw = conv_ops.normalize_tuple(cfg.get("strides", 1), 2)
    dh, dw = conv_ops.normalize_tuple(cfg.get("dilation_rate", 1), 2)

    def fn(xt, wt):
        x = xt.permute(0, 3, 1, 2)
        if cfg.get("padding", "valid") == "same":
            top, bottom = tf_pads(x.shape[2], kh, sh, dh)
            left, right = tf_pads(x.shape[3], kw, sw, dw)
            x = F.pad(x, (left, right, top, bottom))
        y = F.conv2d(x, wt["kernel"].permute(3, 2, 0, 1), wt.get("bias"), stride=(sh, sw),
                     dilation=(dh, dw))
        act = cfg.get("activation", "linear")
        y = torch.relu(y) if act == "relu" else torch.tanh(y) if act == "tanh" else y
        return y.permute(0, 2, 3, 1)
    return fn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg,shape", CONV2D_CASES)
def test_conv2d_matches_torch(cfg, shape, dtype):
    compare(Conv2D("conv", cfg), shape, torch_conv2d(cfg), dtype)


@pytest.mark.parametrize("cfg,shape", [
    ({"filters": 2, "kernel_size": 3}, (5, 5, 2)),
    ({"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"}, (5, 6, 2)),
    ({"filters": 2, "kernel_size": [2, 3], "dilation_rate": 2, "padding": "same"}, (5, 5, 2)),
    ({"filters": 2, "kernel_size": 2, "activation": "relu"}, (4, 4, 1)),
    ({"filters": 2, "kernel_size": 2, "activation": "sigmoid", "use_bias": False}, (4, 3, 2)),
])
def test_conv2d_finite_differences(cfg, shape):
    fd_check(Conv2D("conv", cfg), shape)


def test_conv2d_same_padding_is_tensorflows():
    """Stride 2 'same' on an even size pads only after (TF), not symmetrically."""
    layer = build(Conv2D("c", {"filters": 1, "kernel_size": 3, "strides": 2,
                               "padding": "same", "use_bias": False}), (4, 4, 1))
    layer.weights["kernel"].data[:] = 0
    layer.weights["kernel"].data[0, 0, 0, 0] = 1      # picks the top-left tap
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    out = layer.forward([Variable(x)], CallContext())[0].data
    # pad_total = (2-1)*2 + 3 - 4 = 1 -> 0 before, 1 after: top-left taps hit x[0,0], x[0,2]...
    np.testing.assert_array_equal(out[0, :, :, 0], [[0, 2], [8, 10]])
    assert conv_ops.pad_amounts(4, 3, 2, "same") == (0, 1)
    assert conv_ops.pad_amounts(5, 3, 2, "same") == (1, 1)
    assert conv_ops.pad_amounts(6, 4, 1, "same") == (1, 2)
    assert conv_ops.pad_amounts(7, 3, 1, "same", 3) == (3, 3)


def test_conv2d_shapes_weights_and_dtype():
    layer = Conv2D("c", {"filters": 32, "kernel_size": 3})
    assert layer.compute_output_shapes([(None, 28, 28, 1)]) == [(None, 26, 26, 32)]
    specs = layer.weight_specs([(None, 28, 28, 1)])
    assert [(s.name, s.shape, s.initializer) for s in specs] == [
        ("kernel", (3, 3, 1, 32), "glorot_uniform"), ("bias", (32,), "zeros")]
    same = Conv2D("s", {"filters": 8, "kernel_size": [3, 5], "strides": 2, "padding": "same"})
    assert same.compute_output_shapes([(None, 27, 28, 3)]) == [(None, 14, 14, 8)]
    assert same.compute_output_shapes([(None, None, 9, 3)]) == [(None, None, 5, 8)]
    dil = Conv2D("d", {"filters": 2, "kernel_size": 3, "dilation_rate": 2})
    assert dil.compute_output_shapes([(None, 9, 5, 1)]) == [(None, 5, 1, 2)]
    strided = Conv2D("v", {"filters": 2, "kernel_size": 3, "strides": 2})
    assert strided.compute_output_shapes([(None, 8, 7, 1)]) == [(None, 3, 3, 2)]
    # float32 stays float32 end to end (forward, inference and training)
    layer = build(Conv2D("f", {"filters": 3, "kernel_size": 3, "activation": "relu"}),
                  (6, 6, 2), np.float32)
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 2)).astype(np.float32)
    inference = layer.forward([Variable(x)], CallContext())[0].data
    assert inference.dtype == np.float32
    out, gx, gw = ours(layer, x, np.ones((2, 4, 4, 3), np.float32))
    np.testing.assert_array_equal(out, inference)
    assert gx.dtype == gw["kernel"].dtype == gw["bias"].dtype == np.float32


@pytest.mark.parametrize("cfg,shape,needle", [
    ({"filters": 2, "kernel_size": 3}, (None, 5, 5), "rank 4"),
    ({"filters": 2, "kernel_size": 3}, (None, 2, 5, 1), "too small"),
    ({"filters": 2, "kernel_size": 3, "dilation_rate": 3}, (None, 6, 9, 1), "window spans 7"),
    ({"filters": 2, "kernel_size": 3}, (None, 5, 5, None), "known channel"),
    ({"filters": 2, "kernel_size": 3, "strides": 2, "dilation_rate": 2}, (None, 9, 9, 1),
     "dilation_rate"),
])
def test_conv2d_shape_errors(cfg, shape, needle):
    with pytest.raises(ShapeError, match=needle) as info:
        Conv2D("bad_conv", cfg).compute_output_shapes([shape])
    assert "bad_conv" in str(info.value) and "Conv2D" in str(info.value)


def test_conv_op_rejects_too_small_runtime_input():
    with pytest.raises(ShapeError, match="smaller than the window"):
        conv_ops.conv2d(np.zeros((1, 2, 5, 1)), np.zeros((3, 3, 1, 1)))


# -- Conv1D ----------------------------------------------------------------------------
CONV1D_CASES = [
    ({"filters": 4, "kernel_size": 3}, (9, 3)),
    ({"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}, (10, 3)),
    ({"filters": 3, "kernel_size": 4, "padding": "same"}, (7, 2)),
    ({"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2}, (8, 2)),
    ({"filters": 3, "kernel_size": [2], "strides": [3], "activation": "relu"}, (11, 2)),
]


def torch_conv1d(cfg):
    import torch
    import torch.nn.functional as F
    k = conv_ops.normalize_tuple(cfg["kernel_size"], 1)[0]
    s = conv_ops.normalize_tuple(cfg.get("strides", 1), 1)[0]
    d = conv_ops.normalize_tuple(cfg.get("dilation_rate", 1), 1)[0]

    def fn(xt, wt):
        x = xt.permute(0, 2, 1)
        padding = cfg.get("padding", "valid")
        if padding == "same":
            x = F.pad(x, tf_pads(x.shape[2], k, s, d))
        elif padding == "causal":
            x = F.pad(x, ((k - 1) * d, 0))
        y = F.conv1d(x, wt["kernel"].permute(2, 1, 0), wt.get("bias"), stride=s, dilation=d)
        if cfg.get("activation") == "relu":
            y = torch.relu(y)
        return y.permute(0, 2, 1)
    return fn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg,shape", CONV1D_CASES)
def test_conv1d_matches_torch(cfg, shape, dtype):
    compare(Conv1D("conv1", cfg), shape, torch_conv1d(cfg), dtype)


@pytest.mark.parametrize("cfg,shape", [
    ({"filters": 2, "kernel_size": 3}, (6, 2)),
    ({"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"}, (5, 2)),
    ({"filters": 2, "kernel_size": 2, "padding": "causal", "dilation_rate": 2}, (5, 2)),
])
def test_conv1d_finite_differences(cfg, shape):
    fd_check(Conv1D("conv1", cfg), shape)


def test_conv1d_shapes_and_causality():
    layer = Conv1D("c", {"filters": 4, "kernel_size": 3, "padding": "causal",
                         "dilation_rate": 2})
    assert layer.compute_output_shapes([(None, 10, 2)]) == [(None, 10, 4)]
    assert layer.compute_output_shapes([(None, None, 2)]) == [(None, None, 4)]
    assert Conv1D("v", {"filters": 1, "kernel_size": 3, "strides": 2}).compute_output_shapes(
        [(None, 10, 2)]) == [(None, 4, 1)]
    assert layer.weight_specs([(None, 10, 2)])[0].shape == (3, 2, 4)
    # output t never depends on inputs after t
    build(layer, (10, 2))
    x = np.random.default_rng(0).standard_normal((1, 10, 2))
    base = layer.forward([Variable(x)], CallContext())[0].data
    x[0, 6:] += 5.0
    moved = layer.forward([Variable(x)], CallContext())[0].data
    np.testing.assert_array_equal(base[0, :6], moved[0, :6])
    assert not np.allclose(base[0, 6:], moved[0, 6:])
    with pytest.raises(ShapeError, match="rank 3"):
        layer.compute_output_shapes([(None, 5, 5, 2)])
    with pytest.raises(ShapeError, match="too small"):
        Conv1D("t", {"filters": 1, "kernel_size": 5}).compute_output_shapes([(None, 4, 1)])


# -- pooling -----------------------------------------------------------------------------
def torch_max_pool2d(cfg):
    import torch.nn.functional as F
    k = conv_ops.normalize_tuple(cfg.get("pool_size", 2), 2)
    s = k if cfg.get("strides") is None else conv_ops.normalize_tuple(cfg["strides"], 2)

    def fn(xt, wt):
        x = xt.permute(0, 3, 1, 2)
        if cfg.get("padding", "valid") == "same":
            top, bottom = tf_pads(x.shape[2], k[0], s[0])
            left, right = tf_pads(x.shape[3], k[1], s[1])
            x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, k, s).permute(0, 2, 3, 1)
    return fn


MAXPOOL_CASES = [
    ({}, (6, 6, 3)),
    ({"pool_size": 2}, (7, 5, 2)),                          # leftover row / column
    ({"pool_size": 3, "strides": 2}, (7, 8, 2)),            # overlapping windows
    ({"pool_size": [2, 3], "strides": [1, 2]}, (5, 7, 2)),
    ({"pool_size": 2, "padding": "same"}, (5, 7, 2)),
    ({"pool_size": 3, "strides": 2, "padding": "same"}, (6, 7, 2)),
    ({"pool_size": 2, "strides": 3}, (8, 8, 2)),            # gaps between windows
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg,shape", MAXPOOL_CASES)
def test_max_pooling2d_matches_torch(cfg, shape, dtype):
    compare(MaxPooling2D("pool", cfg), shape, torch_max_pool2d(cfg), dtype)


@pytest.mark.parametrize("cfg", [{}, {"pool_size": 3, "strides": 1}])
def test_max_pooling2d_ties_go_to_first_maximum(cfg):
    """Windows of equal values (e.g. after a ReLU): the gradient goes to the first
    element in row-major order, exactly once, as in TensorFlow and PyTorch."""
    x = np.zeros((2, 6, 6, 2))
    x[1, :, :, 1] = np.arange(36).reshape(6, 6) % 3   # ties inside many windows
    out = compare(MaxPooling2D("pool", cfg), (6, 6, 2), torch_max_pool2d(cfg), np.float64,
                  x=x)
    layer = MaxPooling2D("pool", cfg)
    _, gx, _ = ours(layer, x, np.ones_like(out))
    assert gx.sum() == out.size
    if not cfg:
        assert gx[0, 0::2, 0::2].min() == 1 and gx[0, 1::2].max() == 0


@pytest.mark.parametrize("cfg,shape", [({}, (5, 5, 2)), ({"pool_size": 3, "strides": 2,
                                                           "padding": "same"}, (5, 5, 2))])
def test_max_pooling2d_finite_differences(cfg, shape):
    fd_check(MaxPooling2D("pool", cfg), shape)


def torch_avg_pool2d(cfg):
    import torch
    import torch.nn.functional as F
    k = conv_ops.normalize_tuple(cfg.get("pool_size", 2), 2)
    s = k if cfg.get("strides") is None else conv_ops.normalize_tuple(cfg["strides"], 2)

    def fn(xt, wt):
        x = xt.permute(0, 3, 1, 2)
        if cfg.get("padding", "valid") == "same":
            # TF: sum over the real elements divided by their number.
            top, bottom = tf_pads(x.shape[2], k[0], s[0])
            left, right = tf_pads(x.shape[3], k[1], s[1])
            pad = (left, right, top, bottom)
            total = F.avg_pool2d(F.pad(x, pad), k, s, divisor_override=1)
            count = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pad), k, s,
                                 divisor_override=1)
            y = total / count
        else:
            y = F.avg_pool2d(x, k, s)
        return y.permute(0, 2, 3, 1)
    return fn


AVGPOOL_CASES = [
    ({}, (6, 6, 3)),
    ({"pool_size": 2}, (7, 5, 2)),
    ({"pool_size": 3, "strides": 1}, (6, 5, 2)),
    ({"pool_size": [2, 3], "strides": [2, 1]}, (6, 7, 2)),
    ({"pool_size": 2, "padding": "same"}, (5, 7, 2)),
    ({"pool_size": 3, "strides": 2, "padding": "same"}, (6, 7, 2)),
    ({"pool_size": 3, "strides": 1, "padding": "same"}, (4, 5, 2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg,shape", AVGPOOL_CASES)
def test_average_pooling2d_matches_torch(cfg, shape, dtype):
    compare(AveragePooling2D("avg", cfg), shape, torch_avg_pool2d(cfg), dtype)


def test_average_pooling2d_same_counts_real_elements_only():
    layer = AveragePooling2D("avg", {"pool_size": 2, "padding": "same"})
    x = np.ones((1, 3, 3, 1))
    out = layer.forward([Variable(x)], CallContext())[0].data
    np.testing.assert_array_equal(out, np.ones((1, 2, 2, 1)))   # not 0.5 / 0.25 at borders
    x = np.arange(9, dtype=np.float64).reshape(1, 3, 3, 1)
    out = layer.forward([Variable(x)], CallContext())[0].data[0, :, :, 0]
    np.testing.assert_allclose(out, [[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8]])


@pytest.mark.parametrize("cfg,shape", [({}, (5, 5, 2)), ({"pool_size": 3, "strides": 2,
                                                           "padding": "same"}, (5, 6, 2)),
                                        ({"pool_size": 2, "strides": 1}, (4, 4, 2))])
def test_average_pooling2d_finite_differences(cfg, shape):
    fd_check(AveragePooling2D("avg", cfg), shape)


def torch_max_pool1d(cfg):
    import torch.nn.functional as F
    k = conv_ops.normalize_tuple(cfg.get("pool_size", 2), 1)[0]
    s = k if cfg.get("strides") is None else conv_ops.normalize_tuple(cfg["strides"], 1)[0]

    def fn(xt, wt):
        x = xt.permute(0, 2, 1)
        if cfg.get("padding", "valid") == "same":
            x = F.pad(x, tf_pads(x.shape[2], k, s), value=float("-inf"))
        return F.max_pool1d(x, k, s).permute(0, 2, 1)
    return fn


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg,shape", [({}, (9, 3)), ({"pool_size": 3, "strides": 2}, (10, 2)),
                                       ({"pool_size": 2, "padding": "same"}, (7, 2))])
def test_max_pooling1d_matches_torch(cfg, shape, dtype):
    compare(MaxPooling1D("pool1", cfg), shape, torch_max_pool1d(cfg), dtype)


def test_max_pooling1d_finite_differences_and_shapes():
    fd_check(MaxPooling1D("pool1", {"pool_size": 3, "strides": 2, "padding": "same"}), (6, 2))
    layer = MaxPooling1D("p", {})
    assert layer.compute_output_shapes([(None, 9, 3)]) == [(None, 4, 3)]
    assert layer.compute_output_shapes([(None, None, 3)]) == [(None, None, 3)]


def test_pooling_shapes_and_errors():
    assert MaxPooling2D("p", {}).compute_output_shapes([(None, 26, 26, 32)]) == \
        [(None, 13, 13, 32)]
    assert MaxPooling2D("p", {"strides": None}).compute_output_shapes([(None, 11, 11, 64)]) \
        == [(None, 5, 5, 64)]
    assert MaxPooling2D("p", {"pool_size": 3, "strides": 2, "padding": "same"}) \
        .compute_output_shapes([(None, 7, None, 4)]) == [(None, 4, None, 4)]
    assert AveragePooling2D("a", {"pool_size": [2, 3], "strides": 1}).compute_output_shapes(
        [(None, 5, 5, None)]) == [(None, 4, 3, None)]
    with pytest.raises(ShapeError, match="'small'.*too small"):
        MaxPooling2D("small", {"pool_size": 3}).compute_output_shapes([(None, 2, 5, 1)])
    with pytest.raises(ShapeError, match="rank 4"):
        AveragePooling2D("a", {}).compute_output_shapes([(None, 5, 2)])
    with pytest.raises(ShapeError, match="1 input"):
        MaxPooling2D("p", {}).compute_output_shapes([(None, 4, 4, 1), (None, 4, 4, 1)])


# -- global pooling ----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling_matches_torch(dtype, keepdims):
    compare(GlobalAveragePooling2D("gap", {"keepdims": keepdims}), (4, 5, 3),
            lambda xt, wt: xt.mean(dim=(1, 2), keepdim=keepdims), dtype)
    compare(GlobalMaxPooling2D("gmp", {"keepdims": keepdims}), (4, 5, 3),
            lambda xt, wt: xt.amax(dim=(1, 2), keepdim=keepdims), dtype)


def test_global_max_pooling_ties_match_torch():
    x = np.zeros((2, 3, 3, 2))
    x[0, 0, 0, 0] = x[0, 2, 1, 0] = 1.0          # a two-way tie; the rest all tie at 0
    compare(GlobalMaxPooling2D("gmp", {}), (3, 3, 2),
            lambda xt, wt: xt.amax(dim=(1, 2)), np.float64, x=x)


def test_global_pooling_finite_differences_and_shapes():
    fd_check(GlobalAveragePooling2D("gap", {}), (5, 5, 2))
    fd_check(GlobalMaxPooling2D("gmp", {"keepdims": True}), (5, 5, 2))
    assert GlobalAveragePooling2D("g", {}).compute_output_shapes([(None, None, None, 8)]) == \
        [(None, 8)]
    assert GlobalMaxPooling2D("g", {"keepdims": True}).compute_output_shapes(
        [(None, 3, 3, 8)]) == [(None, 1, 1, 8)]
    with pytest.raises(ShapeError, match="'g'.*rank 4"):
        GlobalMaxPooling2D("g", {}).compute_output_shapes([(None, 3, 8)])


# -- ZeroPadding2D ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding,torch_pad", [
    (1, (1, 1, 1, 1)), ([2, 0], (0, 0, 2, 2)), ([[1, 2], [0, 3]], (0, 3, 1, 2))])
def test_zero_padding2d_matches_torch(padding, torch_pad, dtype):
    import_torch = pytest.importorskip("torch.nn.functional")
    compare(ZeroPadding2D("zp", {"padding": padding}), (3, 4, 2),
            lambda xt, wt: import_torch.pad(xt.permute(0, 3, 1, 2), torch_pad)
            .permute(0, 2, 3, 1), dtype)


def test_zero_padding2d_finite_differences_and_shapes():
    fd_check(ZeroPadding2D("zp", {"padding": [[1, 0], [2, 1]]}), (3, 3, 2))
    layer = ZeroPadding2D("zp", {})
    assert layer.compute_output_shapes([(None, 5, None, 3)]) == [(None, 7, None, 3)]
    assert ZeroPadding2D("z", {"padding": [[1, 2], [3, 4]]}).compute_output_shapes(
        [(None, 5, 5, 1)]) == [(None, 8, 12, 1)]
    with pytest.raises(ShapeError, match="rank 4"):
        layer.compute_output_shapes([(None, 5, 5)])


# -- the spec schema accepts the Keras forms and refuses the rest ------------------------
def test_args_schemas():
    jsonschema = pytest.importorskip("jsonschema")
    from graphspec.spec.schema import _layer_schema

    def valid(cls, config):
        try:
            jsonschema.validate(dict(config, type=cls.TYPE), _layer_schema(cls))
            return True
        except jsonschema.ValidationError:
            return False

    assert valid(Conv2D, {"filters": 32, "kernel_size": 3})
    assert valid(Conv2D, {"filters": 32, "kernel_size": [3, 5], "strides": [1, 2],
                          "padding": "same", "dilation_rate": 1, "activation": "relu",
                          "kernel_regularizer": {"l2": 0.01}})
    assert not valid(Conv2D, {"kernel_size": 3})
    assert not valid(Conv2D, {"filters": 0, "kernel_size": 3})
    assert not valid(Conv2D, {"filters": 4, "kernel_size": [3, 3, 3]})
    assert not valid(Conv2D, {"filters": 4, "kernel_size": 3, "padding": "causal"})
    assert valid(Conv1D, {"filters": 4, "kernel_size": [3], "padding": "causal"})
    assert not valid(Conv1D, {"filters": 4, "kernel_size": [3, 3]})
    assert valid(MaxPooling2D, {}) and valid(MaxPooling2D, {"strides": None})
    assert valid(AveragePooling2D, {"pool_size": [2, 3], "strides": 1, "padding": "same"})
    assert not valid(MaxPooling2D, {"pool_size": 0})
    assert valid(ZeroPadding2D, {"padding": [[1, 2], [0, 0]]})
    assert valid(ZeroPadding2D, {"padding": 0}) and valid(ZeroPadding2D, {"padding": [1, 2]})
    assert not valid(ZeroPadding2D, {"padding": -1})
    assert not valid(ZeroPadding2D, {"padding": [[1, 2, 3], [0, 0]]})
    assert valid(GlobalMaxPooling2D, {"keepdims": True})
    defaults = Conv2D("c", {"filters": 1, "kernel_size": 1}).config
    assert defaults["strides"] == 1 and defaults["padding"] == "valid"
    assert defaults["dilation_rate"] == 1 and defaults["activation"] == "linear"
    assert defaults["use_bias"] is True and defaults["bias_initializer"] == "zeros"
    assert MaxPooling2D("p", {}).config == {"pool_size": 2, "strides": None,
                                             "padding": "valid"}
    assert ZeroPadding2D("z", {}).config == {"padding": 1}


def test_inference_needs_no_tape():
    """Outside recording, max pooling keeps no index and convolution keeps no closure."""
    x = Variable(np.random.default_rng(0).standard_normal((2, 4, 4, 3)), requires_grad=True)
    out = pooling_ops.max_pool2d(x)
    assert out.backward is None and not out.requires_grad
    out = conv_ops.conv2d(x, np.ones((2, 2, 3, 2)))
    assert out.backward is None


@pytest.mark.parametrize("cfg", [{"filters": 3, "kernel_size": 2},
                                 {"filters": 3, "kernel_size": 1, "activation": "relu"},
                                 {"filters": 3, "kernel_size": 2, "strides": 2,
                                  "padding": "same"}])
def test_conv2d_partial_gradients(cfg):
    """Frozen kernel, frozen bias or a constant input: the remaining gradients are the
    same as when everything is trained (the bias gradient takes another path)."""
    layer = build(Conv2D("c", cfg), (5, 5, 2))
    x = np.random.default_rng(3).standard_normal((2, 5, 5, 2))
    _, gx, gw = ours(layer, x, None)
    for frozen in ("kernel", "bias", "input"):
        with recording():
            xv = Variable(x.copy(), requires_grad=frozen != "input")
            for name, w in layer.weights.items():
                w.grad, w.requires_grad = None, name != frozen
            y = layer.forward([xv], CallContext())[0]
            backward(y)
        if frozen != "input":
            np.testing.assert_allclose(xv.grad, gx, rtol=1e-12, atol=1e-12)
        for name, w in layer.weights.items():
            if name == frozen:
                assert w.grad is None
            else:
                np.testing.assert_allclose(w.grad, gw[name], rtol=1e-12, atol=1e-12)
        for w in layer.weights.values():
            w.requires_grad = True
