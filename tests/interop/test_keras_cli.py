"""``graphspec import-keras`` through click's runner: files written, one-line errors,
outputs that would destroy the input refused."""
import json
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import compare_outputs

from graphspec import api
from graphspec.cli.keras_commands import import_keras


def run(*args):
    result = CliRunner().invoke(import_keras, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="session")
def small_model(keras, keras_dir):
    L = keras.layers
    keras.utils.set_random_seed(20)
    x = keras.Input((5,), name="features")
    model = keras.Model(x, L.Dense(2, activation="softmax", name="probs")(
        L.Dense(4, activation="relu", name="hidden-1")(x)), name="classifier")
    path = keras_dir / "cli_small.keras"
    model.save(path)
    return model, path


def test_import_writes_spec_and_weights_that_predict_like_keras(small_model, tmp_path):
    model, path = small_model
    spec, weights = tmp_path / "model.yaml", tmp_path / "model.npz"
    result = run(path, "-o", spec, "--weights-out", weights)
    assert result.exit_code == 0, result.output
    assert "renamed 'hidden-1' -> 'hidden_1'" in result.output
    assert api.validate(spec) == []
    graph = api.load(spec)
    graph.load_weights(weights)
    x = np.random.default_rng(0).standard_normal((4, 5)).astype("float32")
    compare_outputs("cli classifier", [model.predict(x, verbose=0)],
                    [graph.model().predict(x)["probs"]])


def test_bare_config_json_gives_a_spec_without_weights(small_model, tmp_path):
    _, path = small_model
    config = tmp_path / "config.json"
    config.write_bytes(zipfile.ZipFile(path).read("config.json"))
    spec = tmp_path / "model.yaml"
    assert run(config, "-o", spec).exit_code == 0
    assert api.load(spec, seed=0).model().input_names == ["features"]
    result = run(config, "-o", spec, "--weights-out", tmp_path / "w.npz")
    assert result.exit_code == 1 and "holds no weights" in result.output
    assert not (tmp_path / "w.npz").exists()


def test_refusal_is_one_line_and_writes_nothing(small_model, tmp_path):
    _, path = small_model
    parts = {n: zipfile.ZipFile(path).read(n) for n in zipfile.ZipFile(path).namelist()}
    config = json.loads(parts["config.json"])
    config["config"]["layers"][1]["class_name"] = "Lambda"
    parts["config.json"] = json.dumps(config).encode()
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    spec = tmp_path / "out.yaml"
    result = run(bad, "-o", spec, "--weights-out", tmp_path / "w.npz")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "config.layers[1]" in lines[0] and "Lambda" in lines[0]
    assert not spec.exists() and not (tmp_path / "w.npz").exists()


@pytest.mark.parametrize("outputs", [("-o", "INPUT"), ("-o", "SAME", "--weights-out", "SAME"),
                                     ("-o", "x.yaml", "--weights-out", "INPUT")])
def test_outputs_naming_the_input_or_each_other_are_refused(small_model, tmp_path, outputs):
    _, path = small_model
    copy = tmp_path / "model.keras"
    copy.write_bytes(path.read_bytes())
    names = {"INPUT": copy, "SAME": tmp_path / "same.out"}
    args = [names.get(a, tmp_path / a if a.endswith(".yaml") else a) for a in outputs]
    before = copy.read_bytes()
    result = run(copy, *args)
    assert result.exit_code == 2, result.output
    assert "name the same file" in result.output
    assert copy.read_bytes() == before


def test_help_description_ends_with_examples():
    text = run("--help").output
    lines = text.split("Examples:")[1].strip().splitlines()
    assert [line.split()[:2] for line in lines[:3]] == [["graphspec", "import-keras"]] * 2 \
        + [["graphspec", "inspect-nodes"]]
    assert lines[3].strip() == "" and "--weights-out" in text

