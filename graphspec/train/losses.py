"""Built-in losses with Keras semantics, each returning one value per sample.

A loss is ``fn(y_true, y_pred) -> Variable`` of shape ``(batch,)``. As in Keras'
``LossFunctionWrapper`` the elementwise loss is averaged over the last axis (the
crossentropies sum over the class axis instead); any axes left between the batch and
the last one are averaged too, so that ``reduce_loss`` (the mean over the batch) equals
Keras' ``sum_over_batch_size`` reduction of the unreduced loss. Gradients flow to
``y_pred`` only: ``y_true`` is data.

Keras details reproduced here:

- ``y_true`` is cast to ``y_pred``'s dtype, and a ``(batch,)`` target against a
  ``(batch, 1)`` output (or the reverse) is expanded/squeezed to the output's rank.
- binary crossentropy on probabilities clips them to ``[eps, 1 - eps]`` with
  ``eps = 1e-7`` and takes logs (no gradient where the clip bites); from logits it uses
  the stable ``max(x, 0) - x * z + log(1 + exp(-|x|))``.
- categorical crossentropy on probabilities first renormalises them over the last axis
  (``p / sum(p)``), then clips to ``[eps, 1 - eps]``; from logits it is a fused
  log-softmax whose gradient is ``softmax * sum(t) - t``.
- ``label_smoothing``: binary ``t * (1 - s) + 0.5 * s``; categorical
  ``t * (1 - s) + s / num_classes``.
- sparse categorical crossentropy takes integer class ids of shape ``(batch,)`` or
  ``(batch, 1)`` (more generally the output's shape without its class axis).
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..autodiff.engine import Variable, as_variable, result
from ..errors import InputError, SpecError

EPSILON = 1e-7  # keras.backend.epsilon()


# -- helpers -------------------------------------------------------------------------

def _target_array(y_true, y_pred: Variable) -> np.ndarray:
    """``y_true`` as plain data in ``y_pred``'s dtype and rank (Keras squeeze/expand)."""
    data = y_true.data if isinstance(y_true, Variable) else y_true
    data = np.asarray(data, dtype=y_pred.dtype)
    if data.ndim == y_pred.data.ndim + 1 and data.shape[-1] == 1:
        data = data.reshape(data.shape[:-1])
    elif data.ndim + 1 == y_pred.data.ndim and y_pred.shape[-1] == 1:
        data = data.reshape(data.shape + (1,))
    if data.shape != y_pred.shape:
        raise InputError(f"targets of shape {data.shape} do not match predictions of "
                         f"shape {y_pred.shape}")
    return data


def mask_weights(mask, values_shape, dtype) -> np.ndarray:
    """Keras' ``apply_mask`` for ``sum_over_batch_size``: weight ``total / valid`` on the
    unmasked positions and 0 on the masked ones, so that the plain mean of the weighted
    values is the mean over the unmasked positions (0 if none is)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != tuple(values_shape):
        raise InputError(f"the output's mask has shape {mask.shape}, but its loss has one "
                         f"value per position of shape {tuple(values_shape)}: a mask must "
                         "cover the output's steps (its shape without the last axis)")
    valid = int(mask.sum())
    scale = mask.size / valid if valid else 0.0
    return mask.astype(dtype) * dtype.type(scale)


def _per_sample(values: Variable, mask=None) -> Variable:
    """Mean over every axis but the batch axis: ``(batch, ...) -> (batch,)``. With the
    output's ``mask`` (Keras masks a loss with the mask its prediction carries) the
    positions are first reduced to the mask's shape (mean over the last axis, as Keras'
    per-position losses are) and weighted by :func:`mask_weights`."""
    if mask is not None:
        while values.data.ndim > np.ndim(mask) and values.data.ndim > 1:
            values = ops.mean(values, axis=-1)
        values = ops.mul(values, Variable(mask_weights(mask, values.shape, values.dtype)))
    if values.data.ndim <= 1:
        return values
    return ops.mean(values, axis=tuple(range(1, values.data.ndim)))


def _check_probability_args(label_smoothing):
    if not 0 <= label_smoothing <= 1:
        raise SpecError(f"label_smoothing must be in [0, 1], got {label_smoothing}",
                        path="loss.label_smoothing")


# -- regression ----------------------------------------------------------------------

def mean_squared_error(y_true, y_pred, mask=None) -> Variable:
    """``mean((y_pred - y_true)**2, axis=-1)`` per sample."""
    y_pred = as_variable(y_pred)
    target = _target_array(y_true, y_pred)
    return _per_sample(ops.square(ops.sub(y_pred, Variable(target))), mask)


def mean_absolute_error(y_true, y_pred, mask=None) -> Variable:
    """``mean(|y_pred - y_true|, axis=-1)`` per sample (gradient 0 where they are equal)."""
    y_pred = as_variable(y_pred)
    target = _target_array(y_true, y_pred)
    return _per_sample(ops.abs_(ops.sub(y_pred, Variable(target))), mask)


# -- binary crossentropy ---------------------------------------------------------------

def _bce_probabilities(target, y_pred: Variable) -> Variable:
    eps = EPSILON
    p = y_pred.data
    inside = (p >= eps) & (p <= 1 - eps)
    clipped = np.clip(p, eps, 1 - eps)
    out = -(target * np.log(clipped) + (1 - target) * np.log(1 - clipped))

    def backward(g):
        return (g * inside * ((1 - target) / (1 - clipped) - target / clipped),)
    return result(out, (y_pred,), backward)


def _sigmoid(x):
    """``1 / (1 + exp(-x))`` without overflow and with full relative precision in the
    tails (``exp(-|x|)`` is exact-ish where ``1 - sigmoid`` would cancel)."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _bce_logits(target, y_pred: Variable) -> Variable:
    x = y_pred.data
    out = np.maximum(x, 0) - x * target + np.log1p(np.exp(-np.abs(x)))

    def backward(g):
        # sigmoid(x) - t, written so that neither term cancels for hard labels
        return (g * ((1 - target) * _sigmoid(x) - target * _sigmoid(-x)),)
    return result(out, (y_pred,), backward)


def binary_crossentropy(y_true, y_pred, from_logits: bool = False,
                        label_smoothing: float = 0.0, mask=None) -> Variable:
    y_pred = as_variable(y_pred)
    _check_probability_args(label_smoothing)
    target = _target_array(y_true, y_pred)
    if label_smoothing:
        target = target * (1 - label_smoothing) + 0.5 * label_smoothing
    elementwise = (_bce_logits if from_logits else _bce_probabilities)(target, y_pred)
    return _per_sample(elementwise, mask)


# -- categorical crossentropies ----------------------------------------------------------

def _cce_logits(target, y_pred: Variable) -> Variable:
    """``-sum(t * log_softmax(x), -1)``, fused; returns shape ``y_pred.shape[:-1]``."""
    x = y_pred.data
    shifted = x - x.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=-1, keepdims=True)
    log_probs = shifted - np.log(total)
    out = -(target * log_probs).sum(axis=-1)

    def backward(g):
        softmax = exp / total
        return (g[..., None] * (softmax * target.sum(axis=-1, keepdims=True) - target),)
    return result(out, (y_pred,), backward)


def _cce_probabilities(target, y_pred: Variable) -> Variable:
    """Keras: ``q = clip(p / sum(p), eps, 1 - eps)``, ``-sum(t * log q, -1)``, fused."""
    eps = EPSILON
    p = y_pred.data
    total = p.sum(axis=-1, keepdims=True)
    q = p / total
    inside = (q >= eps) & (q <= 1 - eps)
    clipped = np.clip(q, eps, 1 - eps)
    out = -(target * np.log(clipped)).sum(axis=-1)

    def backward(g):
        grad_q = -g[..., None] * inside * target / clipped
        # q = p / sum(p): dL/dp_i = (dL/dq_i - sum_j dL/dq_j q_j) / sum(p)
        return ((grad_q - (grad_q * q).sum(axis=-1, keepdims=True)) / total,)
    return result(out, (y_pred,), backward)


def categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                             label_smoothing: float = 0.0, mask=None) -> Variable:
    y_pred = as_variable(y_pred)
    _check_probability_args(label_smoothing)
    target = _target_array(y_true, y_pred)
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / y_pred.shape[-1]
    per_position = (_cce_logits if from_logits else _cce_probabilities)(target, y_pred)
    return _per_sample(per_position, mask)


def _class_ids(y_true, y_pred: Variable) -> np.ndarray:
    data = y_true.data if isinstance(y_true, Variable) else y_true
    data = np.asarray(data)
    expected = y_pred.shape[:-1]
    if data.ndim == y_pred.data.ndim and data.shape[-1] == 1:
        data = data.reshape(data.shape[:-1])
    if data.shape != expected:
        hint = ("; these look like one-hot labels: use categorical_crossentropy for them"
                if data.shape == tuple(y_pred.shape) else "")
        raise InputError(f"sparse targets of shape {data.shape} do not match predictions of "
                         f"shape {y_pred.shape}: expected integer class ids of shape "
                         f"{expected} or {expected + (1,)}{hint}")
    if data.dtype.kind == "f":
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise InputError("sparse targets must be integer class ids, got non-integer "
                             "values")
    elif data.dtype.kind not in "iub":
        raise InputError(f"sparse targets must be integer class ids, got dtype {data.dtype}")
    classes = y_pred.shape[-1]
    # Range first, on the values as given: a cast first would wrap 1e20 to -2**63.
    if data.size and (data.min() < 0 or data.max() >= classes):
        raise InputError(f"sparse target class ids must be in [0, {classes}), got values "
                         f"from {str(data.min())} to {str(data.max())}")
    return data.astype(np.int64)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits: bool = False,
                                    mask=None) -> Variable:
    y_pred = as_variable(y_pred)
    ids = _class_ids(y_true, y_pred)
    target = np.zeros(y_pred.shape, dtype=y_pred.dtype)
    np.put_along_axis(target, ids[..., None], 1, axis=-1)
    per_position = (_cce_logits if from_logits else _cce_probabilities)(target, y_pred)
    return _per_sample(per_position, mask)


# -- reduction -------------------------------------------------------------------------

def reduce_loss(per_sample: Variable, sample_weight=None) -> Variable:
    """Scalar loss: Keras' ``sum_over_batch_size``, i.e. ``sum(loss * w) / batch``.

    Note that the weighted loss is divided by the batch size, not by ``sum(w)``.
    """
    per_sample = as_variable(per_sample)
    if sample_weight is None:
        return ops.mean(per_sample)
    weights = np.asarray(sample_weight, dtype=per_sample.dtype)
    if weights.size != per_sample.data.size:
        raise InputError(f"sample_weight of shape {weights.shape} does not match the "
                         f"{per_sample.data.size} samples of the batch")
    return ops.mean(ops.mul(per_sample, Variable(weights.reshape(per_sample.shape))))


# -- registry --------------------------------------------------------------------------

# Canonical name -> (function, {argument: JSON-schema fragment with default}).
_CANONICAL = {
    "mean_squared_error": (mean_squared_error, {}),
    "mean_absolute_error": (mean_absolute_error, {}),
    "binary_crossentropy": (binary_crossentropy, {
        "from_logits": {"type": "boolean", "default": False},
        "label_smoothing": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0}}),
    "categorical_crossentropy": (categorical_crossentropy, {
        "from_logits": {"type": "boolean", "default": False},
        "label_smoothing": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0}}),
    "sparse_categorical_crossentropy": (sparse_categorical_crossentropy, {
        "from_logits": {"type": "boolean", "default": False}}),
}

# Every spelling Keras' ``losses.get`` accepts for these, -> canonical name.
ALIASES = {
    "mse": "mean_squared_error", "MSE": "mean_squared_error",
    "MeanSquaredError": "mean_squared_error",
    "mae": "mean_absolute_error", "MAE": "mean_absolute_error",
    "MeanAbsoluteError": "mean_absolute_error",
    "BinaryCrossentropy": "binary_crossentropy",
    "CategoricalCrossentropy": "categorical_crossentropy",
    "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy",
}
ALIASES.update({name: name for name in _CANONICAL})

LOSSES = {alias: _CANONICAL[canonical][0] for alias, canonical in ALIASES.items()}
LOSS_ARGS = {name: args for name, (_, args) in _CANONICAL.items()}
BINARY_LOSSES = ("binary_crossentropy",)


def canonical_loss_name(name: str) -> str:
    if name not in ALIASES:
        raise SpecError(f"unknown loss '{name}'; built-in losses are "
                        f"{', '.join(sorted(ALIASES))}", path="loss")
    return ALIASES[name]


class Loss:
    """A built-in loss with its arguments bound: ``loss(y_true, y_pred) -> (batch,)``."""

    def __init__(self, name: str, **kwargs):
        self.name = canonical_loss_name(name)
        self.fn = LOSSES[self.name]
        allowed = LOSS_ARGS[self.name]
        for key in kwargs:
            if key not in allowed:
                extra = f"; it takes {', '.join(sorted(allowed))}" if allowed else \
                    "; it takes no arguments"
                raise SpecError(f"loss '{self.name}' has no argument '{key}'{extra}",
                                path=f"loss.{key}")
        self.config = {k: s["default"] for k, s in allowed.items()}
        self.config.update(kwargs)
        if "label_smoothing" in self.config:
            _check_probability_args(self.config["label_smoothing"])

    def __call__(self, y_true, y_pred, mask=None) -> Variable:
        """Per-sample losses; ``mask``: the prediction's mask (positions to count)."""
        if mask is None:
            return self.fn(y_true, y_pred, **self.config)
        return self.fn(y_true, y_pred, mask=mask, **self.config)

    def __repr__(self):
        return f"Loss({self.name!r}, {self.config})"


def get_loss(name_or_config) -> Loss:
    """``"mse"`` or ``{"name": "categorical_crossentropy", "from_logits": True}``."""
    if isinstance(name_or_config, Loss):
        return name_or_config
    if isinstance(name_or_config, str):
        return Loss(name_or_config)
    if isinstance(name_or_config, dict):
        config = dict(name_or_config)
        name = config.pop("name", None)
        if not isinstance(name, str):
            raise SpecError("a loss given as a mapping needs a 'name'", path="loss")
        return Loss(name, **config)
    raise SpecError(f"a loss is a name or a mapping with a 'name', got "
                    f"{type(name_or_config).__name__}", path="loss")


LOSS_SCHEMA = {
    "oneOf": [
        {"enum": sorted(ALIASES)},
        *({"type": "object", "required": ["name"], "additionalProperties": False,
           "properties": {"name": {"enum": sorted(a for a, c in ALIASES.items()
                                                  if c == canonical)}, **args}}
          for canonical, args in LOSS_ARGS.items()),
    ],
}
