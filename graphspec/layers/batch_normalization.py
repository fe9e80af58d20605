"""BatchNormalization (Keras 3 semantics), forward and hand-written backward side by side.

Training (``ctx.training`` and the layer trainable — itself, its containing models
and the job's freeze list — as Keras' ``training and self.trainable``): normalise with the batch mean and the *biased* batch variance over
every axis but ``axis``, and queue the moving-average updates

    moving_mean     = moving_mean * momentum     + mean     * (1 - momentum)
    moving_variance = moving_variance * momentum + variance * (1 - momentum)

on ``ctx.state_updates``; the trainer assigns them after the optimizer step. Keras
(``keras/src/layers/normalization/batch_normalization.py``) feeds the same biased
variance (``ops.moments``) into the moving average; PyTorch's ``running_var`` uses the
unbiased one instead, so the two differ by a factor ``m / (m - 1)`` there.

Inference: an affine op with the moving statistics,
``gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta``.

With a mask (Keras' ``call(inputs, training, mask)``; the mask passes on): training
takes the moments over the unmasked positions only, as Keras' ``_moments``:
``mean = sum(w x) / (sum(w) + 1e-7)``, ``variance = sum(w (x - mean)^2) / (sum(w) +
1e-7)`` with ``w`` the mask expanded on the last axis (Keras' ``backend.epsilon()``
keeps an all-masked batch finite). Every position, masked or not, is then normalised
with them. Inference ignores the mask.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import result
from ..errors import ShapeError
from .base import Layer, WeightSpec, single_shape
from .common_args import REGULARIZER, initializer


def _param(var, dtype, bshape):
    """A per-channel weight as an array of the input dtype, broadcastable to the input."""
    return var.data.astype(dtype, copy=False).reshape(bshape)


def batch_norm_train(x, gamma, beta, axis, epsilon):
    """Batch normalisation with batch statistics; returns (y Variable, mean, variance).

    ``gamma``/``beta`` may be None (scale/center off). Backward is the classic
    ``dx = inv/m * (m*gh - sum(gh) - xhat * sum(gh * xhat))`` with ``gh = g * gamma``.
    """
    xd = x.data
    dtype = xd.dtype
    red = tuple(i for i in range(xd.ndim) if i != axis)
    bshape = tuple(xd.shape[axis] if i == axis else 1 for i in range(xd.ndim))
    mean = xd.mean(axis=red, keepdims=True)
    xc = xd - mean
    var = (xc * xc).mean(axis=red, keepdims=True)
    inv = 1.0 / np.sqrt(var + dtype.type(epsilon))
    xhat = xc * inv
    g_arr, out, parents = _scale_shift(x, xhat, gamma, beta, bshape)

    def backward(g):
        grads = []
        if x.requires_grad:
            gh = g * g_arr if g_arr is not None else g
            gx = inv * (gh - gh.mean(axis=red, keepdims=True)
                        - xhat * (gh * xhat).mean(axis=red, keepdims=True))
            grads.append(gx)
        else:
            grads.append(None)
        return grads + _affine_grads(g, xhat, red, gamma, beta)
    return result(out, parents, backward), mean.reshape(-1), var.reshape(-1)


def _scale_shift(x, xhat, gamma, beta, bshape):
    """``(gamma as an array or None, xhat * gamma + beta, the op's parents)``."""
    dtype = xhat.dtype
    g_arr = _param(gamma, dtype, bshape) if gamma is not None else None
    out = xhat * g_arr if g_arr is not None else xhat
    if beta is not None:
        out = out + _param(beta, dtype, bshape)
    return g_arr, out, [p for p in (x, gamma, beta) if p is not None]


# Keras' backend.epsilon(), added to the unmasked count in the masked moments.
COUNT_EPSILON = 1e-7


def batch_norm_train_masked(x, gamma, beta, axis, epsilon, keep):
    """:func:`batch_norm_train` with Keras' masked moments (``keep``: the boolean mask
    broadcastable to ``x``). Backward through the weighted moments: the masked
    positions feed neither statistic, so they get only the direct ``g * gamma * inv``."""
    xd = x.data
    dtype = xd.dtype
    red = tuple(i for i in range(xd.ndim) if i != axis)
    bshape = tuple(xd.shape[axis] if i == axis else 1 for i in range(xd.ndim))
    w = np.broadcast_to(keep, xd.shape).astype(dtype)
    d = w.sum(axis=red, keepdims=True) + dtype.type(COUNT_EPSILON)
    mean = (w * xd).sum(axis=red, keepdims=True) / d
    xc = xd - mean
    var = (w * xc * xc).sum(axis=red, keepdims=True) / d
    inv = 1.0 / np.sqrt(var + dtype.type(epsilon))
    xhat = xc * inv
    g_arr, out, parents = _scale_shift(x, xhat, gamma, beta, bshape)

    def backward(g):
        grads = [None]
        if x.requires_grad:
            gh = g * g_arr if g_arr is not None else g
            d_var = -0.5 * inv ** 3 * (gh * xc).sum(axis=red, keepdims=True)
            # sum(w * xc) is mean * 1e-7, not 0: the count epsilon moves the mean
            d_mean = -inv * gh.sum(axis=red, keepdims=True) \
                - 2.0 * d_var * (w * xc).sum(axis=red, keepdims=True) / d
            grads[0] = gh * inv + w * (2.0 * d_var * xc + d_mean) / d
        grads += _affine_grads(g, xhat, red, gamma, beta)
        return grads
    return result(out, parents, backward), mean.reshape(-1), var.reshape(-1)


def _affine_grads(g, xhat, red, gamma, beta) -> list:
    """Gradients of gamma and beta (those present), in that order."""
    grads = []
    if gamma is not None:
        grads.append((g * xhat).sum(axis=red).astype(gamma.data.dtype, copy=False)
                     if gamma.requires_grad else None)
    if beta is not None:
        grads.append(g.sum(axis=red).astype(beta.data.dtype, copy=False)
                     if beta.requires_grad else None)
    return grads


def batch_norm_inference(x, gamma, beta, moving_mean, moving_variance, axis, epsilon):
    """``gamma * (x - mm) / sqrt(mv + eps) + beta``; gradients for every parent, the
    moving statistics included (they are non-trainable, but a model-level gradient
    check may still ask)."""
    xd = x.data
    dtype = xd.dtype
    red = tuple(i for i in range(xd.ndim) if i != axis)
    bshape = tuple(xd.shape[axis] if i == axis else 1 for i in range(xd.ndim))
    mm = _param(moving_mean, dtype, bshape)
    mv = _param(moving_variance, dtype, bshape)
    inv = 1.0 / np.sqrt(mv + dtype.type(epsilon))
    xc = xd - mm
    xhat = xc * inv
    g_arr = _param(gamma, dtype, bshape) if gamma is not None else None
    scale = inv * g_arr if g_arr is not None else inv
    out = xc * scale
    if beta is not None:
        out = out + _param(beta, dtype, bshape)
    parents = [p for p in (x, gamma, beta) if p is not None] + [moving_mean, moving_variance]

    def backward(g):
        grads = [g * scale if x.requires_grad else None]
        grads += _affine_grads(g, xhat, red, gamma, beta)
        gs = None
        if moving_mean.requires_grad or moving_variance.requires_grad:
            gs = g * scale
        grads.append((-gs.sum(axis=red)).astype(moving_mean.data.dtype, copy=False)
                     if moving_mean.requires_grad else None)
        grads.append((-0.5 * (gs * xc).sum(axis=red) * (inv * inv).reshape(-1))
                     .astype(moving_variance.data.dtype, copy=False)
                     if moving_variance.requires_grad else None)
        return grads
    return result(out, parents, backward)


class BatchNormalization(Layer):
    TYPE = "BatchNormalization"
    DOC = ("Batch normalisation over every axis but `axis` (Keras 3): batch statistics "
           "while training (moving averages updated after each step), moving statistics "
           "at inference. Weights gamma, beta (trainable), moving_mean, moving_variance.")
    SUPPORTS_MASKING = True
    USES_MASK = True
    ARGS = {
        "axis": {"type": "integer", "default": -1, "minimum": -64, "maximum": 64,
                 "description": "the feature axis kept (channels-last: -1)"},
        "momentum": {"type": "number", "default": 0.99, "minimum": 0, "maximum": 1},
        "epsilon": {"type": "number", "default": 1e-3, "exclusiveMinimum": 0},
        "center": {"type": "boolean", "default": True},
        "scale": {"type": "boolean", "default": True},
        "beta_initializer": initializer("zeros"),
        "gamma_initializer": initializer("ones"),
        "moving_mean_initializer": initializer("zeros"),
        "moving_variance_initializer": initializer("ones"),
        "beta_regularizer": REGULARIZER,
        "gamma_regularizer": REGULARIZER,
    }

    def _axis(self, rank):
        if not -rank <= self.axis < rank or self.axis % rank == 0:
            raise ShapeError(f"BatchNormalization '{self.name}': axis {self.axis} is not a "
                             f"feature axis of rank-{rank} inputs (batch included)")
        return self.axis % rank

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        if len(shape) < 2:
            raise ShapeError(f"BatchNormalization '{self.name}' needs at least one feature "
                             f"axis, got input shape {shape}")
        axis = self._axis(len(shape))
        if shape[axis] is None:
            raise ShapeError(f"BatchNormalization '{self.name}' needs a known size on axis "
                             f"{self.axis}, got input shape {shape}")
        return [shape]

    def weight_specs(self, input_shapes):
        shape = tuple(input_shapes[0])
        n = (shape[self._axis(len(shape))],)
        specs = []
        if self.scale:
            specs.append(WeightSpec("gamma", n, self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec("beta", n, self.beta_initializer))
        specs.append(WeightSpec("moving_mean", n, self.moving_mean_initializer, trainable=False))
        specs.append(WeightSpec("moving_variance", n, self.moving_variance_initializer,
                                trainable=False))
        return specs

    def forward(self, inputs, ctx):
        return self.forward_masked(inputs, [None], ctx)

    def forward_masked(self, inputs, masks, ctx):
        x, keep = inputs[0], masks[0]
        if keep is not None and np.ndim(keep) != x.data.ndim - 1:
            raise ShapeError(f"BatchNormalization '{self.name}': its input mask must have "
                             f"one axis less than the input {x.shape}, got "
                             f"{np.shape(keep)} (Keras refuses it the same way)")
        axis = self._axis(x.data.ndim)
        gamma = self.weights["gamma"] if self.scale else None
        beta = self.weights["beta"] if self.center else None
        mm, mv = self.weights["moving_mean"], self.weights["moving_variance"]
        if not (ctx.training and self.trainable and id(self) not in ctx.frozen):
            return [batch_norm_inference(x, gamma, beta, mm, mv, axis, self.epsilon)]
        if keep is None:
            y, mean, var = batch_norm_train(x, gamma, beta, axis, self.epsilon)
        else:
            y, mean, var = batch_norm_train_masked(
                x, gamma, beta, axis, self.epsilon, np.asarray(keep, bool)[..., None])
        self._queue_update(ctx, mm, mean)
        self._queue_update(ctx, mv, var)
        return [y]

    def _queue_update(self, ctx, moving, batch_stat):
        # A layer called twice in one step updates from its first update (Keras assigns
        # in call order), so start from the last value already queued for it.
        current = moving.data
        for var, value in reversed(ctx.state_updates):
            if var is moving:
                current = value
                break
        momentum = self.momentum
        new = current.astype(batch_stat.dtype, copy=False) * momentum \
            + batch_stat * (1.0 - momentum)
        ctx.state_updates.append((moving, new.astype(moving.data.dtype, copy=False)))
