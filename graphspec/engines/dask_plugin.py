"""Shipping a payload (a model bundle, a sweep's data) to every Dask worker once.

A worker plugin rather than ``client.scatter``: scattered data has no recipe, so when a
worker dies the cluster may have lost the only replica (the active memory manager
trims broadcast copies), and every task that needs it fails. A plugin is re-run on
every worker that joins — a restarted one included — so each worker holds the payload
for the whole run, received once, and tasks only carry its key.

This module imports distributed at the top: only the Dask engine imports it, inside
its functions.
"""
from __future__ import annotations

import contextlib
import uuid

from distributed import WorkerPlugin

from . import bundle


class Ship(WorkerPlugin):
    def __init__(self, key: str, payload):
        self.key, self.payload = key, payload

    def setup(self, worker):
        bundle.receive(self.key, self.payload)

    def teardown(self, worker):
        bundle.discard(self.key)


@contextlib.contextmanager
def ship(client, payload, prefix: str = "graphspec"):
    """Yield the key under which every worker (present or joining) has ``payload``."""
    key = f"{prefix}-{uuid.uuid4().hex[:16]}"
    client.register_plugin(Ship(key, payload), name=key)
    try:
        yield key
    finally:
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(key)
