"""Layers: one file per layer type, each with shape inference, weights and forward."""
from .base import CallContext, Layer, WeightSpec
from .registry import REGISTRY

__all__ = ["CallContext", "Layer", "WeightSpec", "LAYER_CLASSES", "REGISTRY"]


def __getattr__(name):
    if name == "LAYER_CLASSES":    # every layer class: imports every layer module
        return tuple(REGISTRY.values())
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
