"""The one list of layer types. The spec schema, validation and the compiler all read
it, so adding a layer means: write its file, add it here, add its test.

A layer's module is imported when its type is first looked up, not with this module:
validating or building a spec imports the layers that spec uses, not all of them
(issue 11: a cold ``graphspec validate`` paid ~0.1 s for the other ~60). The type names
alone (``sorted(REGISTRY)``, ``name in REGISTRY``) import nothing.
"""
from __future__ import annotations

import importlib
from collections.abc import MutableMapping

# layer type -> its module under graphspec.layers (the class is named as the type)
LAYER_MODULES = {
    "Activation": "activation",
    "Add": "add",
    "AdditiveAttention": "additive_attention",
    "Attention": "attention",
    "Average": "average",
    "AveragePooling1D": "average_pooling1d",
    "AveragePooling2D": "average_pooling2d",
    "BatchNormalization": "batch_normalization",
    "Bidirectional": "bidirectional",
    "Concatenate": "concatenate",
    "Conv1D": "conv1d",
    "Conv2D": "conv2d",
    "Conv2DTranspose": "conv2d_transpose",
    "Cropping1D": "cropping1d",
    "Cropping2D": "cropping2d",
    "Dense": "dense",
    "DepthwiseConv2D": "depthwise_conv2d",
    "Dot": "dot",
    "Dropout": "dropout",
    "ELU": "elu",
    "Embedding": "embedding",
    "Flatten": "flatten",
    "GRU": "gru",
    "GaussianDropout": "gaussian_dropout",
    "GaussianNoise": "gaussian_noise",
    "GlobalAveragePooling1D": "global_average_pooling1d",
    "GlobalAveragePooling2D": "global_average_pooling2d",
    "GlobalMaxPooling1D": "global_max_pooling1d",
    "GlobalMaxPooling2D": "global_max_pooling2d",
    "GroupNormalization": "group_normalization",
    "LSTM": "lstm",
    "Lambda": "lambda_layer",
    "LayerNormalization": "layer_normalization",
    "LeakyReLU": "leaky_relu",
    "Masking": "masking",
    "MaxPooling1D": "max_pooling1d",
    "MaxPooling2D": "max_pooling2d",
    "Maximum": "maximum",
    "Merge": "merge",
    "Minimum": "minimum",
    "MultiHeadAttention": "multi_head_attention",
    "Multiply": "multiply",
    "Normalization": "normalization",
    "PReLU": "prelu",
    "Permute": "permute",
    "ReLU": "relu",
    "RepeatVector": "repeat_vector",
    "Rescaling": "rescaling",
    "Reshape": "reshape",
    "SeparableConv2D": "separable_conv2d",
    "SimpleRNN": "simple_rnn",
    "Softmax": "softmax",
    "SpatialDropout1D": "spatial_dropout1d",
    "SpatialDropout2D": "spatial_dropout2d",
    "Subtract": "subtract",
    "TimeDistributed": "time_distributed",
    "UnitNormalization": "unit_normalization",
    "UpSampling1D": "up_sampling1d",
    "UpSampling2D": "up_sampling2d",
    "ZeroPadding1D": "zero_padding1d",
    "ZeroPadding2D": "zero_padding2d",
}


class _Registry(MutableMapping):
    """Layer type -> class, importing the class's module on first lookup. Writable so
    tests can swap a class in (``monkeypatch.setitem``)."""

    def __init__(self, modules: dict):
        self._modules = modules
        self._classes: dict = {}

    def __getitem__(self, name):
        try:
            return self._classes[name]
        except KeyError:
            module = self._modules[name]            # KeyError: not a layer type
        cls = getattr(importlib.import_module(f"{__package__}.{module}"), name)
        self._classes[name] = cls
        return cls

    def __contains__(self, name):
        return name in self._modules or name in self._classes

    def __setitem__(self, name, cls):
        self._classes[name] = cls

    def __delitem__(self, name):
        if name in self._modules:
            raise KeyError(f"{name} is a built-in layer type: replace it, do not delete it")
        del self._classes[name]

    def __iter__(self):
        yield from self._modules
        yield from (name for name in list(self._classes) if name not in self._modules)

    def __len__(self):
        return len(self._modules) + sum(name not in self._modules for name in self._classes)

    def __repr__(self):
        return f"<layer registry: {len(self)} types>"


REGISTRY = _Registry(LAYER_MODULES)


def __getattr__(name):
    if name == "LAYER_CLASSES":    # every layer class: imports every layer module
        return tuple(REGISTRY.values())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
