"""Rows done, rows/s and time left for long predict/evaluate runs, on stderr.

It is train's :class:`~graphspec.train.progress.ProgressBar` with rows as steps and a
different line. Drawn in place on a terminal; off a terminal (CI logs, pipes) one final
line, and only for runs long enough to care (``quiet_below`` seconds), so short
commands stay quiet.
"""
from __future__ import annotations

import time

from ..train.progress import ProgressBar


class RowsProgress(ProgressBar):
    def __init__(self, label: str, total_rows: int, enabled: bool = True, stream=None,
                 quiet_below: float = 2.0):
        super().__init__(1, 1, total_rows, enabled=enabled, stream=stream)
        self.label, self.quiet_below, self.done = label, quiet_below, 0

    def _line(self, step: int, logs: dict) -> str:
        done = int(self.WIDTH * step / self.steps)
        bar = "=" * max(done - 1, 0) + (">" if done < self.WIDTH else "=") + \
            "." * (self.WIDTH - done)
        elapsed = time.perf_counter() - self.start
        rate = step / elapsed if elapsed > 0 else 0.0
        left = (self.steps - step) / rate if rate > 0 else 0.0
        tail = f"ETA {left:.0f}s" if step < self.steps else f"{elapsed:.1f}s"
        return f"{self.label} {step}/{self.steps} rows [{bar}] {rate:,.0f} rows/s {tail}"

    def advance(self, rows: int) -> None:
        self.done += rows
        self.update(min(self.done, self.steps), {})

    def finish(self, logs: dict | None = None) -> None:
        elapsed = time.perf_counter() - self.start
        if self.live or elapsed >= self.quiet_below:
            super().finish(logs or {})
