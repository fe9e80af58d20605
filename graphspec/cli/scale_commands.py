"""Scale: the ``sweep`` command, and the engine options and runners that ``predict`` and
``evaluate`` use to stream ``.npy`` data or run on a Dask cluster.

Everything here is a thin layer over :mod:`graphspec.engines`; dask is imported only
when ``--engine dask`` is chosen.
"""
from __future__ import annotations

import functools
import os

import click
import numpy as np

from ..errors import InputError
from ..io.files import OutputDir, guard_outputs, is_directory_output, load_npz, save_json
from .common import friendly_errors

ENGINES = ("embedded", "dask")

engine_option = click.option(
    "--engine", type=click.Choice(ENGINES), default="embedded", show_default=True,
    help="embedded: batches in this process, .npy inputs streamed from disk; dask: chunks "
         "as tasks on a Dask cluster (needs pip install 'graphspec[dask]').")
scheduler_option = click.option(
    "--scheduler", metavar="ADDRESS",
    help="Dask scheduler to use, e.g. tcp://10.0.0.5:8786 (with --engine dask); without "
         "it a local cluster is started for the run.")
chunk_rows_option = click.option(
    "--chunk-rows", type=click.IntRange(min=1), metavar="N",
    help="Rows per Dask task (rounded up to a multiple of --batch-size, so the results "
         "are bit-identical to --engine embedded); default about 32 MiB of input.")
workers_option = click.option(
    "--workers", type=click.IntRange(min=1), metavar="N",
    help="Worker processes of the local Dask cluster (no --scheduler); default: CPUs, "
         "up to 4.")


DASK_ONLY_FLAGS = (("scheduler", "--scheduler"), ("chunk_rows", "--chunk-rows"),
                   ("workers", "--workers"))


def _dask_flags_need_dask(command):
    """Refuse --scheduler/--chunk-rows/--workers without --engine dask (a usage error
    naming the flags) before the command runs, whatever path it then takes."""
    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        if kwargs.get("engine", "embedded") != "dask":
            given = [flag for key, flag in DASK_ONLY_FLAGS if kwargs.get(key) is not None]
            if given:
                raise click.UsageError(f"{', '.join(given)} only "
                                       f"{'applies' if len(given) == 1 else 'apply'} "
                                       "with --engine dask")
        return command(*args, **kwargs)
    return wrapper


def engine_options(command):
    """--engine, --scheduler, --chunk-rows, --workers on a command; the last three are
    refused as usage errors without --engine dask."""
    command = _dask_flags_need_dask(command)
    for option in (workers_option, chunk_rows_option, scheduler_option, engine_option):
        command = option(command)
    return command


# -- data ------------------------------------------------------------------------------
def load_data(path, in_memory: bool = False) -> dict:
    """``--data``: a directory of NAME.npy (memory-mapped windows, nothing read yet) or
    an .npz archive (read into memory). ``in_memory`` reads the directory too (training)."""
    from ..io.npystream import open_npy_dir
    path = os.fspath(path)
    if os.path.isdir(path):
        sources = open_npy_dir(path)
        if not in_memory:
            return sources
        return {name: np.array(source.rows(0, len(source))) for name, source in sources.items()}
    return load_npz(path)


def _data_paths(data) -> list:
    if isinstance(data, (str, os.PathLike)) and os.path.isdir(data):
        return [os.path.join(data, n) for n in sorted(os.listdir(data)) if n.endswith(".npy")]
    return [data] if isinstance(data, (str, os.PathLike)) else []


def _output_files(output, names):
    """What ``-o`` will write, for the guard: DIR/NAME.npy per output (nothing is
    created yet), or the file itself."""
    if output is None:
        return []
    if is_directory_output(output):
        return OutputDir(os.fspath(output), tuple(f"{name}.npy" for name in names))
    return [os.fspath(output)]


def _is_csv(output) -> bool:
    return output is not None and os.fspath(output).lower().endswith(".csv")


# -- runners the predict and evaluate commands call -------------------------------------
def run_predict(model, input_paths: dict, output_path_or_dir=None, engine: str = "embedded",
                batch_size: int | None = None, chunk_rows: int | None = None,
                scheduler: str | None = None, workers: int | None = None, seed=None,
                progress: bool | None = None, allow_nonfinite: bool = False) -> dict:
    """Predict over ``input_paths`` ({input name: .npy path}, or arrays) with an engine;
    outputs go to a ``.npy`` (one output), ``.npz`` or ``DIR/`` (NAME.npy per output),
    or come back as arrays when ``output_path_or_dir`` is None. A ``.csv`` output is
    gathered in memory and written as ``predict -o FILE.csv`` writes it (category names
    for outputs trained on categories), on either engine."""
    from ..engines import embedded
    guard_outputs({"-o": _output_files(output_path_or_dir, model.output_names)},
          {f"--input {n}": [p] for n, p in input_paths.items()
           if isinstance(p, (str, os.PathLike))})
    if _is_csv(output_path_or_dir):
        from ..io.tabular import write_predictions_csv
        arrays = run_predict(model, input_paths, None, engine, batch_size, chunk_rows,
                             scheduler, workers, seed, progress, allow_nonfinite)
        graph = getattr(model, "graph", None)
        write_predictions_csv(output_path_or_dir, arrays,
                              (getattr(graph, "metadata", None) or {}).get("vocabularies"))
        return {name: os.fspath(output_path_or_dir) for name in arrays}
    batch_size = batch_size or 32
    if engine == "dask":
        from ..engines import dask_engine
        return dask_engine.predict(model, input_paths, output_path_or_dir, batch_size,
                                   chunk_rows, seed, scheduler, workers=workers,
                                   progress=progress, allow_nonfinite=allow_nonfinite)
    _embedded_only(engine, scheduler, chunk_rows, workers)
    return embedded.predict(model, input_paths, output_path_or_dir, batch_size, seed,
                            progress, allow_nonfinite=allow_nonfinite)


def run_evaluate(graph, data, job_name: str | None = None, model_name: str | None = None,
                 overrides: dict | None = None, engine: str = "embedded",
                 batch_size: int = 32, chunk_rows: int | None = None,
                 scheduler: str | None = None, workers: int | None = None, seed=None,
                 progress: bool | None = None, allow_nonfinite: bool = False,
                 job=None) -> dict:
    """Loss and metrics of a training job's model over ``data`` (a DIR/ of NAME.npy,
    an .npz path, or arrays/sources by name), streamed; the trainer's own numbers.

    ``job``: the TrainingJob already resolved from ``job_name``, ``model_name`` and
    ``overrides`` (else it is built here); Dask workers rebuild it from those three."""
    from ..engines import embedded
    from ..train.job import build_job
    from ..train.trainer import DataError, Trainer
    trainer = Trainer(graph, job or build_job(graph, job_name, model_name, overrides or {}))
    label = os.fspath(data) if isinstance(data, (str, os.PathLike)) else "data"
    arrays = load_data(data) if isinstance(data, (str, os.PathLike)) else data
    chunk_error = DataError
    try:
        if engine == "dask":
            from ..engines import dask_engine
            chunk_error = dask_engine.ChunkError
            return dask_engine.evaluate(trainer.model, arrays, batch_size, job_name,
                                        overrides, chunk_rows, seed, scheduler,
                                        workers=workers, progress=progress,
                                        allow_nonfinite=allow_nonfinite)
        _embedded_only(engine, scheduler, chunk_rows, workers)
        return embedded.evaluate(trainer, arrays, batch_size, seed, progress,
                                 allow_nonfinite=allow_nonfinite)
    except (DataError, chunk_error) as exc:       # data problems name the data
        raise InputError(f"{label}: {exc}") from None


def wants_streaming(output, engine: str = "embedded") -> bool:
    """Whether ``predict`` should stream (run_predict) rather than hold every output:
    on Dask, or when -o is a .npy, a .npz or a directory (not printed, not CSV)."""
    if engine == "dask":
        return True
    if not output:
        return False
    output = os.fspath(output)
    return output.endswith((".npy", ".npz", os.sep)) or os.path.isdir(output)


def _embedded_only(engine, scheduler, chunk_rows, workers) -> None:
    if engine != "embedded":
        raise InputError(f"unknown engine '{engine}' (embedded or dask)")
    given = [flag for flag, value in (("--scheduler", scheduler), ("--chunk-rows", chunk_rows),
                                      ("--workers", workers)) if value is not None]
    if given:
        raise click.UsageError(f"{', '.join(given)} only apply with --engine dask")


# -- sweep ------------------------------------------------------------------------------
def _point_done(result, done, total) -> None:
    params = ", ".join(f"{k}={v}" for k, v in result["params"].items())
    outcome = result.get("error") or " - ".join(
        f"{k}: {v:.4f}" for k, v in result["metrics"].items())
    click.echo(f"point {done}/{total} ({params}) {result['seconds']:.1f}s - {outcome}",
               err=True)


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--data", required=True, type=click.Path(),
              help="Training data: an .npz keyed by the model's input and output names, or "
                   "a directory of NAME.npy files.")
@click.option("--set", "grid", multiple=True, required=True, metavar="NAME=V1,V2,...",
              help="A spec param and the values to try (repeatable: the grid is every "
                   "combination).")
@click.option("--job", "job_name", help="Training job of the spec (default: the first).")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs per point (default: "
                                                            "the job's).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of every point (weights, shuffling, noise): the same seed gives "
                   "the same results, and points differ by their params alone.")
@click.option("-o", "--output", type=click.Path(), help="Write the ranked results as JSON.")
@engine_option
@scheduler_option
@workers_option
@friendly_errors
def sweep(spec, data, grid, job_name, epochs, seed, output, engine, scheduler, workers):
    """Train one run per point of a grid over spec params; rank them best first.

    The ranking uses the job's last validation loss (with a validation split), else its
    last training loss. With --engine dask every point is a task on the cluster. In the
    examples net.yaml declares params lr and units.

    \b
    Examples:
      graphspec sweep net.yaml --data train.npz --set lr=0.001,0.003 --set units=64,128
      graphspec sweep net.yaml --data train/ --set lr=0.001,0.01 --epochs 5 -o sweep.json
      graphspec sweep net.yaml --data train.npz --set lr=0.01,0.1 --engine dask \\
          --scheduler tcp://head:8786
    """
    from ..engines.sweep import format_table, sweep as run_sweep
    guard_outputs({"-o": output},
          {"SPEC": [spec], "--data": _data_paths(data)})
    if engine != "dask" and (scheduler or workers):
        raise click.UsageError("--scheduler and --workers only apply with --engine dask")
    report = run_sweep(spec, load_data(data, in_memory=True), grid, job_name, epochs, seed,
                       engine, scheduler, workers=workers, on_point=_point_done)
    report["data"] = os.fspath(data)
    click.echo(format_table(report))
    if output:
        save_json(output, report)
        click.echo(f"saved {len(report['results'])} results to {output}", err=True)
    best = report["results"][0]
    score = "failed" if best["score"] is None else f"{report['score']} {best['score']:.4f}"
    click.echo(f"best: {', '.join(f'{k}={v}' for k, v in best['params'].items())} "
               f"({score})", err=True)
