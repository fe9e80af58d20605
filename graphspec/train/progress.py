"""A Keras-like progress bar: one line per epoch, redrawn in place on a terminal.

Off a terminal (CI logs, pipes) only the finished epoch line is printed, so logs stay
readable.
"""
from __future__ import annotations

import sys
import time


def format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {v:.4f}" for k, v in logs.items() if k != "skipped")


class ProgressBar:
    WIDTH = 30

    def __init__(self, epoch: int, epochs: int, steps: int, enabled: bool = True, stream=None):
        self.epoch, self.epochs, self.steps = epoch, epochs, max(steps, 1)
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_draw = 0.0

    def _line(self, step: int, logs: dict) -> str:
        done = int(self.WIDTH * step / self.steps)
        bar = "=" * max(done - 1, 0) + (">" if done < self.WIDTH else "=") + \
            "." * (self.WIDTH - done)
        elapsed = time.perf_counter() - self.start
        return (f"Epoch {self.epoch}/{self.epochs} {step}/{self.steps} [{bar}] "
                f"{elapsed:.1f}s - {format_logs(logs)}")

    def update(self, step: int, logs: dict) -> None:
        now = time.perf_counter()
        if self.live and (now - self._last_draw > 0.1 or step == self.steps):
            self.stream.write("\r" + self._line(step, logs) + "\033[K")
            self.stream.flush()
            self._last_draw = now

    def finish(self, logs: dict) -> None:
        if not self.enabled:
            return
        prefix = "\r" if self.live else ""
        self.stream.write(prefix + self._line(self.steps, logs) + "\033[K\n" if self.live
                          else self._line(self.steps, logs) + "\n")
        self.stream.flush()
