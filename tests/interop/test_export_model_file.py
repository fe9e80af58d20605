"""`graphspec export` takes a model file as SPEC, as every other command does."""
from click.testing import CliRunner

from graphspec.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_export_from_a_packed_model_needs_no_weights(tmp_path):
    assert run("build", "specs/mlp.yaml", "--set", "input_dim=6", "--seed", "0",
               "-o", tmp_path / "w.npz").exit_code == 0
    assert run("pack", "specs/mlp.yaml", "--weights", tmp_path / "w.npz",
               "-o", tmp_path / "m.gspec.zip").exit_code == 0
    result = run("export", tmp_path / "m.gspec.zip", "--format", "onnx",
                 "-o", tmp_path / "m.onnx", "--check", "2")
    assert result.exit_code == 0, result.output
    assert "max rel" in result.output and (tmp_path / "m.onnx").is_file()


def test_export_of_a_spec_without_weights_is_a_usage_error(tmp_path):
    result = run("export", "specs/mlp.yaml", "--format", "onnx", "-o", tmp_path / "m.onnx")
    assert result.exit_code == 2
    assert "give --weights W.npz, or a model file (graphspec pack) as SPEC" in result.output
    assert not (tmp_path / "m.onnx").exists()
