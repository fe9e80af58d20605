"""`predict --data D.npz` takes the same file train and evaluate read: its targets are not
inputs and are left out (a test set is predicted as it is)."""
import numpy as np
from click.testing import CliRunner

from graphspec.cli import main


def test_predict_on_a_training_npz_ignores_its_targets(tmp_path):
    run = CliRunner().invoke
    assert run(main, ["build", "specs/mlp.yaml", "--set", "input_dim=5", "--seed", "0",
                      "-o", str(tmp_path / "w.npz")]).exit_code == 0
    x = np.random.default_rng(0).normal(size=(6, 5)).astype(np.float32)
    np.savez(tmp_path / "test.npz", pixels=x, digit=np.arange(6) % 10)
    np.save(tmp_path / "x.npy", x)
    from_data = run(main, ["predict", "specs/mlp.yaml", "--weights", str(tmp_path / "w.npz"),
                           "--data", str(tmp_path / "test.npz"), "-o", str(tmp_path / "a.npz")])
    assert from_data.exit_code == 0, from_data.output
    from_input = run(main, ["predict", "specs/mlp.yaml", "--weights", str(tmp_path / "w.npz"),
                            "--input", f"pixels={tmp_path / 'x.npy'}", "-o",
                            str(tmp_path / "b.npz")])
    assert from_input.exit_code == 0, from_input.output
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(a["digit"], b["digit"])


def test_predict_data_to_a_npy_writes_a_npy(tmp_path):
    run = CliRunner().invoke
    assert run(main, ["build", "specs/mlp.yaml", "--set", "input_dim=5", "--seed", "0",
                      "-o", str(tmp_path / "w.npz")]).exit_code == 0
    np.savez(tmp_path / "t.npz", pixels=np.ones((3, 5), np.float32))
    result = run(main, ["predict", "specs/mlp.yaml", "--weights", str(tmp_path / "w.npz"),
                        "--data", str(tmp_path / "t.npz"), "-o", str(tmp_path / "p.npy")])
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "p.npy", allow_pickle=False).shape == (3, 10)
