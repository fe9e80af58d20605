"""Ctrl-C while the local Dask cluster starts: the half-started cluster is closed (or
dropped) by the run, so distributed's exit hook has nothing left to close and prints
no traceback after "interrupted"."""
import pytest

from graphspec.engines import dask_engine

distributed = pytest.importorskip("distributed")
spec = pytest.importorskip("distributed.deploy.spec")


class HalfStarted:
    """What LocalCluster leaves in SpecCluster._instances when interrupted in __init__:
    its close fails as a half-started cluster's does."""
    shutdown_on_close = True
    closed = 0

    def __init__(self):
        self.status = spec.Status.init

    def close(self, timeout=None):
        HalfStarted.closed += 1
        raise AssertionError("Status.init")


def test_interrupt_while_the_local_cluster_starts(monkeypatch):
    left = []

    def interrupted_cluster(**kwargs):
        cluster = HalfStarted()
        left.append(cluster)
        spec.SpecCluster._instances.add(cluster)
        raise KeyboardInterrupt

    monkeypatch.setattr(distributed, "LocalCluster", interrupted_cluster)
    try:
        with pytest.raises(KeyboardInterrupt):
            with dask_engine.connect(workers=1):
                pytest.fail("no client without a cluster")
        assert HalfStarted.closed == 1          # the run tried to close it...
        assert left[0] not in spec.SpecCluster._instances   # ...and left nothing at exit
        spec.close_clusters()                   # the atexit hook: no AssertionError
    finally:
        spec.SpecCluster._instances.discard(left[0])
