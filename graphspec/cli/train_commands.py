"""Commands that train: train, evaluate."""
from __future__ import annotations

import contextlib
import json

import click

from ..errors import InputError
from ..io.files import guard_outputs, inside, load_npz, save_json
from ..train.job import build_job
from ..train.trainer import DataError, Trainer
from .common import (check_memory, fill_weights, friendly_errors, max_memory_option, open_spec,
                     seed_option, set_option)


def _job_overrides(loss, optimizer, learning_rate, epochs, batch_size, validation_split,
                   freeze) -> dict:
    overrides = {"epochs": epochs, "batch_size": batch_size,
                 "validation_split": validation_split}
    if loss:
        overrides["loss"] = loss
    if optimizer or learning_rate:
        overrides["optimizer"] = {"type": optimizer or "rmsprop",
                                  **({"learning_rate": learning_rate} if learning_rate else {})}
    if freeze:
        overrides["freeze"] = list(freeze)
    return overrides


CHECKPOINT_FILE = "checkpoint.npz"   # the file Trainer.save_checkpoint writes in its directory


@contextlib.contextmanager
def _naming(data_path):
    """Data problems name the --data file they came from."""
    try:
        yield
    except DataError as exc:
        raise InputError(f"{data_path}: {exc}") from None


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name", help="Model to train (else the job's model).")
@click.option("--job", "job_name", help="Training job of the spec (default: the first).")
@click.option("--data", required=True, type=click.Path(),
              help=".npz with arrays keyed by the model's input and output names.")
@click.option("--epochs", type=click.IntRange(min=1))
@click.option("--batch-size", type=click.IntRange(min=1))
@click.option("--weights", type=click.Path(), help="Start from these weights (.npz).")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="Trained weights (.npz, with loss state variables).")
@click.option("--validation-split", type=click.FloatRange(0, 1, max_open=True))
@click.option("--checkpoint", "checkpoint_dir", type=click.Path(file_okay=False),
              help="Directory for a checkpoint after every epoch.")
@click.option("--resume", is_flag=True, help="Continue from the checkpoint in --checkpoint.")
@click.option("--history", type=click.Path(), help="Write the history as JSON here.")
@click.option("--on-nan", type=click.Choice(["stop", "skip"]), default="stop",
              help="What a NaN/Inf loss does: stop with an error, or skip the batch.")
@click.option("--loss", help="Loss for every output (overrides the job).")
@click.option("--optimizer", type=click.Choice(["sgd", "rmsprop", "adam"]))
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True))
@click.option("--freeze", multiple=True, help="Freeze a layer or model for this job.")
@max_memory_option
@seed_option
@set_option
@friendly_errors
def train(spec, model_name, job_name, data, epochs, batch_size, weights, output,
          validation_split, checkpoint_dir, resume, history, on_nan, loss, optimizer,
          learning_rate, freeze, max_memory, seed, params):
    """Train a model on DATA.npz; save the trained weights to OUTPUT."""
    # Outputs are checked first: a typo in a directory fails now, not after training,
    # and no output may be one of the files the run reads.
    checkpoint = inside(checkpoint_dir, CHECKPOINT_FILE)
    guard_outputs({"-o": output, "--history": history, "--checkpoint": checkpoint},
                  {"SPEC": spec, "--weights": weights, "--data": data,
                   **({"--checkpoint": checkpoint} if resume else {})})
    graph = open_spec(spec, params)
    overrides = _job_overrides(loss, optimizer, learning_rate, epochs, batch_size,
                               validation_split, freeze)
    job = build_job(graph, job_name, model_name, overrides)
    check_memory(job.model, job.batch_size, max_memory, weights, training=True,
                 optimizer=job.optimizer)
    fill_weights(graph, seed, weights)
    trainer = Trainer(graph, job)
    arrays = load_npz(data)
    with _naming(data):
        result = trainer.fit(arrays, seed=seed, checkpoint_dir=checkpoint_dir, resume=resume,
                             on_nan=on_nan)
    graph.save_weights(output, extra=trainer.state_arrays())
    final = {k: v[-1] for k, v in result.items()}
    click.echo(f"trained '{trainer.model.name}' for {trainer.epoch} epoch(s): " +
               ", ".join(f"{k} {v:.4f}" for k, v in final.items()))
    click.echo(f"saved weights to {output}")
    if history:
        save_json(history, result)
        click.echo(f"saved history to {history}")


@click.command()
@click.argument("spec", type=click.Path())
@click.option("--model", "model_name")
@click.option("--job", "job_name")
@click.option("--data", required=True, type=click.Path())
@click.option("--weights", type=click.Path())
@click.option("--batch-size", type=click.IntRange(min=1), default=32)
@click.option("--loss", help="Loss for every output (overrides the job).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@max_memory_option
@seed_option
@set_option
@friendly_errors
def evaluate(spec, model_name, job_name, data, weights, batch_size, loss, fmt, max_memory, seed,
             params):
    """Loss and metrics of a model on DATA.npz (no training)."""
    guard_outputs({}, {"SPEC": spec, "--weights": weights, "--data": data})
    graph = open_spec(spec, params)
    job = build_job(graph, job_name, model_name, {"loss": loss} if loss else {})
    check_memory(job.model, batch_size, max_memory, weights)
    fill_weights(graph, seed, weights, warn_if_random=True)
    with _naming(data):
        result = Trainer(graph, job).evaluate(load_npz(data), batch_size)
    if fmt == "json":
        click.echo(json.dumps(result, indent=2))
    else:
        click.echo(" - ".join(f"{k}: {v:.4f}" for k, v in result.items()))


