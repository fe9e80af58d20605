"""Converters to and from other formats (ONNX, Keras), each a table keyed by layer TYPE."""
