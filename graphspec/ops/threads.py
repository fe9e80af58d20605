"""A small persistent pool that splits large elementwise numpy passes across cores.

numpy's BLAS already runs matrix products on every core, but its ufuncs and copies run
on one: on a 2-core box the ReLU masks, pooling, im2col copies and optimizer updates of
a training step leave the second core idle. Large ufunc loops and copies release the
GIL, so running one half of such a pass in a helper thread while the calling thread
runs the other half gives ~1.6x on arrays of a million elements (measured, 2-core
SkylakeX); a hand-off costs ~20 µs, so arrays below :data:`MIN_ELEMENTS` are never split.

Results do not depend on the split: :func:`run_split` hands each part a disjoint range
of rows (the leading axis) and every element is computed by the same numpy call it
would be without threads, so threaded and unthreaded results are bit-identical. Passes
that sum over rows are not split here.

The helper threads are daemons started on first use (importing this module starts
nothing), restarted after a ``fork``. ``GRAPHSPEC_THREADS=1`` turns splitting off; a
nested or concurrent call (another thread already using the pool) runs unsplit.
"""
from __future__ import annotations

import os
import threading

# Below this many elements per pass the hand-off costs more than the second core
# saves (a 262k-element multiply: 115 µs on one thread, 108-143 µs split).
MIN_ELEMENTS = 1 << 19


def _wanted_threads() -> int:
    setting = os.environ.get("GRAPHSPEC_THREADS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))   # beyond 4 parts memory bandwidth, not cores, limits


class _Helper:
    """One daemon thread running the callables handed to it, one at a time."""

    def __init__(self):
        self.ready = threading.Event()
        self.done = threading.Event()
        self.job = None
        self.error = None
        threading.Thread(target=self._loop, name="graphspec-split", daemon=True).start()

    def _loop(self):
        while True:
            self.ready.wait()
            self.ready.clear()
            try:
                self.job()
            except BaseException as exc:   # handed back to the caller by wait()
                self.error = exc
            self.job = None
            self.done.set()

    def start(self, job):
        self.error = None
        self.done.clear()
        self.job = job
        self.ready.set()

    def wait(self):
        self.done.wait()
        error, self.error = self.error, None
        if error is not None:
            raise error


class _Pool:
    def __init__(self):
        self.lock = threading.Lock()
        self.helpers: list = []
        self.pid = None
        self.parts = None

    def size(self) -> int:
        if self.parts is None:
            self.parts = _wanted_threads()
        return self.parts

    def helpers_for(self, count: int) -> list:
        if self.pid != os.getpid():      # first use, or a forked child: threads are gone
            self.helpers, self.pid = [], os.getpid()
        while len(self.helpers) < count:
            self.helpers.append(_Helper())
        return self.helpers[:count]


_POOL = _Pool()


def parts_for(elements: int, rows: int) -> int:
    """How many parts a pass over ``elements`` elements in ``rows`` rows is split into."""
    if elements < MIN_ELEMENTS or rows < 2:
        return 1
    return min(_POOL.size(), rows, elements // (MIN_ELEMENTS // 2))


def bounds(rows: int, parts: int) -> list:
    """``parts`` contiguous ``(start, stop)`` row ranges covering ``range(rows)``."""
    cuts = [rows * k // parts for k in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def run_split(work, rows: int, elements: int) -> None:
    """Call ``work(start, stop)`` on disjoint row ranges covering ``range(rows)``, in
    parallel when the pass is large (``elements`` in all) and the pool is free; else
    once, ``work(0, rows)``. ``work`` must only touch its own rows."""
    parts = parts_for(elements, rows)
    if parts == 1 or not _POOL.lock.acquire(blocking=False):
        work(0, rows)
        return
    try:
        ranges = bounds(rows, parts)
        helpers = _POOL.helpers_for(parts - 1)
        for helper, (start, stop) in zip(helpers, ranges[1:]):
            helper.start(lambda a=start, b=stop: work(a, b))
        try:
            work(*ranges[0])
        finally:
            errors = []
            for helper in helpers:
                try:
                    helper.wait()
                except BaseException as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
    finally:
        _POOL.lock.release()


def split_map(fn, outputs, *inputs) -> None:
    """``fn(*input_parts, out=output_part)`` over row ranges: an elementwise ufunc (or
    any function of that form) applied to arrays with the same leading axis, each part
    written into its own rows of ``outputs`` (one array or a tuple)."""
    first = outputs[0] if isinstance(outputs, tuple) else outputs
    rows = first.shape[0] if first.ndim else 1

    def work(start, stop):
        parts = [a[start:stop] if getattr(a, "ndim", 0) == first.ndim and a.shape[0] == rows
                 else a for a in inputs]     # others broadcast against each part
        out = tuple(o[start:stop] for o in outputs) if isinstance(outputs, tuple) \
            else outputs[start:stop]
        fn(*parts, out=out)
    if first.ndim == 0:
        fn(*inputs, out=outputs)
        return
    run_split(work, rows, first.size)
