"""Resume you can trust: the checkpoint records the run, resuming restores or refuses."""
import io
import json

import numpy as np
import pytest

import graphspec
from graphspec.errors import InputError, TrainingInterrupted
from graphspec.train import checkpoint
from graphspec.train.trainer import Trainer

from .test_trainer import SPEC, data


def load(seed=0):
    return graphspec.loads(SPEC, seed=seed)


def weights(graph):
    return {k: v.data.copy() for k, v in graph.weights().items()}


def first_run(tmp_path, **kwargs):
    graph = load()
    args = dict(epochs=2, batch_size=4, seed=3, verbose=False, checkpoint_dir=tmp_path / "ck")
    args.update(kwargs)
    graph.models["m"].fit(data(), job="adam_job", **args)
    return tmp_path / "ck"


def resume(ck, job="adam_job", init_seed=99, stream=None, **kwargs):
    graph = load(init_seed)
    trainer = graph.trainer(job, **kwargs.pop("overrides", {}))
    trainer.fit(data(**kwargs.pop("data", {})), checkpoint_dir=ck, resume=True,
                verbose=False, stream=stream, **kwargs)
    return graph, trainer


def test_checkpoint_records_the_whole_run(tmp_path):
    ck = first_run(tmp_path, validation_split=0.25)
    with np.load(ck / "checkpoint.npz", allow_pickle=False) as archive:
        config = json.loads(archive["trainer/config"].tobytes())
    assert config["job"] == "adam_job" and config["model"] == "m"
    assert config["batch_size"] == 4 and config["validation_split"] == 0.25
    assert config["seed"] == 3 and config["loss"] == {"y": "mean_absolute_error"}
    assert config["optimizer"]["type"] == "adam"
    assert set(config["data"]) == {"x", "y"} and config["data"]["x"]["shape"] == [24, 3]
    assert len(config["spec_hash"]) == 32


def test_resume_restores_settings_and_extends_epochs(tmp_path):
    straight = load()
    straight.models["m"].fit(data(), job="adam_job", epochs=4, batch_size=6, seed=3,
                             validation_split=0.25, verbose=False)
    ck = first_run(tmp_path, batch_size=6, validation_split=0.25)
    graph, trainer = resume(ck, epochs=4)        # batch size, split, seed: from the file
    assert trainer.epoch == 4 and len(trainer.history["val_loss"]) == 4
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(value, graph.weights()[key].data)
    assert trainer.last_epoch_logs["loss"] == trainer.history["loss"][-1]


@pytest.mark.parametrize("change,field", [
    (dict(batch_size=8), "batch size"),
    (dict(validation_split=0.5), "validation split"),
    (dict(seed=4), "seed"),
    (dict(data={"seed": 1}), "data array 'x'"),
    (dict(data={"n": 20}), "data array 'x' shape"),
    (dict(overrides={"loss": "mse"}), "loss"),
    (dict(overrides={"freeze": ["out"]}), "freeze list"),
    (dict(overrides={"optimizer": "sgd"}), "optimizer"),
    (dict(job="sgd_job"), "job"),
])
def test_a_conflicting_run_defining_value_is_refused_naming_both(tmp_path, change, field):
    ck = first_run(tmp_path)
    with pytest.raises(InputError, match=f"--resume: {field} is .* in the checkpoint but "
                                         ".* now"):
        resume(ck, **change)


def test_another_spec_is_refused(tmp_path):
    ck = first_run(tmp_path)
    other = graphspec.loads(SPEC.replace("units: 4, activation: tanh",
                                         "units: 4, activation: relu"), seed=0)
    with pytest.raises(InputError, match="--resume: spec is"):
        other.trainer("adam_job").fit(data(), checkpoint_dir=ck, resume=True, verbose=False)


def test_a_new_learning_rate_is_applied_and_said(tmp_path):
    ck = first_run(tmp_path)
    stream = io.StringIO()
    _, trainer = resume(ck, stream=stream, epochs=3,
                        overrides={"optimizer": {"learning_rate": 0.5}})
    assert trainer.job.optimizer.learning_rate == 0.5
    assert trainer.job.optimizer.TYPE == "adam"
    assert "resume: learning_rate 0.001 -> 0.5" in stream.getvalue()


def test_keyboard_interrupt_saves_the_position_and_resume_matches(tmp_path, monkeypatch):
    straight = load()
    straight.models["m"].fit(data(), job="adam_job", epochs=3, batch_size=5, seed=3,
                             verbose=False)
    original, calls = Trainer._step, {"n": 0}

    def interrupting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 8:                   # epoch 2 (0-based 1), its 3rd batch
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)
    monkeypatch.setattr(Trainer, "_step", interrupting)
    graph = load()
    with pytest.raises(TrainingInterrupted) as info:
        graph.models["m"].fit(data(), job="adam_job", epochs=3, batch_size=5, seed=3,
                              verbose=False, checkpoint_dir=tmp_path / "ck")
    assert str(info.value.path).endswith("checkpoint.npz") and not info.value.mid_step
    monkeypatch.setattr(Trainer, "_step", original)
    with np.load(info.value.path) as archive:
        progress = json.loads(archive["trainer/progress"].tobytes())
    assert progress["position"]["epoch"] == 1 and progress["position"]["batch"] == 2
    resumed, trainer = resume(tmp_path / "ck")
    assert trainer.epoch == 3
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(value, resumed.weights()[key].data)
    assert trainer.history["loss"] == pytest.approx(
        straight.models["m"].trainer("adam_job").history["loss"], rel=1e-12)


def _rewrite(path, change):
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    change(arrays)
    np.savez(path, **arrays)


def _json(arrays, key, edit):
    value = json.loads(arrays[key].tobytes())
    edit(value)
    arrays[key] = checkpoint.json_member(value)


@pytest.mark.parametrize("change,what", [
    (lambda a: a.__setitem__("trainer/progress", np.frombuffer(b"{not json", np.uint8)),
     "not valid JSON"),
    (lambda a: _json(a, "trainer/progress", lambda p: p.__setitem__("history", {"loss": "x"})),
     "progress.history.loss"),
    (lambda a: a.__setitem__("trainer/epoch", np.asarray(-1)), "trainer/epoch"),
    (lambda a: a.__setitem__("trainer/seed", np.asarray("3")), "trainer/seed"),
    (lambda a: _json(a, "trainer/config", lambda c: c.__setitem__("seed", "3")), "config.seed"),
    (lambda a: a.__setitem__("optimizer/adam/iterations", np.asarray("12")), "iterations"),
    (lambda a: a["optimizer/hidden/kernel/momentum"].__setitem__((0, 0), np.nan),
     "optimizer/hidden/kernel/momentum"),
    (lambda a: a.__setitem__("optimizer/hidden/kernel/momentum", np.zeros((2, 2))),
     "does not fit weight"),
    (lambda a: a.__setitem__("optimizer/adam/learning_rate", np.asarray(-0.1)),
     "learning rate > 0"),
    (lambda a: a.__setitem__("trainer/config", np.zeros((2, 2))), "uint8"),
])
def test_crafted_checkpoint_fields_are_refused_in_one_line(tmp_path, change, what):
    ck = first_run(tmp_path)
    _rewrite(ck / "checkpoint.npz", change)
    with pytest.raises(InputError) as info:
        resume(ck)
    message = str(info.value)
    assert what in message and "\n" not in message


def test_ctrl_c_inside_a_step_waits_for_the_step_to_finish(tmp_path, monkeypatch):
    import signal
    # Python's own Ctrl-C handler, whatever an earlier test in this process left: fit
    # defers Ctrl-C only over the default handler (an embedding application's is kept).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    straight = load()
    straight.models["m"].fit(data(), job="adam_job", epochs=2, batch_size=5, seed=3,
                             verbose=False)
    original, calls = Trainer._step, {"n": 0}

    def signalling(self, *args, **kwargs):
        calls["n"] += 1
        result = original(self, *args, **kwargs)
        if calls["n"] == 3:     # SIGINT arrives while step 3 is still running
            # raise_signal delivers it to this (the main) thread, as a terminal's Ctrl-C
            # does; os.kill(getpid()) may hand it to any thread a library started.
            signal.raise_signal(signal.SIGINT)
        return result
    monkeypatch.setattr(Trainer, "_step", signalling)
    with pytest.raises(TrainingInterrupted) as info:
        load().models["m"].fit(data(), job="adam_job", epochs=2, batch_size=5, seed=3,
                               verbose=False, checkpoint_dir=tmp_path / "ck")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with np.load(info.value.path) as archive:
        position = json.loads(archive["trainer/progress"].tobytes())["position"]
    assert (position["epoch"], position["batch"]) == (0, 3)   # step 3 completed
    monkeypatch.setattr(Trainer, "_step", original)
    resumed, _ = resume(tmp_path / "ck")
    for key, value in weights(straight).items():
        np.testing.assert_array_equal(value, resumed.weights()[key].data)
    signal.signal(signal.SIGINT, previous)


def test_an_interrupt_inside_the_weight_update_keeps_the_epoch_checkpoint(tmp_path,
                                                                         monkeypatch):
    from graphspec.train.optimizers import Optimizer
    original, calls = Optimizer.apply, {"n": 0}

    def interrupting(self, params):
        calls["n"] += 1
        if calls["n"] == 7:                  # epoch 2, after the epoch-1 checkpoint
            raise KeyboardInterrupt
        return original(self, params)
    monkeypatch.setattr(Optimizer, "apply", interrupting)
    with pytest.raises(TrainingInterrupted) as info:
        load().models["m"].fit(data(), job="adam_job", epochs=2, batch_size=5, seed=3,
                               verbose=False, checkpoint_dir=tmp_path / "ck")
    assert info.value.mid_step and str(info.value.path).endswith("checkpoint.npz")
    with np.load(info.value.path) as archive:
        assert int(archive["trainer/epoch"]) == 1
        assert json.loads(archive["trainer/progress"].tobytes())["position"] is None


def test_resume_conflict_names_the_default_param_the_checkpoint_used(tmp_path):
    """A run trained on the spec's default param says so (not None) when --set differs."""
    from click.testing import CliRunner

    from graphspec.cli import main
    spec = tmp_path / "xp.yaml"
    spec.write_text(
        "graphspec: 1\nparams:\n  units: 64\nlayers:\n"
        "  h: {type: Dense, units: \"${units}\", activation: relu}\n"
        "  o: {type: Dense, units: 2, activation: softmax}\n"
        "models:\n  m:\n    inputs:\n      x: {shape: [3]}\n    calls:\n"
        "      - {layer: h, in: x, out: a}\n      - {layer: o, in: a, out: y}\n"
        "    outputs: [y]\ntraining:\n  default: {model: m, loss: sparse_categorical_crossentropy,"
        " epochs: 1, batch_size: 4}\n")
    np.savez(tmp_path / "d.npz", x=np.ones((8, 3), np.float32), y=np.arange(8) % 2)
    args = ["train", str(spec), "--data", str(tmp_path / "d.npz"), "-o", str(tmp_path / "w.npz"),
            "--checkpoint", str(tmp_path / "ck")]
    assert CliRunner().invoke(main, args).exit_code == 0
    result = CliRunner().invoke(main, args + ["--resume", "--set", "units=8", "--epochs", "2"])
    assert result.exit_code == 1
    assert "spec param 'units' is 64 in the checkpoint but 8 now" in result.output
