"""Keras 3 optimizers (SGD, RMSprop, Adam) over numpy arrays, updated in place.

``opt.apply([(key, Variable), ...])`` reads each Variable's ``.grad`` and updates its
``.data`` in place (the array object is kept, float32 stays float32). Per-variable state
("slots") is keyed by the given key string, so it survives the model being rebuilt and
can be checkpointed with ``state_dict()`` / ``load_state_dict()`` as flat, npz-safe
arrays:

    optimizer/<type>/iterations        int64 scalar: steps applied so far
    optimizer/<type>/learning_rate     float64 scalar (restored, as Keras does)
    optimizer/<key>/<slot>             one array per slot, e.g.
                                       optimizer/dense_1/kernel/momentum

Slot names are Keras': ``momentum`` (SGD, RMSprop), ``velocity`` (RMSprop, Adam),
``average_gradient`` (centered RMSprop), ``momentum``/``velocity``/``velocity_hat``
(Adam, ``m``, ``v``, AMSGrad's running max of ``v``).

One step does what Keras' ``BaseOptimizer.apply`` does, in this order: skip variables
without a gradient; clip the gradients (``clipnorm`` per variable: ``g * c /
max(|g|, c)``; ``global_clipnorm`` over all gradients together; ``clipvalue``
elementwise; at most one of the three); decoupled weight decay ``w -= w * wd * lr`` (if
``weight_decay`` is set); the update rule; ``iterations += 1``.

Update rules (from ``keras/src/optimizers/{sgd,rmsprop,adam}.py``):

- SGD: ``m = momentum * m - lr * g``; ``w += m`` (nesterov: ``w += momentum * m -
  lr * g``); without momentum ``w -= lr * g``.
- RMSprop: ``v = rho * v + (1 - rho) * g**2``; centered: ``a = rho * a + (1 - rho) * g``
  and ``den = v - a**2 + eps``, else ``den = v + eps``; ``inc = lr * g / sqrt(den)``
  (epsilon INSIDE the square root, unlike PyTorch); with momentum ``mom = momentum *
  mom + inc; w -= mom``, else ``w -= inc``.
- Adam: ``m += (g - m) * (1 - b1)``; ``v += (g**2 - v) * (1 - b2)``; AMSGrad ``v_hat =
  max(v_hat, v)`` is used for ``v``; ``alpha = lr * sqrt(1 - b2**t) / (1 - b1**t)``;
  ``w -= alpha * m / (sqrt(v) + eps)`` (Keras' "epsilon hat": PyTorch's eps equals
  ``eps / sqrt(1 - b2**t)`` in these terms).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError, SpecError
from ..ops.threads import run_split

_PREFIX = "optimizer/"
_NUMBER = {"type": "number"}


def _positive_or_null(description):
    return {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
            "description": description}


# Arguments every optimizer takes (Keras' base optimizer arguments we support).
COMMON_ARGS = {
    "clipnorm": _positive_or_null("clip each gradient to this L2 norm (per variable)"),
    "global_clipnorm": _positive_or_null("clip all gradients together to this global "
                                         "L2 norm"),
    "clipvalue": _positive_or_null("clip each gradient element to [-clipvalue, clipvalue]"),
    "weight_decay": {"type": ["number", "null"], "minimum": 0, "default": None,
                     "description": "decoupled weight decay: w -= w * weight_decay * lr "
                                    "before each update"},
}


class Optimizer:
    TYPE = ""
    ARGS: dict = {}
    SLOTS: tuple = ()

    def __init__(self, **config):
        args = self.all_args()
        unknown = sorted(set(config) - set(args))
        if unknown:
            raise SpecError(f"optimizer '{self.TYPE}' has no argument(s) "
                            f"{', '.join(unknown)}; it takes {', '.join(sorted(args))}",
                            path=f"optimizer.{unknown[0]}")
        full = {k: s["default"] for k, s in args.items()}
        full.update(config)
        for key, value in full.items():
            _check_value(self.TYPE, key, value, args[key])
        clips = [k for k in ("clipnorm", "global_clipnorm", "clipvalue")
                 if full[k] is not None]
        if len(clips) > 1:
            raise SpecError(f"only one of clipnorm, clipvalue and global_clipnorm can be "
                            f"set, got {' and '.join(clips)}", path="optimizer")
        self.config = full
        self.learning_rate = float(full["learning_rate"])
        self.iterations = 0
        self.slots: dict = {}   # key -> {slot name: array}

    @classmethod
    def all_args(cls) -> dict:
        return {**cls.ARGS, **COMMON_ARGS}

    def __getattr__(self, item):
        config = self.__dict__.get("config")
        if config is not None and item in config:
            return config[item]
        raise AttributeError(f"{type(self).__name__} has no attribute {item!r}")

    # -- one step ------------------------------------------------------------------------
    def apply(self, params) -> None:
        """Update every ``(key, Variable)`` that has a ``.grad``, in place."""
        pairs = [(key, var) for key, var in params if var.grad is not None]
        keys = [key for key, _ in pairs]
        if len(set(keys)) != len(keys):
            raise ValueError("optimizer.apply got the same key twice")
        if not pairs:
            return  # nothing to update (Keras' apply() of no gradients is a no-op too)
        grads = [np.asarray(var.grad, dtype=var.data.dtype) for _, var in pairs]
        grads = self._clip(grads)
        lr = self.learning_rate
        if self.config["weight_decay"]:
            for _, var in pairs:
                w = var.data
                np.subtract(w, w * (self.config["weight_decay"] * lr), out=w)
        for (key, var), grad in zip(pairs, grads):
            self._update(var.data, grad, self._slots_for(key, var.data), lr)
        self.iterations += 1

    def _clip(self, grads):
        clipnorm, global_clipnorm, clipvalue = (
            self.config["clipnorm"], self.config["global_clipnorm"], self.config["clipvalue"])
        if clipnorm:
            return [g * (clipnorm / max(math.sqrt(float((g * g).sum())), clipnorm))
                    for g in grads]
        if global_clipnorm:
            norm = math.sqrt(sum(float((g * g).sum()) for g in grads))
            if not math.isfinite(norm):
                return [np.full_like(g, np.nan) for g in grads]
            scale = global_clipnorm * min(1.0 / norm if norm else math.inf,
                                          1.0 / global_clipnorm)
            return [g * scale for g in grads]
        if clipvalue:
            return [np.clip(g, -clipvalue, clipvalue) for g in grads]
        return grads

    def _slots_for(self, key, w) -> dict:
        slots = self.slots.get(key)
        names = self.slot_names()
        if slots is None:
            slots = self.slots[key] = {}
        for name in names:
            if name not in slots:
                slots[name] = np.zeros_like(w)
            elif slots[name].shape != w.shape:
                raise InputError(f"optimizer state '{_PREFIX}{key}/{name}' has shape "
                                 f"{slots[name].shape} but the weight has shape {w.shape}")
            elif slots[name].dtype != w.dtype:
                slots[name] = slots[name].astype(w.dtype)
        return slots

    def slot_names(self) -> tuple:
        return self.SLOTS

    def _update(self, w, g, slots, lr):
        raise NotImplementedError

    def _scratch(self, w):
        """A ``w``-shaped view of one buffer reused for every weight and step (sized by
        the largest weight; scratch space, not optimizer state, never checkpointed)."""
        buf = self.__dict__.get("_scratch_buffer")
        if buf is None or buf.dtype != w.dtype or buf.size < w.size:
            buf = self.__dict__["_scratch_buffer"] = np.empty(max(w.size, 1), w.dtype)
        return buf[:w.size].reshape(w.shape)

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        state = {f"{_PREFIX}{self.TYPE}/iterations": np.array(self.iterations, np.int64),
                 f"{_PREFIX}{self.TYPE}/learning_rate": np.array(self.learning_rate,
                                                                 np.float64)}
        for key, slots in self.slots.items():
            for name, array in slots.items():
                state[f"{_PREFIX}{key}/{name}"] = array.copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore ``state_dict()`` output; keys not starting with ``optimizer/`` are
        ignored, so a whole checkpoint (weights too) can be passed."""
        own = {k: v for k, v in state.items() if k.startswith(_PREFIX)}
        iterations_key = f"{_PREFIX}{self.TYPE}/iterations"
        if iterations_key not in own:
            found = sorted({k.split("/")[1] for k in own if k.endswith("/iterations")})
            raise InputError(f"the checkpoint has no state for optimizer '{self.TYPE}'"
                             + (f" (it was saved by {', '.join(found)})" if found else ""))
        globals_ = {iterations_key, f"{_PREFIX}{self.TYPE}/learning_rate"}
        slots: dict = {}
        names = set(self.slot_names())
        for full_key, value in own.items():
            if full_key in globals_:
                continue
            key, _, name = full_key[len(_PREFIX):].rpartition("/")
            if not key or name not in names:
                if full_key.endswith(("/iterations", "/learning_rate")):
                    continue  # another optimizer's globals in a shared file
                raise InputError(f"unexpected optimizer state '{full_key}' for optimizer "
                                 f"'{self.TYPE}' (its slots are "
                                 f"{', '.join(sorted(names)) or 'none'})")
            slots.setdefault(key, {})[name] = np.array(value, copy=True)
        self.slots = slots
        self.iterations = int(np.asarray(own[iterations_key]))
        lr_key = f"{_PREFIX}{self.TYPE}/learning_rate"
        if lr_key in own:
            self.learning_rate = float(np.asarray(own[lr_key]))

    def get_config(self) -> dict:
        return {"type": self.TYPE, **self.config, "learning_rate": self.learning_rate}

    def __repr__(self):
        return f"{type(self).__name__}({self.config})"


def _check_value(owner, key, value, schema):
    """The constraints of the argument tables, checked without jsonschema."""
    where = f"optimizer.{key}"
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if value is None:
        if "null" not in types:
            raise SpecError(f"optimizer '{owner}' argument {key} must not be null",
                            path=where)
        return
    if "boolean" in types:
        if not isinstance(value, bool):
            raise SpecError(f"optimizer '{owner}' argument {key} must be true or false, "
                            f"got {value!r}", path=where)
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise SpecError(f"optimizer '{owner}' argument {key} must be a finite number, "
                        f"got {value!r}", path=where)
    for bound, ok, text in (("minimum", lambda v, b: v >= b, ">="),
                            ("exclusiveMinimum", lambda v, b: v > b, ">"),
                            ("maximum", lambda v, b: v <= b, "<="),
                            ("exclusiveMaximum", lambda v, b: v < b, "<")):
        if bound in schema and not ok(value, schema[bound]):
            raise SpecError(f"optimizer '{owner}' argument {key} must be {text} "
                            f"{schema[bound]}, got {value}", path=where)


# -- the optimizers ------------------------------------------------------------------------

class SGD(Optimizer):
    TYPE = "sgd"
    ARGS = {
        "learning_rate": {"type": "number", "exclusiveMinimum": 0, "default": 0.01},
        "momentum": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0},
        "nesterov": {"type": "boolean", "default": False},
    }

    def slot_names(self):
        return ("momentum",) if self.config["momentum"] != 0 else ()

    def _update(self, w, g, slots, lr):
        momentum = self.config["momentum"]
        if momentum == 0:
            np.subtract(w, lr * g, out=w)
            return
        m = slots["momentum"]
        np.subtract(momentum * m, lr * g, out=m)
        if self.config["nesterov"]:
            np.add(w, momentum * m - lr * g, out=w)
        else:
            np.add(w, m, out=w)


class RMSprop(Optimizer):
    TYPE = "rmsprop"
    ARGS = {
        "learning_rate": {"type": "number", "exclusiveMinimum": 0, "default": 0.001},
        "rho": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.9},
        "momentum": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0},
        "epsilon": {"type": "number", "minimum": 0, "default": 1e-7},
        "centered": {"type": "boolean", "default": False},
    }

    def slot_names(self):
        names = ["velocity"]
        if self.config["momentum"] > 0:
            names.append("momentum")
        if self.config["centered"]:
            names.append("average_gradient")
        return tuple(names)

    def _update(self, w, g, slots, lr):
        rho, eps = self.config["rho"], self.config["epsilon"]
        v = slots["velocity"]
        np.add(rho * v, (1 - rho) * (g * g), out=v)
        if self.config["centered"]:
            a = slots["average_gradient"]
            np.add(rho * a, (1 - rho) * g, out=a)
            denominator = v - a * a + eps
        else:
            denominator = v + eps
        increment = lr * g / np.sqrt(denominator)
        if self.config["momentum"] > 0:
            mom = slots["momentum"]
            np.add(self.config["momentum"] * mom, increment, out=mom)
            np.subtract(w, mom, out=w)
        else:
            np.subtract(w, increment, out=w)


class Adam(Optimizer):
    TYPE = "adam"
    ARGS = {
        "learning_rate": {"type": "number", "exclusiveMinimum": 0, "default": 0.001},
        "beta_1": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.9},
        "beta_2": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.999},
        "epsilon": {"type": "number", "minimum": 0, "default": 1e-7},
        "amsgrad": {"type": "boolean", "default": False},
    }

    def slot_names(self):
        return ("momentum", "velocity", "velocity_hat") if self.config["amsgrad"] \
            else ("momentum", "velocity")

    def _update(self, w, g, slots, lr):
        beta_1, beta_2 = self.config["beta_1"], self.config["beta_2"]
        step = self.iterations + 1
        alpha = lr * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
        m, v = slots["momentum"], slots["velocity"]
        v_hat = slots["velocity_hat"] if self.config["amsgrad"] else None
        tmp = self._scratch(w)
        epsilon = self.config["epsilon"]

        def rows(start, stop):
            part = slice(start, stop)
            _adam_rows(w[part], g[part], m[part], v[part],
                       None if v_hat is None else v_hat[part], tmp[part],
                       beta_1, beta_2, alpha, epsilon)
        if w.ndim == 0:
            _adam_rows(w, g, m, v, v_hat, tmp, beta_1, beta_2, alpha, epsilon)
        else:   # ~10 passes per element: large weights split across cores
            run_split(rows, w.shape[0], w.size * 10)


def _adam_rows(w, g, m, v, v_hat, tmp, beta_1, beta_2, alpha, epsilon):
    """One Adam update of (rows of) a weight, in place through the scratch ``tmp``: no
    weight-sized temporaries per step, and each element computed the same way whichever
    rows are updated together."""
    np.subtract(g, m, out=tmp)            # m += (g - m) * (1 - b1)
    tmp *= 1 - beta_1
    m += tmp
    np.multiply(g, g, out=tmp)            # v += (g * g - v) * (1 - b2)
    tmp -= v
    tmp *= 1 - beta_2
    v += tmp
    if v_hat is not None:                 # AMSGrad
        np.maximum(v_hat, v, out=v_hat)
        v = v_hat
    np.sqrt(v, out=tmp)                   # w -= alpha * m / (sqrt(v) + eps)
    tmp += epsilon
    np.divide(m, tmp, out=tmp)
    tmp *= alpha
    w -= tmp


OPTIMIZERS = {cls.TYPE: cls for cls in (SGD, RMSprop, Adam)}
# Keras class names are accepted too ("Adam", "SGD", "RMSprop").
_NAMES = {**OPTIMIZERS, "SGD": SGD, "RMSprop": RMSprop, "Adam": Adam}


def get_optimizer(name_or_config) -> Optimizer:
    """``"adam"`` or ``{"type": "sgd", "learning_rate": 0.1, "momentum": 0.9}``."""
    if isinstance(name_or_config, Optimizer):
        return name_or_config
    if isinstance(name_or_config, str):
        name, config = name_or_config, {}
    elif isinstance(name_or_config, dict):
        config = dict(name_or_config)
        name = config.pop("type", None)
        if not isinstance(name, str):
            raise SpecError("an optimizer given as a mapping needs a 'type'",
                            path="optimizer")
    else:
        raise SpecError(f"an optimizer is a name or a mapping with a 'type', got "
                        f"{type(name_or_config).__name__}", path="optimizer")
    cls = _NAMES.get(name) or _NAMES.get(name.lower())
    if cls is None:
        raise SpecError(f"unknown optimizer '{name}'; use one of "
                        f"{', '.join(sorted(OPTIMIZERS))}", path="optimizer.type")
    return cls(**config)


def _schema_for(cls) -> dict:
    return {"type": "object", "required": ["type"], "additionalProperties": False,
            "properties": {"type": {"const": cls.TYPE}, **cls.all_args()}}


# For spec validation: a name, or a mapping {type: ..., <Keras arguments>}.
OPTIMIZER_SCHEMA = {
    "oneOf": [{"enum": sorted(OPTIMIZERS)}, *(_schema_for(c) for c in OPTIMIZERS.values())],
}
