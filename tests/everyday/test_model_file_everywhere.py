"""A packed model file is a SPEC for validate, plot and diff too (QA: they refused it)."""
from click.testing import CliRunner

from graphspec.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _packed(tmp_path):
    assert run("build", "specs/mlp.yaml", "--set", "input_dim=6", "--seed", "0",
               "-o", tmp_path / "w.npz").exit_code == 0
    assert run("pack", "specs/mlp.yaml", "--weights", tmp_path / "w.npz",
               "-o", tmp_path / "m.gspec.zip").exit_code == 0
    return tmp_path / "m.gspec.zip"


def test_validate_plot_and_diff_take_a_model_file(tmp_path):
    packed = _packed(tmp_path)
    assert run("validate", packed).exit_code == 0
    plotted = run("plot", packed, "-o", tmp_path / "m.dot")
    assert plotted.exit_code == 0, plotted.output
    assert "(None, 6)" in (tmp_path / "m.dot").read_text()      # the recorded input_dim
    same = run("diff", packed, "specs/mlp.yaml", "--set-new", "input_dim=6")
    assert same.exit_code == 0, same.output                     # no model change
    wider = run("diff", packed, "specs/mlp.yaml", "--set-new", "input_dim=8")
    assert wider.exit_code == 1 and "input_dim  6 → 8" in wider.output
