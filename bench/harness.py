"""Timing, environment report, tables and the JSON record of a benchmark run."""
from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np

# Environment variables that change which BLAS kernel runs or how threads behave. They
# are reported, never set: the suite runs the machine as it is configured.
ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS",
            "OPENBLAS_VERBOSE", "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
            "MKL_NUM_THREADS", "KMP_BLOCKTIME")


# -- timing ---------------------------------------------------------------------------------

@dataclass
class Timing:
    samples: list = field(repr=False)
    blocks: list = field(default_factory=list, repr=False)   # per-round block medians

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def best(self) -> float:
        return min(self.samples)

    def quantile(self, q: float) -> float:
        return float(np.quantile(self.samples, q))

    def as_dict(self) -> dict:
        return {"median_s": self.median, "min_s": self.best, "p25_s": self.quantile(0.25),
                "p75_s": self.quantile(0.75), "n": len(self.samples),
                "rounds": len(self.blocks)}


def paired_ratio(a: Timing, b: Timing) -> float:
    """The median over rounds of (a's block median / b's block median).

    The box's speed drifts by tens of percent over seconds (other virtual machines on
    the host, frequency changes), so two medians taken over the whole run carry that
    drift; blocks of the same round ran within a second of each other, and the median
    of their ratios cancels it. Falls back to the ratio of medians without blocks."""
    if a.blocks and len(a.blocks) == len(b.blocks):
        return statistics.median(x / y for x, y in zip(a.blocks, b.blocks))
    return a.median / b.median


# OpenBLAS worker threads busy-wait for about 0.1 s after each BLAS call before they
# sleep (measured on the 2-core benchmark box: a full core of CPU time for ~100 ms);
# torch's OpenMP workers spin for a few ms. A library that starts while the other one's
# workers still spin shares the cores with them and runs up to several times slower, so
# alternating call by call measures the hand-over, not the libraries. Each block of
# calls is therefore preceded by a pause long enough for every pool to go to sleep.
PAUSE_SECONDS = 0.15


def alternate(fns: dict, budget: float, warmup: int = 3, block_seconds: float = 0.08,
              pause: float | None = None, settle_calls: int = 1, min_rounds: int = 5,
              max_rounds: int = 200) -> dict:
    """Time the callables of ``fns`` against each other, alternating, in one process.

    Each round runs every callable for one *block* of consecutive calls lasting about
    ``block_seconds``, the order rotating from round to round so slow drifts of the
    machine hit every variant alike. Before each block the harness sleeps ``pause``
    seconds (see ``PAUSE_SECONDS``) and the first ``settle_calls`` calls of the block
    are run but not recorded (thread pools waking up). Warm-up calls come first; the
    number of rounds is then chosen so the timed blocks take about ``budget`` seconds.
    Returns ``{name: Timing}`` over the recorded calls.
    """
    pause = PAUSE_SECONDS if pause is None else pause
    names = list(fns)
    clock = time.perf_counter
    per_call = {}
    for name in names:
        time.sleep(pause)
        fn, times = fns[name], []
        start = clock()
        while len(times) < warmup or clock() - start < 0.1:
            t0 = clock()
            fn()
            times.append(clock() - t0)
            if len(times) >= 1000:
                break
        per_call[name] = max(statistics.median(times[1:] or times), 1e-7)
    calls = {name: settle_calls + int(min(1000, max(3, block_seconds / per_call[name])))
             for name in names}
    round_time = sum(calls[n] * per_call[n] for n in names)
    rounds = int(min(max_rounds, max(min_rounds, budget / max(round_time, 1e-9))))
    samples = {name: [] for name in names}
    blocks = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, keep = fns[name], samples[name]
            time.sleep(pause)
            block = []
            for i in range(calls[name]):
                t0 = clock()
                fn()
                t1 = clock()
                if i >= settle_calls:
                    block.append(t1 - t0)
            keep.extend(block)
            blocks[name].append(statistics.median(block))
    return {name: Timing(samples[name], blocks[name]) for name in names}


def time_once(fn, repeats: int = 1) -> float:
    """Best wall time of ``repeats`` calls, for slow one-shot measurements (compiling a
    spec): the minimum is the run least disturbed by the rest of the machine, and what
    the growth factors between sizes are computed from."""
    times = []
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


# -- other processes ------------------------------------------------------------------------

class CpuMeter:
    """CPU time used by *other* processes between ``start()`` and ``stop()``, in CPUs
    (1.0 = one core busy all the time), from /proc/stat minus this process's own time.
    On a 2-core box a test suite running beside the benchmark halves the cores
    graphspec and its references share, so every result records this number."""

    def __init__(self):
        self.available = os.path.exists("/proc/stat")
        self._tick = os.sysconf("SC_CLK_TCK") if self.available else 100

    def _sample(self):
        with open("/proc/stat") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        t = os.times()
        return time.perf_counter(), (sum(fields) - idle) / self._tick, t.user + t.system

    def start(self):
        self._start = self._sample() if self.available else None
        return self

    def stop(self) -> float | None:
        if not self.available or self._start is None:
            return None
        (t0, busy0, own0), (t1, busy1, own1) = self._start, self._sample()
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / max(t1 - t0, 1e-9))


def other_load(seconds: float = 1.0) -> float | None:
    meter = CpuMeter().start()
    time.sleep(seconds)
    return meter.stop()


def wait_until_quiet(limit: float, max_wait: float, threshold: float = 0.15) -> float | None:
    """Wait up to ``max_wait`` seconds for other processes to use < ``threshold`` CPUs
    (measured over one-second windows); returns the last measurement."""
    deadline = time.perf_counter() + max_wait
    load = other_load(1.0)
    while load is not None and load >= threshold and time.perf_counter() < deadline:
        load = other_load(1.0)
    return load


# -- environment ----------------------------------------------------------------------------

def blas_info() -> list:
    """threadpoolctl's view of the BLAS libraries loaded so far (numpy's, before torch)."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    out = []
    for entry in threadpoolctl.threadpool_info():
        if entry.get("user_api") != "blas":
            continue
        path = entry.get("filepath", "")
        owner = "numpy" if f"{os.sep}numpy" in path else \
            "scipy" if f"{os.sep}scipy" in path else "other"
        out.append({**{k: v for k, v in entry.items() if k != "filepath"},
                    "file": os.path.basename(path), "path": path, "owner": owner})
    return out


def blas_threads() -> int:
    """The thread count numpy's BLAS uses (threadpoolctl), else ``os.cpu_count()``."""
    entries = blas_info()
    own = [e for e in entries if "numpy" in e.get("path", "")] or entries
    for entry in own:
        if entry.get("num_threads"):
            return int(entry["num_threads"])
    return os.cpu_count() or 1


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=os.path.dirname(__file__), timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True,
                               cwd=os.path.dirname(__file__), timeout=10)
        commit = out.stdout.strip() or "unknown"
        return commit + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment(torch_module=None) -> dict:
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "blas_threads": blas_threads(),
        "env": {k: os.environ.get(k) for k in ENV_VARS},
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "commit": git_commit(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if torch_module is not None:
        info["torch"] = torch_module.__version__
        info["torch_threads"] = torch_module.get_num_threads()
    return info


def print_environment(info: dict) -> None:
    print(f"graphspec benchmarks @ {info['commit']}  ({info['time']})")
    print(f"python {info['python']}, numpy {info['numpy']}, torch {info.get('torch', 'absent')}"
          f", {info['machine']}, {info['cpu_count']} CPUs, load average "
          f"{', '.join(f'{x:.2f}' for x in info['load_average'] or [])}")
    for entry in info["blas"]:
        print(f"{entry['owner']} BLAS: {entry.get('internal_api')} {entry.get('version')}, kernel "
              f"{entry.get('architecture')}, {entry.get('num_threads')} threads "
              f"({entry.get('threading_layer')}, {entry.get('file')})")
    if not info["blas"]:
        print("BLAS: threadpoolctl not installed; assuming os.cpu_count() threads")
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items() if v is not None) or "none set"
    print(f"BLAS/OpenMP environment: {env}")
    print(f"threads: numpy BLAS {info['blas_threads']}, torch {info.get('torch_threads', '-')}")
    print()


# -- results --------------------------------------------------------------------------------

class Report:
    """Collects every benchmark's numbers and the targets they are held to."""

    def __init__(self):
        self.benchmarks: dict = {}
        self.targets: list = []

    def section(self, name: str, title: str) -> dict:
        print(f"== {title}")
        entry = self.benchmarks.setdefault(name, {"title": title})
        return entry

    def skip(self, name: str, title: str, reason: str) -> None:
        print(f"== {title}\n   skipped: {reason}\n")
        self.benchmarks[name] = {"title": title, "skipped": reason}

    def timings(self, name: str, key: str, timings: dict, base: str = "graphspec",
                unit: str = "ms", per: int = 1) -> None:
        """Print one row per variant: median, IQR, and the ratio ``base`` / variant;
        store the numbers under ``benchmarks[name]["timings"][key]``."""
        scale = {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
        base_t = timings[base].median
        print(f"   {key}:")
        print(f"     {'variant':<26}{'median ' + unit:>12}{'p25..p75':>22}"
              f"{base + ' / this':>20}{'(ratio of medians)':>20}")
        for variant, timing in timings.items():
            med = timing.median / per * scale
            lo, hi = timing.quantile(0.25) / per * scale, timing.quantile(0.75) / per * scale
            print(f"     {variant:<26}{med:>12.3f}{f'{lo:.3f}..{hi:.3f}':>22}"
                  f"{paired_ratio(timings[base], timing):>20.3f}"
                  f"{base_t / timing.median:>20.3f}")
        print(f"     ({len(timings[base].samples)} timed graphspec calls in "
              f"{len(timings[base].blocks)} rounds of alternating blocks; the ratio is the "
              "median of per-round ratios)")
        self.benchmarks[name].setdefault("timings", {})[key] = {
            variant: timing.as_dict() for variant, timing in timings.items()}

    def ratio(self, name: str, key: str, value: float) -> None:
        self.benchmarks[name].setdefault("ratios", {})[key] = value

    def value(self, name: str, key: str, value) -> None:
        self.benchmarks[name].setdefault("values", {})[key] = value

    def target(self, label: str, value: float, limit: float, unit: str = "x") -> None:
        self.targets.append({"label": label, "value": value, "limit": limit, "unit": unit,
                             "ok": bool(value <= limit)})

    def print_targets(self) -> None:
        print("== Targets")
        for t in self.targets:
            mark = "ok  " if t["ok"] else "MISS"
            print(f"   {mark} {t['label']:<52}{t['value']:>10.3f} {t['unit']:<3} "
                  f"(<= {t['limit']} {t['unit']})")
        skipped = [b["title"] for b in self.benchmarks.values() if "skipped" in b]
        for title in skipped:
            print(f"   skip {title}")
        print()

    def save(self, path: str, env: dict, quick: bool) -> None:
        record = {"environment": env, "quick": quick, "benchmarks": self.benchmarks,
                  "targets": self.targets}
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(record, fh, indent=1, sort_keys=True, default=float)
        os.replace(tmp, path)
        print(f"results written to {path}")


def compare(previous_path: str, current: Report) -> None:
    """Print each target and ratio next to the same number of an earlier results file."""
    try:
        with open(previous_path) as fh:
            old = json.load(fh)
    except (OSError, ValueError) as exc:
        print(f"cannot compare with {previous_path}: {exc}")
        return
    print(f"== Compared with {previous_path} ({old['environment'].get('commit')}, "
          f"{old['environment'].get('time')})")
    before = {t["label"]: t["value"] for t in old.get("targets", [])}
    for t in current.targets:
        if t["label"] in before:
            print(f"   {t['label']:<52}{before[t['label']]:>10.3f} -> {t['value']:.3f} "
                  f"{t['unit']}")
    for name, bench in current.benchmarks.items():
        old_ratios = old.get("benchmarks", {}).get(name, {}).get("ratios", {})
        for key, value in bench.get("ratios", {}).items():
            if key in old_ratios:
                print(f"   {name}: {key:<45}{old_ratios[key]:>10.3f} -> {value:.3f}")
    print()
