"""LayerNormalization (Keras 3 semantics), forward and hand-written backward side by side.

Each sample is normalised over ``axis`` (an int or a list of feature axes) with its
own mean and biased variance, then scaled by ``gamma`` and shifted by ``beta``, both of
shape ``[input_shape[a] for a in sorted(axis)]``: Keras sorts the axes before it creates
the weights, so ``axis: [2, 1]`` on input (4, 5) has gamma (4, 5), and Keras' weights
load as they are. Same in training and inference.

``rms_scaling`` follows Keras 3's code exactly: ``x * rsqrt(var(x) + epsilon) * gamma``
(the variance is taken about the mean, the input is not centred), with no beta;
``center`` and ``scale`` are then ignored and gamma always exists.
"""
from __future__ import annotations

import numpy as np

from ..autodiff.engine import result
from ..errors import ShapeError
from .base import Layer, WeightSpec, single_shape
from .common_args import REGULARIZER, initializer

_AXIS = {"type": "integer", "minimum": -64, "maximum": 64}


def layer_norm(x, gamma, beta, axes, epsilon, rms=False):
    """Normalise ``x`` over ``axes`` (sorted, non-negative); ``gamma``/``beta`` (or None)
    have the Keras weight shape and are reshaped to the broadcast shape. ``rms``:
    Keras' rms_scaling, ``x * rsqrt(var + eps)`` (x itself, not x - mean)."""
    xd = x.data
    dtype = xd.dtype
    keep = tuple(i for i in range(xd.ndim) if i not in axes)
    bshape = tuple(xd.shape[i] if i in axes else 1 for i in range(xd.ndim))
    mean = xd.mean(axis=axes, keepdims=True)
    xc = xd - mean
    var = (xc * xc).mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt(var + dtype.type(epsilon))
    xhat = (xd if rms else xc) * inv
    g_arr = gamma.data.astype(dtype, copy=False).reshape(bshape) if gamma is not None else None
    out = xhat * g_arr if g_arr is not None else xhat
    if beta is not None:
        out = out + beta.data.astype(dtype, copy=False).reshape(bshape)
    parents = [p for p in (x, gamma, beta) if p is not None]

    def weight_grad(arr, weight):
        return arr.sum(axis=keep).reshape(weight.shape).astype(weight.data.dtype, copy=False)

    def backward(g):
        grads = [None]
        if x.requires_grad:
            gh = g * g_arr if g_arr is not None else g
            if rms:   # d/dx of x * inv: inv also depends on x through the variance
                grads[0] = inv * (gh - xc * inv * (gh * xhat).mean(axis=axes, keepdims=True))
            else:
                grads[0] = inv * (gh - gh.mean(axis=axes, keepdims=True)
                                  - xhat * (gh * xhat).mean(axis=axes, keepdims=True))
        if gamma is not None:
            grads.append(weight_grad(g * xhat, gamma) if gamma.requires_grad else None)
        if beta is not None:
            grads.append(weight_grad(g, beta) if beta.requires_grad else None)
        return grads
    return result(out, parents, backward)


class LayerNormalization(Layer):
    SUPPORTS_MASKING = True  # Keras: a mask on the input passes through
    TYPE = "LayerNormalization"
    DOC = ("Per-sample normalisation over `axis` (int or list of feature axes), then "
           "gamma * x + beta with weights over the normalised axes (Keras 3).")
    ARGS = {
        "axis": {"type": ["integer", "array"], "default": -1, "minimum": -64, "maximum": 64,
                 "items": _AXIS, "minItems": 1, "maxItems": 64,
                 "description": "axis or axes normalised over (batch axis excluded)"},
        "epsilon": {"type": "number", "default": 1e-3, "exclusiveMinimum": 0},
        "center": {"type": "boolean", "default": True},
        "scale": {"type": "boolean", "default": True},
        "rms_scaling": {"type": "boolean", "default": False,
                        "description": "x * rsqrt(var(x) + epsilon) * gamma (Keras 3); "
                                       "center and scale are ignored"},
        "beta_initializer": initializer("zeros"),
        "gamma_initializer": initializer("ones"),
        "beta_regularizer": REGULARIZER,
        "gamma_regularizer": REGULARIZER,
    }

    def _axes(self, rank):
        """The axes as written, made non-negative, after checks (weights: sorted)."""
        written = self.axis if isinstance(self.axis, list) else [self.axis]
        out = []
        for a in written:
            if not -rank <= a < rank or a % rank == 0:
                raise ShapeError(f"LayerNormalization '{self.name}': axis {a} is not a "
                                 f"feature axis of rank-{rank} inputs (batch included)")
            if a % rank in out:
                raise ShapeError(f"LayerNormalization '{self.name}': axis {a} is listed "
                                 f"twice in {self.axis}")
            out.append(a % rank)
        return out

    def compute_output_shapes(self, input_shapes):
        shape = single_shape(self, input_shapes)
        for a in self._axes(len(shape)):
            if shape[a] is None:
                raise ShapeError(f"LayerNormalization '{self.name}' needs a known size on "
                                 f"axis {a}, got input shape {shape}")
        return [shape]

    def weight_specs(self, input_shapes):
        shape = tuple(input_shapes[0])
        wshape = tuple(shape[a] for a in sorted(self._axes(len(shape))))   # Keras sorts
        specs = []
        if self.scale or self.rms_scaling:
            specs.append(WeightSpec("gamma", wshape, self.gamma_initializer))
        if self.center and not self.rms_scaling:
            specs.append(WeightSpec("beta", wshape, self.beta_initializer))
        return specs

    def forward(self, inputs, ctx):
        x = inputs[0]
        axes = tuple(sorted(self._axes(x.data.ndim)))
        gamma = self.weights.get("gamma")
        beta = self.weights.get("beta")
        return [layer_norm(x, gamma, beta, axes, self.epsilon, self.rms_scaling)]
