"""Layers: one file per layer type, each with shape inference, weights and forward."""
from .base import CallContext, Layer, WeightSpec
from .registry import LAYER_CLASSES, REGISTRY

__all__ = ["CallContext", "Layer", "WeightSpec", "LAYER_CLASSES", "REGISTRY"]
