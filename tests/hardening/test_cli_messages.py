"""Messages a user sees when a flag is wrong or a run is interrupted (issue 15
"Messages", issue 9 SIGINT): one line that names what was typed."""
import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import MLP, write_spec

from graphspec.cli import main
from graphspec.io import files
from graphspec.train.trainer import Trainer

TRAINABLE = MLP + """
training:
  default:
    model: mlp
    loss: sparse_categorical_crossentropy
    epochs: 1
    batch_size: 4
"""


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def job(tmp_path):
    spec = write_spec(tmp_path, TRAINABLE)
    np.savez(tmp_path / "d.npz", x=np.ones((8, 4), np.float32), probs=np.zeros(8, int))
    return spec, tmp_path / "d.npz", tmp_path / "w.npz"


@pytest.mark.parametrize("flag,value,message", [
    ("--loss", "nope", "error: --loss: unknown loss 'nope'; built-in losses are "),
    ("--freeze", "nope", "error: --freeze: 'nope' is neither a layer nor a model of "),
    ("--model", "nope", "error: --model: "),
    ("--job", "nope", "error: --job: "),
])
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_flag_errors_name_the_flag_not_a_spec_path(job, command, flag, value, message):
    spec, data, out = job
    if command == "evaluate" and flag == "--freeze":
        pytest.skip("evaluate has no --freeze")
    argv = [command, spec, "--data", data, flag, value] + (["-o", out] if command == "train"
                                                          else [])
    result = run(*argv)
    assert result.exit_code == 1
    assert result.output.startswith(message), result.output
    assert "training.default" not in result.output and len(result.output.splitlines()) == 1
    assert not out.exists()


def test_flags_alone_train_the_only_model_of_a_spec_without_jobs(tmp_path):
    """It said: job: model 'None' is not declared."""
    spec = write_spec(tmp_path, MLP)
    np.savez(tmp_path / "d.npz", x=np.ones((8, 4), np.float32), probs=np.zeros(8, int))
    result = run("train", spec, "--data", tmp_path / "d.npz", "--loss",
                 "sparse_categorical_crossentropy", "-o", tmp_path / "w.npz")
    assert result.exit_code == 0, result.output


def test_inspect_nodes_unknown_model_is_an_error_not_an_empty_table(tmp_path):
    spec = write_spec(tmp_path, MLP)
    result = run("inspect-nodes", spec, "--model", "nope")
    assert result.exit_code == 1
    assert result.output == f"error: {spec} has no model 'nope' (models: mlp)\n"


def test_validate_reports_every_schema_error_of_a_file_in_one_run(tmp_path):
    spec = write_spec(tmp_path, MLP.replace("units: 8,", "unitz: 8,").replace(
        "units: 3,", "untis: 3,"))
    result = run("validate", spec)
    assert result.exit_code == 1
    assert "layers.dense_1.unitz: unknown key 'unitz'" in result.output
    assert "layers.out.untis: unknown key 'untis'" in result.output


def _interrupting_fit(save_first):
    def fit(self, data, checkpoint_dir=None, **kwargs):
        if save_first:
            self.epoch = 1
            self.save_checkpoint(checkpoint_dir, 0)
        raise KeyboardInterrupt
    return fit


def test_ctrl_c_in_train_exits_130_saying_what_was_saved(job, tmp_path, monkeypatch):
    spec, data, out = job
    monkeypatch.setattr(Trainer, "fit", _interrupting_fit(False))
    result = run("train", spec, "--data", data, "-o", out)
    assert result.exit_code == 130
    assert result.output.strip() == f"interrupted: no checkpoint was written; {out} was not " \
                                    "written (training did not finish)"
    monkeypatch.setattr(Trainer, "fit", _interrupting_fit(True))
    ck = tmp_path / "ck"
    result = run("train", spec, "--data", data, "-o", out, "--checkpoint", ck)
    assert result.exit_code == 130
    assert result.output.strip() == (
        f"interrupted: the last checkpoint is {ck / 'checkpoint.npz'} (continue with --resume); "
        f"{out} was not written (training did not finish)")
    assert not out.exists() and not (ck / "checkpoint.npz.lock").exists()


def test_weights_of_another_spec_list_the_mismatches_and_say_how_to_compare(tmp_path):
    spec = write_spec(tmp_path, MLP)
    other = write_spec(tmp_path, MLP.replace("units: 8,", "units: 5,"), "other.yaml")
    assert run("build", other, "-o", tmp_path / "w.npz").exit_code == 0
    np.save(tmp_path / "x.npy", np.ones((1, 4), np.float32))
    result = run("predict", spec, "--weights", tmp_path / "w.npz", "--input",
                 f"x={tmp_path / 'x.npy'}")
    assert result.exit_code == 1 and len(result.output.splitlines()) == 1
    assert "'dense_1/kernel' has shape (4, 5), the spec needs (4, 8)" in result.output
    assert f"compare the layers with: graphspec inspect-nodes {spec}" in result.output


def _strict(text):
    def refuse(constant):
        raise ValueError(f"bare {constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_json_outputs_are_strict_json(tmp_path):
    """Issue 15: no bare NaN/Infinity (history, evaluate/inspect-nodes/validate JSON)."""
    history = {"loss": [0.5, float("nan")], "val_loss": [float("inf"), 1.0]}
    files.save_json(tmp_path / "h.json", history)
    assert _strict((tmp_path / "h.json").read_text()) == {"loss": [0.5, None],
                                                          "val_loss": [None, 1.0]}
    assert _strict(files.dumps_json({"a": -math.inf})) == {"a": None}
    spec = write_spec(tmp_path, MLP)
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    result = run("inspect-nodes", spec, "--format", "json", "--input", f"x={tmp_path / 'x.npy'}",
                 "--seed", "0")
    assert _strict(result.stdout)[0]["layer"] == "dense_1"


def test_inspect_nodes_on_zero_rows_is_a_refusal_not_an_internal_error(tmp_path):
    spec = write_spec(tmp_path, MLP)
    np.save(tmp_path / "x0.npy", np.ones((0, 4), np.float32))
    result = run("inspect-nodes", spec, "--input", f"x={tmp_path / 'x0.npy'}", "--seed", "0")
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: --input x: {tmp_path / 'x0.npy'} has 0 rows "
                                     "(shape (0, 4)); node statistics need at least one sample")


def test_learning_rate_alone_keeps_the_jobs_optimizer(tmp_path):
    """Issue 15 defect 9: --learning-rate on an sgd job trained with RMSprop."""
    spec = write_spec(tmp_path, TRAINABLE.replace(
        "    epochs: 1", "    optimizer: {type: sgd, learning_rate: 0.01, momentum: 0.5}\n"
                        "    epochs: 3\n    shuffle: false"))
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.normal(size=(8, 4)).astype(np.float32),
             probs=rng.integers(0, 3, 8))

    def history(*flags):
        out = tmp_path / "h.json"
        result = run("train", spec, "--data", tmp_path / "d.npz", "-o", tmp_path / "w.npz",
                     "--seed", "0", "--history", out, *flags)
        assert result.exit_code == 0, result.output
        return json.loads(out.read_text())["loss"]

    alone = history("--learning-rate", "0.05")
    spelled_out = TRAINABLE.replace(
        "    epochs: 1", "    optimizer: {type: sgd, learning_rate: 0.05, momentum: 0.5}\n"
                        "    epochs: 3\n    shuffle: false")
    write_spec(tmp_path, spelled_out)                           # same file, lr written in
    assert alone == history()                                   # sgd, momentum kept
    assert alone != history("--optimizer", "rmsprop", "--learning-rate", "0.05")
