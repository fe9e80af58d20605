"""Keras' ``Normalization.adapt``: set a Normalization layer's mean and variance from data.

The statistics are taken over every axis but the layer's kept ``axis`` (the batch
included). One array gives numpy's mean and biased variance over those axes; several
batches are combined one after another with Keras' own update (``preprocessing/
normalization.py``), so the numbers are Keras' for the same batches:

    total_count += n;  w = n / total_count
    new_mean = mean * (1 - w) + batch_mean * w
    variance = (variance + (mean - new_mean)^2) * (1 - w)
               + (batch_var + (batch_mean - new_mean)^2) * w

The ``graphspec adapt SPEC --data D`` command is a thin shell over :func:`adapt`.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError


def adapt(graph, layer_name: str, arrays) -> dict:
    """Compute and assign the mean and variance of Normalization layer ``layer_name``.

    ``arrays`` is the data the layer sees: one array (batch first), a list (or any
    iterable) of such batches, or a dict of arrays keyed by model input name, from
    which the input the layer is called on is taken (the layer must then be called on
    a model input). Returns ``{"mean": array, "variance": array, "count": int}`` (the
    values now in the layer's weights, in the graph's dtype). Raises InputError with
    one line for a missing or wrong layer, unbuilt weights, or data that does not fit.
    """
    layer = graph.layers.get(layer_name)
    if layer is None or layer.TYPE != "Normalization":
        kind = "no layer" if layer is None else f"a {layer.TYPE} layer"
        raise InputError(f"adapt: '{layer_name}' is {kind}, not a Normalization layer")
    if not layer.inbound_nodes or "mean" not in layer.weights:
        raise InputError(f"adapt: Normalization layer '{layer_name}' is never called in a "
                         "model, so its statistics have no shape")
    built = tuple(layer.inbound_nodes[0].input_shapes[0])
    kept = layer.kept_axes(len(built))
    if isinstance(arrays, dict):
        arrays = _model_input(layer, arrays)
    batches = [arrays] if isinstance(arrays, np.ndarray) else list(arrays)
    if not batches:
        raise InputError(f"adapt: no data for Normalization layer '{layer_name}'")
    mean, variance, count = None, None, 0
    for index, batch in enumerate(batches):
        batch = _checked(np.asarray(batch), built, kept, layer_name, index)
        reduce = tuple(i for i in range(batch.ndim) if i not in kept)
        batch_mean, batch_var = batch.mean(axis=reduce), batch.var(axis=reduce)
        n = math.prod(batch.shape[i] for i in reduce)
        if mean is None:
            mean, variance, count = batch_mean, batch_var, n
            continue
        count += n
        w = n / count
        new_mean = mean * (1 - w) + batch_mean * w
        variance = (variance + (mean - new_mean) ** 2) * (1 - w) \
            + (batch_var + (batch_mean - new_mean) ** 2) * w
        mean = new_mean
    for name, value in (("mean", mean), ("variance", variance)):
        var = layer.weights[name]
        var.data = np.asarray(value, dtype=var.data.dtype).reshape(var.data.shape)
    return {"mean": layer.weights["mean"].data, "variance": layer.weights["variance"].data,
            "count": count}


def _model_input(layer, arrays: dict):
    tensor = layer.inbound_nodes[0].input_tensors[0]
    if tensor.history is not None:
        raise InputError(f"adapt: Normalization layer '{layer.name}' is called on "
                         f"'{tensor.name}', which is computed inside the model, not a "
                         "model input: give the layer's input data itself")
    if tensor.name not in arrays:
        have = ", ".join(sorted(arrays)) or "none"
        raise InputError(f"adapt: the data has no array '{tensor.name}' (the input "
                         f"Normalization layer '{layer.name}' is called on); it has: {have}")
    return arrays[tensor.name]


def _checked(batch, built, kept, name, index) -> np.ndarray:
    where = f"adapt: batch {index} for Normalization layer '{name}'"
    if batch.ndim != len(built):
        raise InputError(f"{where} has shape {batch.shape}; the layer takes rank "
                         f"{len(built)} (batch first): {built}")
    for axis in kept:
        if batch.shape[axis] != built[axis]:
            raise InputError(f"{where} has {batch.shape[axis]} entries on axis {axis}; the "
                             f"layer was built with {built[axis]}")
    if batch.dtype.kind not in "biuf":
        raise InputError(f"{where} holds {batch.dtype} values, not numbers")
    batch = batch.astype(np.float64)
    if not np.isfinite(batch).all():
        raise InputError(f"{where} holds NaN or infinite values")
    return batch
