"""The pieces of the fit loop that are not about the model: the epoch's running sums,
the validation split, and Ctrl-C held back until a step has finished."""
from __future__ import annotations

import contextlib
import signal
import threading

import numpy as np

from ..errors import InputError


class EpochSums:
    """Running, sample-weighted sums of one epoch's batch logs. Skipped batches (a
    non-finite loss under ``on_nan="skip"``) are counted, not averaged in."""

    def __init__(self, sums=None, seen: int = 0, skipped: int = 0):
        self.sums, self.seen, self.skipped = dict(sums or {}), int(seen), int(skipped)

    def add(self, logs: dict, rows: int) -> None:
        if logs.get("skipped"):
            self.skipped += 1
            return
        for k, v in logs.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * rows
        self.seen += rows

    def logs(self, state: dict, count_skipped: bool) -> dict:
        out = {k: v / self.seen for k, v in self.sums.items()} if self.seen else \
            {"loss": float("nan")}
        out.update(state)
        if count_skipped:
            out["skipped"] = float(self.skipped)
        return out

    def as_dict(self) -> dict:
        return {"sums": self.sums, "seen": self.seen, "skipped": self.skipped}


class DeferredInterrupt:
    """With a checkpoint to write, a first Ctrl-C stops training at the next batch
    boundary, so a step (forward, backward, the in-place weight update) is never cut in
    half; a second Ctrl-C stops at once. Only in the main thread, and only where
    SIGINT still has Python's default handler (someone else's handler is left alone)."""

    def __init__(self):
        self.pending = False

    def take(self) -> bool:
        """Whether a Ctrl-C is pending; clears it."""
        pending, self.pending = self.pending, False
        return pending

    def raise_if_pending(self) -> None:
        if self.take():
            raise KeyboardInterrupt

    def _handler(self, signum, frame):
        if self.pending:
            raise KeyboardInterrupt
        self.pending = True

    @contextlib.contextmanager
    def deferred(self, enabled: bool):
        self.pending = False
        if not enabled or threading.current_thread() is not threading.main_thread() \
                or signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
            yield
            return
        signal.signal(signal.SIGINT, self._handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.pending = False


def split_validation(size: int, validation_split: float):
    """Keras takes the validation samples from the end, before any shuffling."""
    if not 0 <= validation_split < 1:
        raise InputError(f"validation_split must be in [0, 1), got {validation_split}")
    n_val = int(size * validation_split) if validation_split else 0
    if n_val >= size:
        raise InputError(f"validation_split {validation_split} leaves no training samples "
                         f"out of {size}; use a smaller split or more data")
    indices = np.arange(size)
    return indices[: size - n_val], indices[size - n_val:]
