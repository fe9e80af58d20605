"""Proposed changes to files the benchmark owner does not own, applied as patches only
by ``python -m bench --with-proposals`` so their effect can be measured before the
owners adopt them. Nothing here runs in the library, the tests or a default benchmark.

Each ``apply_*`` returns a one-line description of what it patched, or raises if the
code it patches has changed shape (then the proposal needs revisiting, not forcing).
"""
from __future__ import annotations

import copy
import functools
import re

import numpy as np


# -- graphspec/train/optimizers.py: RMSprop in place, as Adam already is ----------------

def rmsprop_update(self, w, g, slots, lr):
    rho, eps = self.config["rho"], self.config["epsilon"]
    v = slots["velocity"]
    tmp = self._scratch(w)
    np.multiply(g, g, out=tmp)            # v = rho * v + (1 - rho) * g**2
    tmp *= 1 - rho
    v *= rho
    v += tmp
    if self.config["centered"]:
        a = slots["average_gradient"]
        a *= rho
        np.multiply(g, 1 - rho, out=tmp)
        a += tmp
        np.multiply(a, a, out=tmp)        # den = v - a**2 + eps
        np.subtract(v, tmp, out=tmp)
    else:
        np.copyto(tmp, v)
    tmp += eps
    np.sqrt(tmp, out=tmp)                 # inc = lr * g / sqrt(den)
    np.divide(g, tmp, out=tmp)
    tmp *= lr
    if self.config["momentum"] > 0:
        mom = slots["momentum"]
        mom *= self.config["momentum"]
        mom += tmp
        w -= mom
    else:
        w -= tmp


def apply_optimizers() -> str:
    from graphspec.train import optimizers
    optimizers.RMSprop._update = rmsprop_update
    return "optimizers: RMSprop updates in place with the shared scratch buffer (Adam adopted)"


# -- graphspec/spec/{loader,validate}.py and api.py: the spec pipeline ---------------------

def _fast_call(validator, full, instance, schema):
    """``x-fast-call``: accept the common call ``{layer: name, in: name(s), out:
    name(s)}`` with plain checks (a strict subset of what the call schema accepts);
    anything else goes through the full call schema, so every error is unchanged."""
    if (type(instance) is dict and len(instance) <= 4 and "layer" in instance
            and "in" in instance and "out" in instance
            and _CALL_KEYS.issuperset(instance) and _name_ok(instance["layer"])
            and _names_ok(instance["in"]) and _names_ok(instance["out"])
            and type(instance.get("description", "")) is str):
        return
    yield from validator.descend(instance, full)


_CALL_KEYS = frozenset(("layer", "in", "out", "description"))
_NAME = None


def _name_ok(value):
    return type(value) is str and len(value) <= 128 and _NAME.search(value) is not None


def _names_ok(value):
    if type(value) is str:
        return _name_ok(value)
    return type(value) is list and len(value) > 0 and all(_name_ok(v) for v in value)


def _with_fast_calls(schema: dict) -> dict:
    """The library's validation schema with the call fast path added."""
    schema = copy.deepcopy(schema)
    call = schema["$defs"]["call"]
    schema["$defs"]["call"] = {"x-fast-call": call}
    return schema


def apply_spec_pipeline() -> str:
    """Layer-type dispatch, no GC while loading and libyaml are in the library already;
    this adds only the plain-call fast path."""
    global _NAME
    import jsonschema

    from graphspec.spec import schema as schema_module, validate

    _NAME = re.compile(schema_module.NAME_PATTERN)
    fast = jsonschema.validators.extend(
        validate._Validator, validators={"x-layer-type": validate._layer_type,
                                         "x-fast-call": _fast_call})

    @functools.lru_cache(maxsize=1)
    def _validator():
        return fast(_with_fast_calls(validate.validation_schema(schema_module.spec_schema())))
    validate._validator = _validator
    return "spec pipeline: call fast path"


PROPOSALS = {"optimizers": apply_optimizers, "spec": apply_spec_pipeline}


def apply_all() -> list:
    applied = []
    for name, fn in PROPOSALS.items():
        try:
            applied.append(fn())
        except Exception as exc:   # the patched code moved on: report, do not force
            applied.append(f"{name}: NOT applied ({type(exc).__name__}: {exc})")
    return applied
