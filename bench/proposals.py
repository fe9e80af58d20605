"""Proposed changes to files the benchmark owner does not own, applied as patches only
by ``python -m bench --with-proposals`` so their effect can be measured before the
owners adopt them. Nothing here runs in the library, the tests or a default benchmark.

Each ``apply_*`` returns a one-line description of what it patched, or raises if the
code it patches has changed shape (then the proposal needs revisiting, not forcing).
"""
from __future__ import annotations

import contextlib
import copy
import functools
import gc
import math
import re

import numpy as np


# -- graphspec/train/optimizers.py: updates in place, one shared scratch buffer ------------

def _scratch(opt, w):
    """An array shaped like ``w`` from one buffer reused for every parameter and step
    (sized by the largest parameter; not optimizer state, never checkpointed)."""
    buf = opt.__dict__.get("_scratch_buffer")
    if buf is None or buf.dtype != w.dtype or buf.size < w.size:
        buf = opt.__dict__["_scratch_buffer"] = np.empty(max(w.size, 1), w.dtype)
    return buf[:w.size].reshape(w.shape)


def adam_update(self, w, g, slots, lr):
    """Keras' Adam with no temporaries: 12 in-place passes instead of ~11 passes that
    allocate a weight-sized array each (and, before the allocator tuning, page-faulted)."""
    beta_1, beta_2 = self.config["beta_1"], self.config["beta_2"]
    step = self.iterations + 1
    alpha = lr * math.sqrt(1 - beta_2 ** step) / (1 - beta_1 ** step)
    m, v = slots["momentum"], slots["velocity"]
    tmp = _scratch(self, w)
    np.subtract(g, m, out=tmp)            # m += (g - m) * (1 - b1)
    tmp *= 1 - beta_1
    m += tmp
    np.multiply(g, g, out=tmp)            # v += (g * g - v) * (1 - b2)
    tmp -= v
    tmp *= 1 - beta_2
    v += tmp
    if self.config["amsgrad"]:
        v_hat = slots["velocity_hat"]
        np.maximum(v_hat, v, out=v_hat)
        v = v_hat
    np.sqrt(v, out=tmp)                   # w -= alpha * m / (sqrt(v) + eps)
    tmp += self.config["epsilon"]
    np.divide(m, tmp, out=tmp)
    tmp *= alpha
    w -= tmp


def rmsprop_update(self, w, g, slots, lr):
    rho, eps = self.config["rho"], self.config["epsilon"]
    v = slots["velocity"]
    tmp = _scratch(self, w)
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
    optimizers.Adam._update = adam_update
    optimizers.RMSprop._update = rmsprop_update
    return "optimizers: Adam and RMSprop updates in place with one shared scratch buffer"


# -- graphspec/spec/{loader,validate}.py and api.py: the spec pipeline ---------------------

def _layer_type(validator, by_type, instance, schema):
    """``x-layer-type``: validate a layer against its own type's schema only (the
    published schema's ``allOf`` of one ``if``/``then`` per layer type evaluates every
    type's ``if`` for every layer)."""
    if isinstance(instance, dict) and isinstance(instance.get("type"), str):
        sub = by_type.get(instance["type"])
        if sub is not None:
            yield from validator.descend(instance, sub)


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


def _inline(node, defs, keep=("layer",)):
    """The schema with every ``$ref`` to a non-recursive definition replaced by it."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/") and len(node) == 1:
            name = ref[len("#/$defs/"):]
            if name not in keep:
                return _inline(defs[name], defs, keep)
        return {k: _inline(v, defs, keep) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v, defs, keep) for v in node]
    return node


def validation_schema(published: dict) -> dict:
    """The schema the validator uses: same acceptance, same error messages, cheaper."""
    schema = copy.deepcopy(published)
    defs = schema["$defs"]
    layer = defs["layer"]
    layer["x-layer-type"] = {c["if"]["properties"]["type"]["const"]: c["then"]
                             for c in layer.pop("allOf")}
    call = defs["call"]["properties"]
    for key in ("in", "out"):          # a name or a list of names: exclusive branches
        if "oneOf" in call[key]:
            call[key] = {"anyOf": call[key]["oneOf"]}
    schema = _inline(schema, schema["$defs"])
    calls = schema["properties"]["models"]["additionalProperties"]["properties"]["calls"]
    calls["items"] = {"x-fast-call": calls["items"]}
    return schema


@contextlib.contextmanager
def no_gc():
    """No cyclic-GC passes while a spec is read, validated and compiled: the pipeline
    makes hundreds of thousands of long-lived objects and no garbage cycles, and gen-2
    passes over them made composing a 10,000-node spec ~5x slower."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def apply_spec_pipeline() -> str:
    global _NAME
    import types

    import jsonschema
    import yaml

    import graphspec.api as api
    from graphspec.spec import loader, schema as schema_module, validate

    _NAME = re.compile(schema_module.NAME_PATTERN)
    done = []
    if getattr(yaml, "__with_libyaml__", False):
        shim = types.SimpleNamespace(**{k: getattr(yaml, k) for k in dir(yaml)
                                        if not k.startswith("__")})
        shim.SafeLoader = yaml.CSafeLoader     # libyaml composes; same nodes and marks
        loader.yaml = shim
        done.append("libyaml composer")
    fast = jsonschema.validators.extend(
        validate._Validator, validators={"x-layer-type": _layer_type,
                                         "x-fast-call": _fast_call})

    @functools.lru_cache(maxsize=1)
    def _validator():
        return fast(validation_schema(schema_module.spec_schema()))
    validate._validator = _validator
    done.append("schema: layer-type dispatch, inlined $refs, anyOf names, call fast path")
    original_load_file, original_check = api.load_file, api._check

    def load_file(path):
        with no_gc():
            return original_load_file(path)

    def check(located, params, dtype):
        with no_gc():
            return original_check(located, params, dtype)
    api.load_file, api._check = load_file, check
    done.append("no GC passes while loading")
    return "spec pipeline: " + ", ".join(done)


PROPOSALS = {"optimizers": apply_optimizers, "spec": apply_spec_pipeline}


def apply_all() -> list:
    applied = []
    for name, fn in PROPOSALS.items():
        try:
            applied.append(fn())
        except Exception as exc:   # the patched code moved on: report, do not force
            applied.append(f"{name}: NOT applied ({type(exc).__name__}: {exc})")
    return applied
