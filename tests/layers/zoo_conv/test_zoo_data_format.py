"""``data_format: channels_first`` on the convolution, pooling, padding, cropping,
upsampling and Flatten layers: the same numbers as the channels-last layer on the
transposed input (same weights, same kernel layout, as Keras), Keras' channels-first
layers on the torch backend, finite differences, shapes, ONNX."""
import numpy as np
import pytest
from gradcheck import check_gradients
from zoo_util import keras_check, make_layer, onnx_check

from graphspec.layers.base import CallContext

CASES = [
    ("Conv2D", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 7, 6)),
    ("Conv2D", {"filters": 4, "kernel_size": 2, "groups": 2}, (4, 5, 5)),
    ("Conv1D", {"filters": 3, "kernel_size": 3}, (2, 7)),
    ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2}, (2, 5, 5)),
    ("SeparableConv2D", {"filters": 3, "kernel_size": 3, "padding": "same"}, (2, 5, 4)),
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2}, (3, 3, 4)),
    ("MaxPooling2D", {"pool_size": 2}, (2, 6, 5)),
    ("AveragePooling2D", {"pool_size": 3, "strides": 1, "padding": "same"}, (2, 5, 5)),
    ("MaxPooling1D", {"pool_size": 2}, (3, 6)),
    ("AveragePooling1D", {"pool_size": 2}, (3, 6)),
    ("GlobalAveragePooling2D", {"keepdims": True}, (3, 4, 5)),
    ("GlobalMaxPooling2D", {}, (3, 4, 5)),
    ("GlobalAveragePooling1D", {}, (3, 6)),
    ("GlobalMaxPooling1D", {"keepdims": True}, (3, 6)),
    ("Flatten", {}, (3, 2, 4)),
    ("ZeroPadding2D", {"padding": [[1, 0], [2, 1]]}, (2, 3, 4)),
    ("ZeroPadding1D", {"padding": [1, 2]}, (2, 3)),
    ("Cropping2D", {"cropping": [[1, 0], [0, 2]]}, (2, 4, 5)),
    ("UpSampling2D", {"size": [2, 1], "interpolation": "bilinear"}, (2, 3, 4)),
]
IDS = [f"{kind}-{i}" for i, (kind, *_) in enumerate(CASES)]


def to_last(shape):
    return tuple(shape[1:]) + (shape[0],)


@pytest.mark.parametrize("kind,cfg,shape", CASES, ids=IDS)
def test_channels_first_is_the_transposed_channels_last_layer(kind, cfg, shape):
    first, out_first = make_layer(kind, dict(cfg, data_format="channels_first"), shape)
    last, out_last = make_layer(kind, cfg, to_last(shape))
    assert {n: s.shape for n, s in first.weight_shapes.items()} == \
        {n: s.shape for n, s in last.weight_shapes.items()}
    rank = len(shape) + 1
    forward = (0, *range(2, rank), 1)
    x = np.random.default_rng(0).standard_normal((2,) + tuple(shape))
    y_first = first.forward([x], CallContext())[0].data
    y_last = last.forward([x.transpose(forward)], CallContext())[0].data
    if len(out_last) > 2:
        assert out_first == (out_last[0], out_last[-1]) + tuple(out_last[1:-1])
        y_last = y_last.transpose((0, y_last.ndim - 1, *range(1, y_last.ndim - 1)))
    else:
        assert out_first == out_last
    assert y_first.shape[1:] == out_first[1:]
    np.testing.assert_array_equal(y_first, y_last)


@pytest.mark.parametrize("kind,cfg,shape", [CASES[i] for i in (0, 3, 5, 14)],
                         ids=[IDS[i] for i in (0, 3, 5, 14)])
def test_channels_first_finite_differences(kind, cfg, shape):
    layer, _ = make_layer(kind, dict(cfg, data_format="channels_first"), shape)
    names = list(layer.weights)
    x = np.random.default_rng(1).standard_normal((2,) + tuple(shape))

    def fn(xv, *weights):
        layer.weights = dict(zip(names, weights))
        return layer.forward([xv], CallContext())[0]
    check_gradients(fn, x, *[layer.weights[n].data for n in names])


# Keras' torch backend implements channels_first natively (no transposes), so it is an
# independent reference. Its mean runs in float32 (see test_zoo_reshaping_pooling).
KERAS = [c for c in CASES if c[0] not in ("AveragePooling2D",)]


@pytest.mark.parametrize("kind,cfg,shape", KERAS, ids=[f"{c[0]}-{i}" for i, c in
                                                        enumerate(KERAS)])
def test_channels_first_matches_keras(keras, kind, cfg, shape):
    cfg = dict(cfg, data_format="channels_first")
    tol = 1e-6 if "Average" in kind else 1e-9
    keras_check(keras, kind, cfg, getattr(keras.layers, kind), shape, tol=tol)


@pytest.mark.parametrize("kind,cfg,shape", CASES, ids=IDS)
def test_channels_first_exports_to_onnx(kind, cfg, shape):
    onnx_check(dict(cfg, type=kind, data_format="channels_first"), shape)


def test_unknown_sizes_channels_first():
    _, shape = make_layer("Conv2D", {"filters": 5, "kernel_size": 3, "padding": "same",
                                     "data_format": "channels_first"}, (3, None, 8))
    assert shape == (None, 5, None, 8)
    layer, shape = make_layer("Conv2DTranspose", {"filters": 4, "kernel_size": 3,
                                                  "strides": 2,
                                                  "data_format": "channels_first"},
                              (2, 5, None))
    assert shape == (None, 4, 11, None) and layer.weight_shapes["kernel"].shape == (3, 3, 4, 2)
