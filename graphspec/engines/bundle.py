"""What an engine ships to a worker so the worker can run the model itself.

A bundle is the spec with its params already substituted, as JSON text (JSON is YAML
1.2, so the worker's loader reads it as the same spec), the weights as plain arrays,
the model's name, and — for evaluate — the training job's name and overrides. Nothing
else: no Python objects of the compiled graph, so a worker never unpickles code from
the client, and a different graphspec version on a worker fails on the spec, loudly.

``key`` is a hash of all of it. A worker compiles a bundle once per key (and per
thread: a compiled model is not shared between threads) and keeps the last few, so an
engine sends a bundle once per worker and every chunk reuses the compiled model.
"""
from __future__ import annotations

import collections
import hashlib
import json
import threading
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

_COMPILED: collections.OrderedDict = collections.OrderedDict()
_COMPILED_MAX = 8
_LOCK = threading.Lock()


@dataclass(frozen=True)
class ModelBundle:
    spec_text: str
    source: str                 # the spec's file name, for messages
    dtype: str
    model_name: str
    weights: dict = field(repr=False)
    job_name: str | None = None
    job_overrides: dict | None = None
    key: str = ""

    @classmethod
    def from_model(cls, model, job_name=None, job_overrides=None) -> "ModelBundle":
        graph = model.graph
        if graph is None or graph.spec is None:
            raise InputError(f"model '{model.name}' was not compiled from a spec; the Dask "
                             "engine ships specs, not Python objects")
        try:
            text = json.dumps(graph.spec, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{graph.file}: cannot ship this spec to workers ({exc})") \
                from None
        weights = {key: np.ascontiguousarray(var.data) for key, var in graph.weights().items()}
        overrides = json.loads(json.dumps(job_overrides or {}, sort_keys=True))
        digest = hashlib.sha256()
        for part in (text, graph.dtype, model.name, str(job_name),
                     json.dumps(overrides, sort_keys=True)):
            digest.update(part.encode() + b"\0")
        for key in sorted(weights):
            array = weights[key]
            digest.update(f"{key}{array.shape}{array.dtype}".encode())
            digest.update(memoryview(array).cast("B"))
        return cls(text, str(graph.file), graph.dtype, model.name, weights, job_name,
                   overrides, digest.hexdigest())

    # -- on the worker -----------------------------------------------------------------
    def _compiled(self) -> dict:
        slot = (self.key, threading.get_ident())
        with _LOCK:
            entry = _COMPILED.get(slot)
            if entry is not None:
                _COMPILED.move_to_end(slot)
                return entry
        from .. import api
        graph = api.loads(self.spec_text, seed=0, dtype=self.dtype, name=self.source)
        graph.set_weights(self.weights, source=f"weights shipped for {self.source}")
        entry = {"graph": graph, "model": graph.model(self.model_name)}
        with _LOCK:
            _COMPILED[slot] = entry
            while len(_COMPILED) > _COMPILED_MAX:
                _COMPILED.popitem(last=False)
        return entry

    def model(self):
        """The compiled model, built on first use in this process and thread."""
        return self._compiled()["model"]

    def trainer(self):
        """A Trainer for the bundle's job (evaluate only: nothing is trained on workers)."""
        entry = self._compiled()
        if "trainer" not in entry:
            from ..train.job import build_job
            from ..train.trainer import Trainer
            graph = entry["graph"]
            entry["trainer"] = Trainer(graph, build_job(graph, self.job_name, self.model_name,
                                                        self.job_overrides or {}))
        return entry["trainer"]


def compiled_keys() -> list:
    """The key of every bundle this process has compiled and kept, once per thread that
    compiled it (tests check that a worker compiles a run's bundle once)."""
    with _LOCK:
        return [key for key, _ in _COMPILED]


# -- payloads shipped to worker processes (see engines/dask_plugin.py) -----------------------
_SHIPPED: dict = {}


def receive(key: str, payload) -> None:
    """Keep ``payload`` in this process under ``key`` (a worker plugin's setup)."""
    with _LOCK:
        _SHIPPED[key] = payload


def discard(key: str) -> None:
    with _LOCK:
        _SHIPPED.pop(key, None)


def shipped(key: str):
    """The payload shipped under ``key``; a clear error if this process never got it."""
    with _LOCK:
        payload = _SHIPPED.get(key)
    if payload is None:
        raise InputError(f"this worker has no shipped payload '{key}' (it joined after the "
                         "run started, or the run was cancelled); run the command again")
    return payload
