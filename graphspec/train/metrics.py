"""Built-in metrics (Keras names and semantics) over numpy arrays.

A metric function maps ``(y_true, y_pred)`` arrays to one value per sample, shape
``(batch,)``: like Keras' ``MeanMetricWrapper`` the value is averaged over the last axis
(accuracies of class vectors compare whole vectors), and any axes left between the
batch and the last one are averaged too. Over an epoch Keras reports the weighted mean
``sum(v * w) / sum(w)`` of all per-sample values seen (:class:`MeanMetric`); note that a
weighted *loss* divides by the batch size instead (``losses.reduce_loss``).

``accuracy`` (or ``acc``) is resolved per output, as Keras does, by
:func:`resolve_accuracy`: binary accuracy if the output has one unit or the loss is
binary crossentropy (tf.keras' rule; Keras 3 looks at the shapes only); otherwise
sparse categorical accuracy if the loss is sparse categorical crossentropy or the
targets have one axis fewer than the output (or a last axis of 1 against several
classes); otherwise categorical accuracy.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, SpecError
from .losses import mask_weights


def _data(x):
    return np.asarray(getattr(x, "data", x))


def _per_sample(values: np.ndarray, mask=None) -> np.ndarray:
    """Mean over every axis but the batch axis; with the prediction's ``mask``, weighted
    so that the batch mean counts the unmasked positions only (Keras uses the mask as
    the metric's sample weight)."""
    values = np.asarray(values)
    if mask is not None:
        values = values * mask_weights(mask, values.shape, values.dtype)
    if values.ndim <= 1:
        return values
    return values.mean(axis=tuple(range(1, values.ndim)))


def _same_rank(y_true, y_pred):
    """Keras' ``squeeze_or_expand_to_same_rank`` for a trailing axis of size 1."""
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    elif y_true.ndim + 1 == y_pred.ndim and y_pred.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape + (1,))
    if y_true.shape != y_pred.shape:
        raise InputError(f"targets of shape {y_true.shape} do not match predictions of "
                         f"shape {y_pred.shape}")
    return y_true, y_pred


def binary_accuracy(y_true, y_pred, threshold: float = 0.5, mask=None) -> np.ndarray:
    """``mean(y_true == (y_pred > threshold), axis=-1)`` per sample."""
    y_pred = _data(y_pred)
    y_true, y_pred = _same_rank(_data(y_true), y_pred)
    dtype = y_pred.dtype if y_pred.dtype.kind == "f" else np.float32
    matches = (y_true == (y_pred > threshold)).astype(dtype)
    return _per_sample(matches.mean(axis=-1) if matches.ndim > 1 else matches, mask)


def categorical_accuracy(y_true, y_pred, mask=None) -> np.ndarray:
    """``argmax(y_true, -1) == argmax(y_pred, -1)`` per sample (ties: first index)."""
    y_true, y_pred = _data(y_true), _data(y_pred)
    if y_true.shape != y_pred.shape:
        raise InputError(f"one-hot targets of shape {y_true.shape} do not match "
                         f"predictions of shape {y_pred.shape}")
    dtype = y_pred.dtype if y_pred.dtype.kind == "f" else np.float32
    matches = (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(dtype)
    return _per_sample(matches, mask)


def sparse_categorical_accuracy(y_true, y_pred, mask=None) -> np.ndarray:
    """``y_true == argmax(y_pred, -1)`` per sample, for class ids of shape (batch,) or
    (batch, 1)."""
    y_true, y_pred = _data(y_true), _data(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    if y_true.shape != y_pred.shape[:-1]:
        raise InputError(f"sparse targets of shape {y_true.shape} do not match "
                         f"predictions of shape {y_pred.shape}")
    dtype = y_pred.dtype if y_pred.dtype.kind == "f" else np.float32
    matches = (y_true == np.argmax(y_pred, axis=-1)).astype(dtype)
    return _per_sample(matches, mask)


def mean_absolute_error(y_true, y_pred, mask=None) -> np.ndarray:
    y_pred = _data(y_pred)
    y_true, y_pred = _same_rank(_data(y_true).astype(y_pred.dtype, copy=False), y_pred)
    diff = np.abs(y_pred - y_true)
    return _per_sample(diff.mean(axis=-1) if diff.ndim > 1 else diff, mask)


def mean_squared_error(y_true, y_pred, mask=None) -> np.ndarray:
    y_pred = _data(y_pred)
    y_true, y_pred = _same_rank(_data(y_true).astype(y_pred.dtype, copy=False), y_pred)
    diff = np.square(y_pred - y_true)
    return _per_sample(diff.mean(axis=-1) if diff.ndim > 1 else diff, mask)


METRICS = {
    "binary_accuracy": binary_accuracy,
    "categorical_accuracy": categorical_accuracy,
    "sparse_categorical_accuracy": sparse_categorical_accuracy,
    "mean_absolute_error": mean_absolute_error,
    "mean_squared_error": mean_squared_error,
}
ALIASES = {
    "mae": "mean_absolute_error", "MAE": "mean_absolute_error",
    "mse": "mean_squared_error", "MSE": "mean_squared_error",
    "BinaryAccuracy": "binary_accuracy", "CategoricalAccuracy": "categorical_accuracy",
    "SparseCategoricalAccuracy": "sparse_categorical_accuracy",
    "MeanAbsoluteError": "mean_absolute_error", "MeanSquaredError": "mean_squared_error",
    **{name: name for name in METRICS},
}
ACCURACY_NAMES = ("accuracy", "acc")
METRIC_NAMES = tuple(sorted(ALIASES)) + ACCURACY_NAMES

_BINARY_LOSSES = {"binary_crossentropy", "BinaryCrossentropy"}
_SPARSE_LOSSES = {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"}


def resolve_accuracy(loss_name=None, y_true_shape=None, y_pred_shape=None) -> str:
    """Which accuracy ``accuracy`` means for an output (see the module docstring).

    Shapes may have ``None`` for unknown axes (the batch axis); ``y_true_shape`` may be
    ``None`` altogether when the targets are not known yet.
    """
    if isinstance(loss_name, dict):
        loss_name = loss_name.get("name")
    p_last = y_pred_shape[-1] if y_pred_shape else None
    if p_last == 1 or loss_name in _BINARY_LOSSES:
        return "binary_accuracy"
    if loss_name in _SPARSE_LOSSES:
        return "sparse_categorical_accuracy"
    if y_true_shape is not None and y_pred_shape is not None:
        t_last = y_true_shape[-1] if len(y_true_shape) else None
        if len(y_true_shape) < len(y_pred_shape) or (t_last == 1 and p_last != 1):
            return "sparse_categorical_accuracy"
    return "categorical_accuracy"


def get_metric(name, loss_name=None, y_true_shape=None, y_pred_shape=None):
    """A per-sample metric function for ``name`` (``accuracy`` resolved per output).

    ``name`` may also be ``{"name": "binary_accuracy", "threshold": 0.7}``. The returned
    function carries ``.metric_name`` (the resolved canonical name).
    """
    kwargs = {}
    if isinstance(name, dict):
        kwargs = dict(name)
        name = kwargs.pop("name", None)
    if not isinstance(name, str):
        raise SpecError("a metric is a name such as 'accuracy' or 'mae'", path="metrics")
    if name in ACCURACY_NAMES:
        canonical = resolve_accuracy(loss_name, y_true_shape, y_pred_shape)
    elif name in ALIASES:
        canonical = ALIASES[name]
    else:
        raise SpecError(f"unknown metric '{name}'; built-in metrics are "
                        f"{', '.join(METRIC_NAMES)}", path="metrics")
    fn = METRICS[canonical]
    if kwargs:
        if canonical != "binary_accuracy" or set(kwargs) != {"threshold"}:
            raise SpecError(f"metric '{canonical}' does not take "
                            f"{', '.join(sorted(kwargs))}", path="metrics")
        threshold = kwargs["threshold"]

        def bound(y_true, y_pred, mask=None):
            return binary_accuracy(y_true, y_pred, threshold=threshold, mask=mask)
        bound.metric_name = canonical
        return bound

    def metric(y_true, y_pred, mask=None):
        return fn(y_true, y_pred, mask=mask)
    metric.metric_name = canonical
    return metric


def reduce_metric(values, sample_weight=None) -> float:
    """Weighted mean of per-sample values: ``sum(v * w) / sum(w)`` (Keras' ``Mean``)."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if sample_weight is None:
        return float(values.mean()) if values.size else 0.0
    weights = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if weights.size != values.size:
        raise InputError(f"sample_weight has {weights.size} values for {values.size} "
                         "samples")
    total = weights.sum()
    return float((values * weights).sum() / total) if total else 0.0


class MeanMetric:
    """Keras' ``Mean``: accumulates ``sum(v * w)`` and ``sum(w)`` over batches."""

    def __init__(self):
        self.total = 0.0
        self.count = 0.0

    def update(self, values, sample_weight=None) -> None:
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if sample_weight is None:
            self.total += float(values.sum())
            self.count += values.size
            return
        weights = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64).reshape(-1)
                                  if np.ndim(sample_weight) else
                                  np.asarray(sample_weight, dtype=np.float64), values.shape)
        self.total += float((values * weights).sum())
        self.count += float(weights.sum())

    def result(self) -> float:
        return self.total / self.count if self.count else 0.0

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0.0
