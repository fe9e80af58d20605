"""A grid over spec params: one training run per point, ranked best first.

Every point trains from the same seed (weights, shuffling, sampling noise), so a point
gives the same numbers whenever and wherever it runs, and two points differ by their
params alone. The ranking key is the job's last validation loss when it has a
validation split, else its last training loss; a point whose loss became NaN or Inf
is ranked last with its error.

With Dask each point is one task on the cluster: the spec text, the point's params and
the data (scattered once) go to a worker, which runs :func:`run_point` — the function
the embedded engine calls in-process — so both engines give the same results.
"""
from __future__ import annotations

import itertools
import math
import time

import yaml

from ..errors import InputError, SpecErrors

_SCALARS = (int, float, str, bool)


def parse_axis(item: str) -> tuple:
    """``"lr=0.001,0.003"`` -> ``("lr", [0.001, 0.003])`` (YAML scalars, as --set)."""
    name, sep, raw = str(item).partition("=")
    name = name.strip()
    if not sep or not name or not raw.strip():
        raise InputError(f"--set '{item}' should look like NAME=VALUE1,VALUE2,...")
    values = []
    for text in raw.split(","):
        try:
            value = yaml.safe_load(text.strip())
        except yaml.YAMLError:
            value = None
        if not isinstance(value, _SCALARS):
            raise InputError(f"--set '{item}': '{text.strip()}' is not a number, string or "
                             "boolean")
        if value in values:
            raise InputError(f"--set '{item}': '{text.strip()}' is listed twice")
        values.append(value)
    return name, values


def grid_points(items) -> list:
    """Every combination of the axes, the first axis varying slowest."""
    axes = [parse_axis(item) for item in items]
    names = [name for name, _ in axes]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"--set {', '.join(twice)} given more than once; list every value "
                         "in one --set NAME=V1,V2")
    if not axes:
        raise InputError("a sweep needs at least one --set NAME=V1,V2,...")
    return [dict(zip(names, combo)) for combo in itertools.product(*(v for _, v in axes))]


def run_point(spec_text: str, spec_name: str, data: dict, point: dict, job: str | None,
              epochs: int | None, seed: int) -> dict:
    """Train one point from scratch; its final logs, or its error (NaN loss)."""
    from .. import api
    from ..train.job import build_job
    from ..train.trainer import Trainer, TrainingError
    started = time.perf_counter()
    graph = api.loads(spec_text, seed=seed, params=point, name=spec_name)
    trainer = Trainer(graph, build_job(graph, job, None, {"epochs": epochs}))
    try:
        history = trainer.fit(data, seed=seed, verbose=False)
    except TrainingError as exc:
        return {"params": point, "error": str(exc),
                "seconds": round(time.perf_counter() - started, 3)}
    final = {key: values[-1] for key, values in history.items()}
    return {"params": point, "epochs": trainer.epoch, "metrics": final,
            "seconds": round(time.perf_counter() - started, 3)}


def score_key(results: list) -> str:
    """``val_loss`` if the runs have one, else ``loss``."""
    for result in results:
        if "val_loss" in result.get("metrics", {}):
            return "val_loss"
    return "loss"


def rank(results: list) -> list:
    """Best first by the score key; NaN scores and errors last; ties in grid order."""
    key = score_key(results)

    def order(item):
        index, result = item
        score = result.get("metrics", {}).get(key, math.nan)
        bad = "error" in result or not math.isfinite(score)
        return (bad, score if not bad else 0.0, index)
    ranked = [result for _, result in sorted(enumerate(results), key=order)]
    for position, result in enumerate(ranked, 1):
        result["rank"] = position
        result["score"] = result.get("metrics", {}).get(key)
    return ranked


def check_points(spec_path, points: list) -> None:
    """Every point validates (params exist, shapes fit, the job resolves) before any
    training starts: a typo fails in a second, not after the first runs."""
    from .. import api
    for point in points:
        errors = api.validate(spec_path, point)
        if errors:
            raise SpecErrors(errors)


def sweep(spec_path, data: dict, items, job: str | None = None, epochs: int | None = None,
          seed: int = 0, engine: str = "embedded", scheduler: str | None = None,
          client=None, workers: int | None = None, retries: int = 1, on_point=None) -> dict:
    """Train every point of the grid ``items`` (``["lr=0.001,0.003", ...]``); returns
    ``{"score": key, "results": [...best first], ...}`` ready for JSON.

    ``on_point(result, done, total)`` is called as each point finishes (progress)."""
    points = grid_points(items)
    check_points(spec_path, points)
    spec_text = _read_spec(spec_path)
    _check_data(spec_text, str(spec_path), data, points[0], job, seed)
    results = []

    def finished(result):
        results.append(result)
        if on_point is not None:
            on_point(result, len(results), len(points))
    if engine == "dask":
        _on_dask(spec_text, str(spec_path), data, points, job, epochs, seed, scheduler,
                 client, workers, retries, finished)
    elif engine == "embedded":
        for point in points:
            finished(run_point(spec_text, str(spec_path), data, point, job, epochs, seed))
    else:
        raise InputError(f"unknown engine '{engine}' (embedded or dask)")
    # Rank from grid order, whatever order the points finished in.
    results.sort(key=lambda result: points.index(result["params"]))
    ranked = rank(results)
    return {"spec": str(spec_path), "engine": engine, "seed": seed, "job": job,
            "epochs": epochs, "score": score_key(ranked), "results": ranked}


def _read_spec(spec_path) -> str:
    from ..spec.loader import MAX_SPEC_BYTES
    try:
        with open(spec_path, "rb") as handle:
            return handle.read(MAX_SPEC_BYTES + 1).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read spec '{spec_path}': {exc}") from None


def _check_data(spec_text, spec_name, data, point, job, seed) -> None:
    """The data fits the job (names, shapes, finiteness) — checked once, up front."""
    from .. import api
    from ..train.job import build_job
    from ..train.trainer import Trainer
    graph = api.loads(spec_text, seed=seed, params=point, name=spec_name)
    Trainer(graph, build_job(graph, job, None, {})).split_data(data)


def _on_dask(spec_text, spec_name, data, points, job, epochs, seed, scheduler, client,
             workers, retries, finished) -> None:
    from .dask_engine import connect, require_dask
    _, _, distributed = require_dask()
    from .dask_plugin import ship
    with connect(scheduler, client, workers) as active, \
            ship(active, data, "graphspec-data") as data_key:     # once per worker
        futures = {active.submit(_point_on_worker, spec_text, spec_name, data_key, point,
                                 job, epochs, seed, pure=False, retries=retries,
                                 key=f"graphspec-sweep-{i}-{time.time_ns():x}"): point
                   for i, point in enumerate(points)}
        try:
            for future in distributed.as_completed(list(futures)):
                finished(_point_result(future, futures[future], distributed))
        finally:
            active.cancel(list(futures))


def _point_on_worker(spec_text, spec_name, data_key, point, job, epochs, seed) -> dict:
    from .bundle import shipped
    return run_point(spec_text, spec_name, shipped(data_key), point, job, epochs, seed)


def _point_result(future, point, distributed) -> dict:
    try:
        return future.result()
    except distributed.KilledWorker:
        raise InputError(f"Dask workers died repeatedly training point {point} (out of "
                         "memory?); see the worker logs") from None
    except (InputError, SpecErrors):
        raise
    except Exception as exc:  # noqa: BLE001 - one line, the point named
        raise InputError(f"point {point} failed on a Dask worker: {type(exc).__name__}: "
                         f"{exc}") from None


def format_table(report: dict) -> str:
    """Ranked results as an aligned text table, best first."""
    results = report["results"]
    params = list(results[0]["params"]) if results else []
    metrics = [report["score"]]          # the ranking column first
    for result in results:
        metrics += [k for k in result.get("metrics", {}) if k not in metrics]
    header = ["rank"] + params + metrics + ["epochs", "seconds"]
    rows = []
    for result in results:
        values = result.get("metrics", {})
        row = [str(result["rank"])] + [str(result["params"][p]) for p in params]
        row += [f"{values[m]:.4f}" if m in values else "-" for m in metrics]
        row += [str(result.get("epochs", "-")), f"{result.get('seconds', 0):.1f}"]
        if "error" in result:
            row.append(f"error: {result['error']}")
        rows.append(row)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]

    def line(cells):
        text = "  ".join(c.ljust(w) for c, w in zip(cells, widths))
        return (text + "  " + "  ".join(cells[len(widths):])).rstrip()
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])
