"""Checkpoints you can resume from and trust.

A checkpoint (``DIR/checkpoint.npz``, written atomically) holds the weights, the
optimizer's state, the loss state variables, and two JSON members stored as uint8
arrays (so ``np.load(allow_pickle=False)`` reads them):

- ``trainer/config``: the whole run configuration: job, model, the overrides the run
  was started with, losses, optimizer type and hyper-parameters, batch size, freeze
  list, validation split, shuffle, seed, epochs, the spec's hash and params, and a
  fingerprint of the data (each array's shape, dtype and a BLAKE2b hash of its values
  as training casts them). Memory-mapped data is hashed a block of rows at a time (one
  read of the files, nothing held), to the very same fingerprint as the same values in
  memory; a streamed run also records its ``shuffle_block_rows`` (see
  :class:`graphspec.train.loop.EpochOrder`), which a resumed run keeps.
- ``trainer/progress``: completed epochs, the history, and, for a checkpoint written
  by an interrupt, the position inside the epoch (batches done, the epoch's running
  sums and the generator's state before the next batch).

Resuming restores all of it. A value given now that would make the run a different run
(data, spec, params, model, job, batch size, freeze, validation split, shuffle, seed,
loss, optimizer type) is refused naming both values; a learning rate or another
optimizer hyper-parameter given now is applied, with one line naming old and new;
epochs extend the run. Every field read from the file is checked: a crafted
checkpoint is refused with one line, never an internal error.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys

import numpy as np

from ..errors import GraphspecError, InputError
from ..io.arrays import as_float
from ..io.files import load_npz, save_npz

FORMAT = 1
CONFIG_KEY, PROGRESS_KEY = "trainer/config", "trainer/progress"
FILE_NAME = "checkpoint.npz"
_SETTINGS = ("batch_size", "validation_split", "shuffle", "seed")


def path_in(directory) -> str:
    return os.path.join(os.fspath(directory), FILE_NAME)


def make_dir(directory) -> None:
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot use '{directory}' as a checkpoint directory: "
                         f"{exc.strerror or exc}") from None


# -- what a run is -----------------------------------------------------------------------
def spec_hash(graph) -> str:
    """BLAKE2b of the spec data after params were substituted."""
    text = json.dumps(graph.spec or {}, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def data_fingerprint(arrays: dict) -> dict:
    """``{name: {"shape", "dtype", "blake2b"}}`` of the (checked) training arrays; a
    streamed array (anything with ``blocks()``: :class:`~.loop.CastRows`) is hashed block
    by block, which gives the same digest as hashing it whole."""
    out = {}
    for name in sorted(arrays):
        value = arrays[name]
        streamed = hasattr(value, "blocks")
        if not streamed:
            value = np.ascontiguousarray(value)
        shape, dtype = value.shape, value.dtype
        digest = getattr(value, "digest", None)     # a streamed array is read once per fit
        if digest is None:
            hasher = hashlib.blake2b(digest_size=16)
            for block in value.blocks() if streamed else (value,):
                if block.size:
                    hasher.update(memoryview(block).cast("B"))
            digest = hasher.hexdigest()
            if streamed:
                value.digest = digest
        out[name] = {"shape": list(shape), "dtype": str(dtype), "blake2b": digest}
    return out


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def run_config(trainer, settings: dict, data: dict) -> dict:
    job, graph = trainer.job, trainer.graph
    return {"format": FORMAT, "job": job.name, "model": trainer.model.name,
            "overrides": _jsonable(job.overrides), "loss": dict(job.loss_names),
            "optimizer": _jsonable(job.optimizer.get_config()),
            "freeze": sorted(job.freeze), **settings,
            "spec_hash": spec_hash(graph), "params": _jsonable(getattr(graph, "params", {})),
            "data": data_fingerprint(data)}


# -- writing ------------------------------------------------------------------------------
def json_member(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), dtype=np.uint8)


def save(trainer, directory, run: dict, position: dict | None) -> str:
    """Write the checkpoint; ``position`` is None at an epoch boundary."""
    make_dir(directory)
    arrays = {key: var.data for key, var in trainer.graph.weights().items()}
    arrays.update(trainer.job.optimizer.state_dict())
    arrays.update(trainer.state_arrays())
    arrays["trainer/epoch"] = np.asarray(trainer.epoch, dtype=np.int64)
    arrays["trainer/seed"] = np.asarray(run["seed"], dtype=np.int64)
    arrays[CONFIG_KEY] = json_member(run)
    arrays[PROGRESS_KEY] = json_member({"epoch": trainer.epoch, "history": trainer.history,
                                        "position": position})
    path = path_in(directory)
    save_npz(path, arrays)
    return path


# -- reading: every field checked ----------------------------------------------------------
class _Fields:
    """Typed reads from one checkpoint, each failure one line naming the file and field."""

    def __init__(self, path):
        self.path = path

    def fail(self, field, message):
        raise InputError(f"{self.path}: {field}: {message}; not a checkpoint graphspec can "
                         "resume from")

    def json(self, arrays, key) -> dict:
        if key not in arrays:
            self.fail(key, "missing (written by an older graphspec, or not a checkpoint)")
        raw = arrays[key]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            self.fail(key, f"expected JSON bytes (uint8), got {raw.dtype} {raw.shape}")
        try:
            value = json.loads(raw.tobytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            self.fail(key, f"not valid JSON ({exc})")
        if not isinstance(value, dict):
            self.fail(key, "expected a JSON object")
        return value

    def integer(self, value, field, low=0, high=2 ** 63 - 1) -> int:
        if isinstance(value, np.ndarray):
            if value.ndim or value.dtype.kind not in "iu":
                self.fail(field, f"expected an integer scalar, got {value.dtype} {value.shape}")
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            self.fail(field, f"expected an integer in [{low}, {high}], got {value!r}")
        return value

    def number(self, value, field, low=None, high=None) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value) or (low is not None and value < low) \
                or (high is not None and value >= high):
            self.fail(field, f"expected a finite number in [{low}, {high}), got {value!r}")
        return float(value)

    def kind(self, value, types, field, what):
        if not isinstance(value, types):
            self.fail(field, f"expected {what}, got {type(value).__name__}")
        return value


def _check_config(f: _Fields, config: dict) -> dict:
    f.integer(config.get("format"), "config.format", FORMAT, FORMAT)
    f.kind(config.get("job"), (str, type(None)), "config.job", "a job name or null")
    f.kind(config.get("model"), str, "config.model", "a model name")
    for key in ("overrides", "loss", "optimizer", "params", "data"):
        f.kind(config.get(key), dict, f"config.{key}", "a mapping")
    f.kind(config["optimizer"].get("type"), str, "config.optimizer.type", "a name")
    freeze = f.kind(config.get("freeze"), list, "config.freeze", "a list of names")
    for name in freeze:
        f.kind(name, str, "config.freeze", "a list of names")
    f.integer(config.get("epochs"), "config.epochs", 1, 10 ** 7)
    f.integer(config.get("batch_size"), "config.batch_size", 1, 1 << 24)
    f.number(config.get("validation_split"), "config.validation_split", 0, 1)
    f.kind(config.get("shuffle"), bool, "config.shuffle", "true or false")
    f.integer(config.get("seed"), "config.seed", 0)
    f.kind(config.get("spec_hash"), str, "config.spec_hash", "a string")
    if config.get("shuffle_block_rows") is not None:
        f.integer(config["shuffle_block_rows"], "config.shuffle_block_rows", 1)
    return config


def _check_progress(f: _Fields, progress: dict, epochs_done: int) -> dict:
    epoch = f.integer(progress.get("epoch"), "progress.epoch", 0, 10 ** 7)
    if epoch != epochs_done:
        f.fail("progress.epoch", f"{epoch} disagrees with trainer/epoch {epochs_done}")
    history = f.kind(progress.get("history"), dict, "progress.history", "a mapping")
    for key, values in history.items():
        f.kind(values, list, f"progress.history.{key}", "a list of numbers")
        if len(values) > epoch or any(not isinstance(v, (int, float)) or isinstance(v, bool)
                                      for v in values):
            f.fail(f"progress.history.{key}", f"expected at most {epoch} numbers")
    position = progress.get("position")
    if position is not None:
        f.kind(position, dict, "progress.position", "a mapping or null")
        if f.integer(position.get("epoch"), "progress.position.epoch", 0, 10 ** 7) != epoch:
            f.fail("progress.position.epoch", "is not the epoch after the completed ones")
        f.integer(position.get("batch"), "progress.position.batch", 0, 1 << 40)
        sums = f.kind(position.get("sums"), dict, "progress.position.sums", "a mapping")
        for key, value in f.kind(sums.get("sums"), dict, "progress.position.sums.sums",
                                 "a mapping").items():
            f.number(value, f"progress.position.sums.{key}")
        f.integer(sums.get("seen"), "progress.position.sums.seen", 0)
        f.integer(sums.get("skipped"), "progress.position.sums.skipped", 0)
        f.kind(position.get("rng"), dict, "progress.position.rng", "a generator state")
    return progress


def set_rng_state(rng, state) -> None:
    """Put a generator in a state read from a checkpoint (refused if it does not fit)."""
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise InputError(f"checkpoint: progress.position.rng is not a state of "
                         f"{type(rng.bit_generator).__name__} ({exc})") from None


def _check_optimizer_state(f: _Fields, arrays: dict, optimizer, weights: dict) -> dict:
    state = {k: v for k, v in arrays.items() if k.startswith("optimizer/")}
    for key, value in state.items():
        if key.endswith("/iterations"):
            f.integer(value, key, 0)
        elif key.endswith("/learning_rate"):
            if value.ndim or value.dtype.kind != "f" or not math.isfinite(float(value)) \
                    or float(value) <= 0:
                f.fail(key, f"expected a finite learning rate > 0, got {value!r}")
        else:
            try:
                as_float(value, value.dtype if value.dtype.kind == "f" else np.float64, key)
            except InputError as exc:
                f.fail(key, str(exc))
            weight_key = key[len("optimizer/"):].rpartition("/")[0]
            weight = weights.get(weight_key)
            if weight is None or value.shape != weight.data.shape:
                shape = None if weight is None else weight.data.shape
                f.fail(key, f"shape {value.shape} does not fit weight '{weight_key}' "
                            f"{shape}")
    return state


# -- resuming ---------------------------------------------------------------------------------
def _conflict(field: str, recorded, now, why: str = "") -> InputError:
    return InputError(f"--resume: {field} is {recorded!r} in the checkpoint but {now!r} "
                      f"now{why}; a resumed run keeps its {field} (drop the option, or "
                      "start a new run without --resume)")


def _reconcile(trainer, config: dict, given: dict, data: dict, say):
    """Settings of the resumed run and the optimizer hyper-parameters changed now;
    conflicts refused; the trainer's job rebuilt as the checkpoint recorded it."""
    from .job import build_job   # job -> checkpoint would be a cycle through trainer
    graph = trainer.graph
    if config["model"] != trainer.model.name:
        raise _conflict("model", config["model"], trainer.model.name)
    if trainer.job.name is not None and config["job"] is not None \
            and trainer.job.name != config["job"]:
        raise _conflict("job", config["job"], trainer.job.name)
    params = _jsonable(getattr(graph, "params", {}))
    if config["params"] != params:
        changed = sorted(k for k in set(config["params"]) | set(params)
                         if config["params"].get(k) != params.get(k))
        raise _conflict(f"spec param '{changed[0]}'", config["params"].get(changed[0]),
                        params.get(changed[0]))
    if config["spec_hash"] != spec_hash(graph):
        raise _conflict("spec", config["spec_hash"], spec_hash(graph),
                        " (the spec file changed since the checkpoint was written)")
    now = data_fingerprint(data)
    if now != config["data"]:
        raise _data_conflict(config["data"], now)
    explicit = dict(trainer.job.overrides)
    settings = {}
    for key in _SETTINGS:
        value = given.get(key) if given.get(key) is not None else explicit.get(key)
        if value is not None and value != config[key]:
            raise _conflict(key.replace("_", " "), config[key], value)
        settings[key] = config[key]
    # A streamed run's shuffle blocks as recorded (absent: the run shuffled all rows).
    settings["shuffle_block_rows"] = config.get("shuffle_block_rows")
    epochs = given.get("epochs") or explicit.get("epochs")
    settings["epochs"] = int(epochs) if epochs else config["epochs"]
    # The job as it was run, with what is given now on top.
    overrides = dict(config["overrides"])
    overrides.update({k: v for k, v in explicit.items() if k not in ("optimizer",)})
    optimizer = dict(config["optimizer"])
    new_optimizer = explicit.get("optimizer")
    if isinstance(new_optimizer, str):
        new_optimizer = {"type": new_optimizer}
    changes = {}
    if isinstance(new_optimizer, dict):
        if new_optimizer.get("type", optimizer["type"]).lower() != optimizer["type"].lower():
            raise _conflict("optimizer", optimizer["type"], new_optimizer["type"])
        changes = {k: v for k, v in new_optimizer.items()
                   if k != "type" and optimizer.get(k) != v}
    overrides["optimizer"] = dict(optimizer, **changes)
    try:
        job = build_job(graph, config["job"], config["model"], overrides)
    except GraphspecError as exc:
        raise InputError(f"--resume: the checkpoint's job no longer builds: {exc}") from None
    job.overrides = dict(config["overrides"], **explicit)
    if dict(job.loss_names) != config["loss"]:
        raise _conflict("loss", config["loss"], dict(job.loss_names))
    if sorted(job.freeze) != config["freeze"]:
        raise _conflict("freeze list", config["freeze"], sorted(job.freeze))
    trainer.set_job(job)
    for key, value in changes.items():
        say(f"resume: {key} {config['optimizer'].get(key)!r} -> {value!r} (given now; the "
            "checkpoint had the former)")
    return settings, changes


def _data_conflict(recorded: dict, now: dict) -> InputError:
    for name in sorted(set(recorded) | set(now)):
        a, b = recorded.get(name), now.get(name)
        if a is None or b is None:
            return _conflict("data", sorted(recorded), sorted(now), " (arrays differ)")
        if a["shape"] != b["shape"]:
            return _conflict(f"data array '{name}' shape", tuple(a["shape"]),
                             tuple(b["shape"]))
        if a != b:
            return _conflict(f"data array '{name}'", f"hash {a['blake2b']}",
                             f"hash {b['blake2b']}", " (same shape, other values)")
    return _conflict("data", recorded, now)


def resume(trainer, directory, given: dict, data: dict, stream=None):
    """Restore a run from ``directory``; ``(settings, position)`` to continue with."""
    if not directory:
        raise InputError("--resume needs --checkpoint DIR")
    path = path_in(directory)
    if not os.path.exists(path):
        raise InputError(f"--resume: no checkpoint at {path}")
    arrays = load_npz(path)
    f = _Fields(path)
    for key in ("trainer/epoch", "trainer/seed"):
        if key not in arrays:
            raise InputError(f"{path} is not a graphspec checkpoint (no '{key}')")
    config = _check_config(f, f.json(arrays, CONFIG_KEY))
    epochs_done = f.integer(arrays["trainer/epoch"], "trainer/epoch", 0, 10 ** 7)
    if f.integer(arrays["trainer/seed"], "trainer/seed", 0) != config["seed"]:
        f.fail("trainer/seed", "disagrees with config.seed")
    progress = _check_progress(f, f.json(arrays, PROGRESS_KEY), epochs_done)

    def say(line):
        print(line, file=stream or sys.stderr)
    settings, changes = _reconcile(trainer, config, given, data, say)
    trainer.graph.set_weights(arrays, source=path)
    optimizer = trainer.job.optimizer
    state = _check_optimizer_state(f, arrays, optimizer, trainer.graph.weights())
    optimizer.load_state_dict(state)
    if "learning_rate" in changes:      # the file's rate was just restored: given wins
        optimizer.learning_rate = float(changes["learning_rate"])
    for name in trainer.state:
        key = f"state/{name}"
        if key in arrays:
            trainer.state[name] = float(as_float(arrays[key], np.float64, f"{path}: {key}"))
    trainer.epoch = epochs_done
    trainer.history = {k: [float(v) for v in values]
                       for k, values in progress["history"].items()}
    return settings, progress.get("position")
