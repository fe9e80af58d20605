"""Commands that train: train, evaluate."""
from __future__ import annotations

import contextlib
import os

import click

from ..errors import InputError, SpecError
from ..io.files import dumps_json, guard_outputs, inside, remove_stale_temps, save_json
from ..io.locks import locked
from ..io.metadata import metadata_entry
from ..io.tabular import read_data
from ..train.job import build_job
from ..train.losses import get_loss
from ..train.trainer import DataError, Trainer
from .common import (INTERRUPTIONS, Interrupted, check_memory, fill_weights, friendly_errors,
                     make_checkpoint_dir, max_memory_option, open_spec, seed_option, set_option)
from .data_commands import categories_option, columns_option, data_mapping
from .run_commands import allow_nonfinite_option
from .scale_commands import engine_options, load_data, run_evaluate


def _job_overrides(loss, epochs, batch_size, validation_split, freeze) -> dict:
    overrides = {"epochs": epochs, "batch_size": batch_size,
                 "validation_split": validation_split}
    if loss:
        overrides["loss"] = loss
    if freeze:
        overrides["freeze"] = list(freeze)
    return overrides


def _optimizer_override(current: dict, optimizer, learning_rate) -> dict:
    """The job's optimizer with only what the flags name changed (issue 15 defect 9:
    ``--learning-rate`` alone used to swap an sgd job to rmsprop). A different
    ``--optimizer`` starts from that optimizer's defaults: another type's
    hyper-parameters (sgd's momentum) do not carry over."""
    config = dict(current) if optimizer in (None, current.get("type")) else {"type": optimizer}
    if learning_rate:
        config["learning_rate"] = learning_rate
    return config


CHECKPOINT_FILE = "checkpoint.npz"   # the file Trainer.save_checkpoint writes in its directory


@contextlib.contextmanager
def _naming(data_path):
    """Data problems name the --data file they came from."""
    try:
        yield
    except DataError as exc:
        message = str(exc)
        if message.startswith(os.fspath(data_path)):    # it names a file of a DIR/ already
            raise InputError(message) from None
        raise InputError(f"{data_path}: {message}") from None


def _flag_problems(graph, job_name, model_name, loss, freeze) -> str | None:
    """Check the flags that override a job before the job resolver sees them, so an
    error names the flag the user typed rather than a spec path the file does not have."""
    if job_name is not None and job_name not in graph.training:
        jobs = ", ".join(graph.training) or "none: the spec has no training section"
        return f"--job: {graph.file} has no training job '{job_name}' (jobs: {jobs})"
    if model_name is not None and model_name not in graph.models:
        return f"--model: {graph.file} has no model '{model_name}' " \
               f"(models: {', '.join(graph.models)})"
    if loss is not None:
        try:
            get_loss(loss)
        except SpecError as exc:
            return f"--loss: {exc.message}"
    names = set(graph.layers) | set(graph.models)
    for name in freeze:
        if name not in names:
            return f"--freeze: '{name}' is neither a layer nor a model of {graph.file}"
    return None


def _resolve_job(graph, job_name, model_name, overrides, loss=None, freeze=(), optimizer=None,
                 learning_rate=None):
    problem = _flag_problems(graph, job_name, model_name, loss, freeze)
    if problem:
        raise InputError(problem)
    if model_name is None and not graph.training:
        model_name = graph.model(None).name   # flags alone: the spec's only model
    job = build_job(graph, job_name, model_name, overrides)
    if optimizer is None and learning_rate is None:
        return job
    changed = _optimizer_override(job.optimizer.get_config(), optimizer, learning_rate)
    return build_job(graph, job_name, model_name, {**overrides, "optimizer": changed})


@contextlib.contextmanager
def _holding(outputs: dict):
    """Lock every output (a second run on one of them refuses, naming our pid) and
    clear what a killed earlier run left: its lock is free, its temp files are not ours."""
    with contextlib.ExitStack() as held:
        for option, path in outputs.items():
            if path is None:
                continue
            held.enter_context(locked(path, option))
            remove_stale_temps(path)
        yield


def _interrupted_note(exc, output, checkpoint) -> str:
    """What was saved: the trainer's own account (TrainingInterrupted says where its
    checkpoint went), else what is on disk."""
    saved = str(exc).strip()
    if not saved:
        saved = f"the last checkpoint is {checkpoint} (continue with --resume)" \
            if checkpoint and os.path.exists(checkpoint) else "no checkpoint was written"
    return f"{saved}; {output} was not written (training did not finish)"


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to train (else the job's model).")
@click.option("--job", "job_name", help="Training job of the spec (default: the first).")
@click.option("--data", required=True, type=click.Path(),
              help="Data: an .npz keyed by the model's input and output names, a DIR/ of "
                   "NAME.npy (memory-mapped, streamed a batch at a time), or a CSV/Parquet "
                   "file (columns mapped by the job's data: section or --columns). A DIR/ "
                   "trains exactly as the same arrays in memory while the training rows "
                   "fit one shuffle block (2**24 values over all arrays, a whole number "
                   "of batches); beyond that an epoch shuffles the blocks' order, then "
                   "the rows inside each block, from --seed.")
@click.option("--epochs", type=click.IntRange(min=1), help="Epochs to train (overrides the job).")
@click.option("--batch-size", type=click.IntRange(min=1),
              help="Samples per step (overrides the job); lowers memory.")
@click.option("--weights", type=click.Path(), help="Start from these weights (.npz).")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Trained weights (.npz, with loss state variables).")
@click.option("--validation-split", type=click.FloatRange(0, 1, max_open=True),
              help="Fraction of samples (taken from the end) held out for validation.")
@click.option("--checkpoint", "checkpoint_dir", type=click.Path(file_okay=False),
              help="Directory for a checkpoint after every epoch.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --checkpoint.")
@click.option("--history", type=click.Path(), help="Write the history as JSON here.")
@click.option("--on-nan", type=click.Choice(["stop", "skip"]), default="stop",
              help="What a NaN/Inf loss does: stop with an error, or skip the batch.")
@click.option("--loss", help="Loss for every output (overrides the job), e.g. mse.")
@click.option("--optimizer", type=click.Choice(["sgd", "rmsprop", "adam"]),
              help="Optimizer type (replaces the job's, with that type's defaults).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True),
              help="Learning rate; the job's optimizer and its other settings stay.")
@click.option("--freeze", multiple=True, help="Freeze a layer or model for this job.")
@columns_option
@categories_option
@max_memory_option
@seed_option
@set_option
@friendly_errors
def train(spec, model_name, job_name, data, epochs, batch_size, weights, output,
          validation_split, checkpoint_dir, resume, history, on_nan, loss, optimizer,
          learning_rate, freeze, columns, categories, max_memory, seed, params):
    """Train a model on DATA (.npz, DIR/ of NAME.npy, .csv, .parquet); save the trained
    weights to OUTPUT.

    \b
    Examples:
      graphspec train specs/mlp.yaml --set input_dim=64 --data digits.npz -o w.npz
      graphspec train specs/mlp.yaml --set input_dim=64 --data digits_dir/ -o w.npz
      graphspec train specs/mlp.yaml --data d.npz -o w.npz --checkpoint ck --history h.json
      graphspec train specs/mlp.yaml --data d.npz -o w.npz --checkpoint ck --resume --epochs 30
    """
    # Outputs are checked first: a typo in a directory fails now, not after training,
    # and no output may be one of the files the run reads.
    if output and checkpoint_dir and os.path.realpath(output) == os.path.realpath(
            checkpoint_dir):
        raise click.BadParameter(f"'{output}' is also the --checkpoint directory; name a "
                                 "file for the trained weights, e.g. -o w.npz", param_hint="-o")
    checkpoint = inside(checkpoint_dir, CHECKPOINT_FILE)
    guard_outputs({"-o": output, "--history": history, "--checkpoint": checkpoint},
                  {"SPEC": spec, "--weights": weights, "--data": data,
                   **({"--checkpoint": checkpoint} if resume else {})})
    checkpoint_file = None
    if checkpoint_dir is not None:
        make_checkpoint_dir(checkpoint_dir)
        checkpoint_file = os.path.join(checkpoint_dir, CHECKPOINT_FILE)
    with _holding({"-o": output, "--checkpoint": checkpoint_file, "--history": history}):
        graph = open_spec(spec, params, weights)
        overrides = _job_overrides(loss, epochs, batch_size, validation_split, freeze)
        job = _resolve_job(graph, job_name, model_name, overrides, loss, freeze, optimizer,
                           learning_rate)
        check_memory(job.model, job.batch_size, max_memory, weights, training=True,
                     optimizer=job.optimizer,
                     reads={"--data": data, "--checkpoint": checkpoint_file if resume else None})
        fill_weights(graph, seed, weights)
        trainer = Trainer(graph, job)
        if os.path.isdir(data):     # NAME.npy per input and target, memory-mapped
            arrays, vocabularies, mapping = load_data(data), {}, {}
        else:
            arrays, vocabularies, mapping = read_data(
                data, data_mapping(graph, job_name, job.model.name, columns, categories),
                metadata=graph.metadata)
        try:
            with _naming(data):
                result = trainer.fit(arrays, seed=seed, checkpoint_dir=checkpoint_dir,
                                     resume=resume, on_nan=on_nan)
        except INTERRUPTIONS as exc:
            raise Interrupted(_interrupted_note(exc, output, checkpoint_file)) from exc
        graph.save_weights(output, extra={**trainer.state_arrays(), **metadata_entry(
            graph, trainer.model.name, vocabularies=vocabularies, columns=mapping)})
        final = trainer.last_epoch_logs         # this run's last epoch, not the checkpoint's
        if final:
            click.echo(f"trained '{trainer.model.name}' for {trainer.epoch} epoch(s): " +
                       ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
        else:
            click.echo(f"the checkpoint already covers {trainer.epoch} epoch(s); nothing to "
                       "train (raise --epochs to go on)")
        click.echo(f"saved weights to {output}")
        if history:
            save_json(history, result)
            click.echo(f"saved history to {history}")


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to evaluate (else the job's model).")
@click.option("--job", "job_name", help="Training job whose loss and metrics to use "
                                        "(default: the first).")
@click.option("--data", required=True, type=click.Path(),
              help="Data: an .npz keyed by the model's input and output names, a DIR/ of "
                   "NAME.npy (streamed), or a CSV/Parquet file (columns mapped by the job's "
                   "data: section or --columns).")
@click.option("--weights", type=click.Path(), help="Trained weights (.npz) from train.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Samples per step; lowers memory.")
@click.option("--loss", help="Loss for every output (overrides the job), e.g. mse.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              help="text for people, json for scripts.")
@columns_option
@categories_option
@allow_nonfinite_option
@max_memory_option
@seed_option
@set_option
@engine_options
@friendly_errors
def evaluate(spec, model_name, job_name, data, weights, batch_size, loss, fmt, columns,
             categories, allow_nonfinite, max_memory, seed, params, engine, scheduler,
             chunk_rows, workers):
    """Loss and metrics of a model on DATA (.npz, .csv, .parquet; no training).

    \b
    Examples:
      graphspec evaluate specs/mlp.yaml --weights w.npz --data test.npz
      graphspec evaluate specs/mlp.yaml --weights w.npz --data test.npz --format json
      graphspec evaluate specs/mlp.yaml --weights w.npz --data test_dir/ --engine dask
      graphspec evaluate specs/shared_entry.yaml --model model_a --loss mse --weights w.npz --data d.npz
    """
    guard_outputs({}, {"SPEC": spec, "--weights": weights, "--data": data})
    graph = open_spec(spec, params, weights)
    job = _resolve_job(graph, job_name, model_name, {"loss": loss} if loss else {}, loss)
    check_memory(job.model, batch_size, max_memory, weights, reads={"--data": data})
    fill_weights(graph, seed, weights, warn_if_random=True)
    if engine == "dask" or os.path.isdir(data):
        # Streamed over a DIR/ of NAME.npy (memory-mapped) or chunked on Dask: per-batch
        # sums reduced to exactly the numbers the in-memory evaluation gives.
        source = data if os.path.isdir(data) else read_data(
            data, data_mapping(graph, job_name, job.model.name, columns, categories),
            metadata=graph.metadata)[0]
        result = run_evaluate(graph, source, job_name, model_name,
                              {"loss": loss} if loss else {}, engine, batch_size, chunk_rows,
                              scheduler, workers, seed, allow_nonfinite=allow_nonfinite,
                              job=job)
    else:
        mapping = data_mapping(graph, job_name, job.model.name, columns, categories)
        arrays = read_data(data, mapping, metadata=graph.metadata)[0]
        with _naming(data):
            result = Trainer(graph, job).evaluate(arrays, batch_size,
                                                  allow_nonfinite=allow_nonfinite)
    if fmt == "json":
        click.echo(dumps_json(result, indent=2))
    else:
        click.echo(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))


