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
nothing), restarted after a ``fork``. A nested or concurrent call (another thread
already using the pool) runs unsplit. Off unless ``GRAPHSPEC_THREADS`` asks for it:
in whole training steps it did not pay on the 2-core box (see :func:`_wanted_threads`).
"""
from __future__ import annotations

import itertools
import os
import queue
import threading

# Below this many elements per pass the hand-off costs more than the second core
# saves (a 262k-element multiply: 115 µs on one thread, 108-143 µs split).
MIN_ELEMENTS = 1 << 19


def _wanted_threads() -> int:
    """``GRAPHSPEC_THREADS`` (a count, or ``auto`` for the usable cores up to 4); 1 by
    default: in whole training steps on the 2-core box the split did not pay (OpenBLAS
    keeps its worker spinning on the second core for a while after each GEMM, and the
    helper thread competes with it; MLP step 0.95x -> 1.26x PyTorch, CNN 1.68x ->
    1.84x with it on, bench/README.md)."""
    setting = os.environ.get("GRAPHSPEC_THREADS", "").strip().lower()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    if setting != "auto":
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))   # beyond 4 parts memory bandwidth, not cores, limits


class _Job:
    """One split pass: fixed row ranges claimed one at a time by whichever thread is
    free. The caller claims ranges too and waits only for ranges a helper has already
    claimed, so a helper the OS has not scheduled yet (a loaded box) costs nothing: it
    finds the ranges gone when it wakes."""

    def __init__(self, work, ranges):
        self.work, self.ranges = work, ranges
        self.claims = itertools.count()           # next() is atomic under the GIL
        self.lock = threading.Lock()
        self.finished = 0
        self.all_done = threading.Event()
        self.error = None

    def run(self) -> None:
        while True:
            k = next(self.claims)
            if k >= len(self.ranges):
                return
            try:
                self.work(*self.ranges[k])
            except BaseException as exc:      # handed to the caller
                self.error = self.error or exc
            with self.lock:
                self.finished += 1
                if self.finished == len(self.ranges):
                    self.all_done.set()


class _Helper:
    """One daemon thread running the jobs queued for it."""

    def __init__(self):
        self.jobs = queue.SimpleQueue()
        threading.Thread(target=self._loop, name="graphspec-split", daemon=True).start()

    def _loop(self):
        while True:
            self.jobs.get().run()


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
RANGES_PER_THREAD = 2     # a late helper's share is taken over by the others


def parts_for(elements: int, rows: int) -> int:
    """How many threads a pass over ``elements`` elements in ``rows`` rows is split
    across (1: not split)."""
    if elements < MIN_ELEMENTS or rows < 2:
        return 1
    return min(_POOL.size(), rows, elements // (MIN_ELEMENTS // 2))


def bounds(rows: int, parts: int) -> list:
    """``parts`` contiguous ``(start, stop)`` row ranges covering ``range(rows)``."""
    cuts = [rows * k // parts for k in range(parts + 1)]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def run_split(work, rows: int, elements: int) -> None:
    """Call ``work(start, stop)`` on disjoint row ranges covering ``range(rows)``, in
    parallel when the pass is large (``elements`` in all) and the pool is free; else
    once, ``work(0, rows)``. ``work`` must only touch its own rows. The ranges depend
    only on ``rows`` and the pool size, never on which thread runs them."""
    threads = parts_for(elements, rows)
    if threads == 1 or not _POOL.lock.acquire(blocking=False):
        work(0, rows)
        return
    try:
        job = _Job(work, bounds(rows, min(rows, threads * RANGES_PER_THREAD)))
        for helper in _POOL.helpers_for(threads - 1):
            helper.jobs.put(job)
        job.run()
        job.all_done.wait()
        if job.error is not None:
            raise job.error
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
