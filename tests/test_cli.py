"""The CLI through click's test runner: every command, its output and its exit codes."""
import json

import jsonschema
import numpy as np
from click.testing import CliRunner
from specs_util import MLP, write_spec

from graphspec.cli import main


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def test_validate_ok_and_invalid_exit_codes(tmp_path):
    good = write_spec(tmp_path, MLP, "good.yaml")
    bad = write_spec(tmp_path, MLP.replace("units: 8,", "unitz: 8,"), "bad.yaml")
    assert run("validate", good).exit_code == 0
    result = run("validate", good, bad)
    assert result.exit_code == 1
    assert f"{bad}:3:26: layers.dense_1.unitz: unknown key 'unitz'" in result.output
    assert run("validate").exit_code == 2            # usage error
    assert run("validate", "--format", "xml", good).exit_code == 2


def test_validate_directory_json_and_github_formats(tmp_path):
    write_spec(tmp_path, MLP, "a.yaml")
    write_spec(tmp_path, MLP.replace("in: h,", "in: hh,"), "b.yml")
    result = run("validate", "--format", "json", tmp_path)
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [r["valid"] for r in report] == [True, False]
    assert report[1]["errors"][0]["path"] == "models.mlp.calls[1].in"
    assert report[1]["errors"][0]["line"] == 11
    result = run("validate", "--format", "github", tmp_path)
    assert result.output.startswith(f"::error file={tmp_path / 'b.yml'},line=11,col=26,title=graphspec validate::"
                                    "models.mlp.calls[1].in: tensor 'hh'")


def test_missing_file_is_a_usage_error_line_not_a_traceback(tmp_path):
    result = run("validate", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert result.output == f"error: cannot read '{tmp_path / 'nope.yaml'}': no such file or " \
                            "directory\n"


def test_build_prints_summary_and_saves_weights(tmp_path):
    spec = write_spec(tmp_path, MLP)
    out = tmp_path / "w.npz"
    result = run("build", spec, "--seed", "3", "-o", out)
    assert result.exit_code == 0, result.output
    assert 'Model: "mlp"' in result.output
    assert "dense_1 (Dense)" in result.output and "Total params: 67" in result.output
    with np.load(out) as weights:
        assert sorted(weights.files) == ["__graphspec__", "dense_1/bias", "dense_1/kernel",
                                         "out/bias", "out/kernel"]   # + the metadata member
        assert weights["dense_1/kernel"].shape == (4, 8)
        assert not weights["dense_1/bias"].any()
        limit = np.sqrt(6 / (4 + 8))            # glorot_uniform
        assert np.abs(weights["dense_1/kernel"]).max() <= limit
    again = tmp_path / "w2.npz"
    run("build", spec, "--seed", "3", "-o", again)
    with np.load(out) as a, np.load(again) as b:
        np.testing.assert_array_equal(a["out/kernel"], b["out/kernel"])


def test_predict_prints_and_saves_outputs(tmp_path):
    spec = write_spec(tmp_path, MLP)
    np.save(tmp_path / "x.npy", np.ones((5, 4), np.float32))
    run("build", spec, "--seed", "0", "-o", tmp_path / "w.npz")
    result = run("predict", spec, "--weights", tmp_path / "w.npz", "--input",
                 f"x={tmp_path / 'x.npy'}")
    assert result.exit_code == 0 and "probs (5, 3)" in result.output
    result = run("predict", spec, "--weights", tmp_path / "w.npz", "--input",
                 f"x={tmp_path / 'x.npy'}", "-o", tmp_path / "out.npz", "--batch-size", "2")
    assert result.exit_code == 0
    with np.load(tmp_path / "out.npz") as out:
        np.testing.assert_allclose(out["probs"].sum(axis=1), 1, rtol=1e-6)


def test_predict_refuses_wrong_input_arrays(tmp_path):
    spec = write_spec(tmp_path, MLP)
    np.save(tmp_path / "bad.npy", np.ones((5, 3), np.float32))
    result = run("predict", spec, "--input", f"x={tmp_path / 'bad.npy'}")
    assert result.exit_code == 1
    assert "input 'x' of model 'mlp' expects shape (None, 4) (batch first), got an array " \
           "of shape (5, 3)" in result.output
    result = run("predict", spec, "--input", f"y={tmp_path / 'bad.npy'}")
    assert result.exit_code == 1 and "missing ['x'], unexpected ['y']" in result.output
    result = run("predict", spec, "--input", "x")
    assert result.exit_code == 2


def test_predict_refuses_mismatched_weights_listing_problems(tmp_path):
    spec = write_spec(tmp_path, MLP)
    np.savez(tmp_path / "w.npz", **{"dense_1/kernel": np.zeros((3, 8))})
    np.save(tmp_path / "x.npy", np.ones((1, 4)))
    result = run("predict", spec, "--weights", tmp_path / "w.npz", "--input",
                 f"x={tmp_path / 'x.npy'}")
    assert result.exit_code == 1
    assert "'dense_1/kernel' has shape (3, 8), the spec needs (4, 8)" in result.output
    assert "missing 'out/kernel' (8, 3)" in result.output


def test_inspect_nodes_json_has_exactly_the_documented_keys(tmp_path):
    spec = write_spec(tmp_path, MLP)
    result = run("inspect-nodes", spec, "--format", "json")
    records = json.loads(result.output)
    assert [set(r) for r in records] == [{"layer", "node_index", "model", "inbound",
                                          "input_shapes", "output_shapes",
                                          "output_masks"}] * 2
    assert records[1] == {"layer": "out", "node_index": 0, "model": "mlp", "inbound": ["h"],
                          "input_shapes": [[None, 8]], "output_shapes": [[None, 3]],
                          "output_masks": [None]}


def test_inspect_nodes_with_inputs_shows_statistics(tmp_path):
    spec = write_spec(tmp_path, MLP)
    np.save(tmp_path / "x.npy", np.ones((6, 4), np.float32))
    result = run("inspect-nodes", spec, "--format", "json", "--input", f"x={tmp_path / 'x.npy'}",
                 "--seed", "1")
    records = json.loads(result.stdout)
    stats = records[1]["stats"][0]
    assert stats["shape"] == [6, 3] and abs(stats["mean"] - 1 / 3) < 1e-6
    table = run("inspect-nodes", spec, "--layer", "out").output
    assert "out" in table.splitlines()[2] and "(None, 8)" in table


def test_schema_command_prints_a_valid_json_schema(tmp_path):
    result = run("schema")
    schema = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "Dense" in schema["$defs"]["layer"]["properties"]["type"]["enum"]
    run("schema", "-o", tmp_path / "s.json")
    assert json.loads((tmp_path / "s.json").read_text()) == schema


def test_usage_error_for_bad_set_option(tmp_path):
    spec = write_spec(tmp_path, MLP)
    assert run("build", spec, "--set", "novalue").exit_code == 2
    result = run("build", spec, "--set", "width=3")
    assert result.exit_code == 1 and "declares no param 'width'" in result.output


def test_committed_schema_file_is_current():
    """specs/ point editors at ../graphspec.schema.json; `make schema` regenerates it."""
    from specs_util import REPO

    from graphspec.spec.schema import spec_schema
    committed = json.loads((REPO / "graphspec.schema.json").read_text())
    assert committed == spec_schema(), "run `make schema` and commit graphspec.schema.json"


def test_running_without_weights_warns_once_with_the_seed(tmp_path):
    """Issue 15 defect 4: random weights were used silently."""
    import re
    spec = write_spec(tmp_path, MLP.replace("outputs: [probs]", "outputs: [probs]\ntraining:\n"
                                            "  default: {model: mlp, loss: mse}"))
    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    np.savez(tmp_path / "d.npz", x=np.ones((2, 4), np.float32), probs=np.ones((2, 3)))
    x = f"x={tmp_path / 'x.npy'}"
    for argv in (["predict", spec, "--input", x], ["inspect-nodes", spec, "--input", x],
                 ["evaluate", spec, "--data", tmp_path / "d.npz"]):
        result = run(*argv)
        assert result.exit_code == 0, result.output
        warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 1, result.stderr
        seed = re.search(r"fresh random weights \(seed (\d+); --seed \1 repeats them\)",
                         warnings[0])
        assert seed, warnings[0]
        again = run(*argv, "--seed", seed.group(1))
        assert again.stdout == result.stdout          # the seed shown does repeat the run
    run("build", spec, "-o", tmp_path / "w.npz")
    quiet = run("predict", spec, "--input", x, "--weights", tmp_path / "w.npz")
    assert quiet.exit_code == 0 and "warning" not in quiet.stderr
