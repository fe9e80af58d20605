"""Outputs whose name alone makes them useless are refused before any work."""
import numpy as np
from click.testing import CliRunner

from graphspec.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_keras_export_must_end_in_dot_keras(tmp_path):
    assert run("build", "specs/mlp.yaml", "--set", "input_dim=4", "-o", tmp_path / "w.npz",
               "--seed", "0").exit_code == 0
    result = run("export", "specs/mlp.yaml", "--weights", tmp_path / "w.npz", "--format",
                 "keras", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 2 and "must end in .keras" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_train_output_equal_to_the_checkpoint_directory_is_refused_first(tmp_path):
    np.savez(tmp_path / "d.npz", pixels=np.ones((4, 4), np.float32), digit=np.arange(4))
    result = run("train", "specs/mlp.yaml", "--set", "input_dim=4", "--data",
                 tmp_path / "d.npz", "--loss", "sparse_categorical_crossentropy",
                 "-o", tmp_path / "ck", "--checkpoint", tmp_path / "ck")
    assert result.exit_code == 2 and "is also the --checkpoint directory" in result.output
    assert not (tmp_path / "ck").exists()
