"""plot-history: real curves from `graphspec train --history`, and history files that are
not histories refused with one line."""
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import MLP, write_spec

from graphspec.cli.plot_commands import plot_history_command
from graphspec.cli.train_commands import train
from graphspec.errors import InputError
from graphspec.viz import history_plot
from graphspec.viz.history_plot import draw, load_history, panels

TRAINABLE = MLP + """
training:
  default:
    model: mlp
    loss: sparse_categorical_crossentropy
    optimizer: {type: adam, learning_rate: 0.05}
    metrics: [accuracy]
    epochs: 4
    batch_size: 8
"""


def run(command, args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two real histories: the same tiny classifier trained from two seeds."""
    root = tmp_path_factory.mktemp("history")
    spec = write_spec(root, TRAINABLE)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 4)).astype(np.float32)
    np.savez(root / "data.npz", x=x, probs=(x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1))
    paths = []
    for seed in (0, 1):
        history = root / f"seed{seed}.json"
        result = run(train, [spec, "--data", root / "data.npz", "-o", root / f"w{seed}.npz",
                             "--history", history, "--validation-split", "0.25",
                             "--seed", seed])
        assert result.exit_code == 0, result.output
        paths.append(history)
    return root, paths


def test_a_real_history_has_loss_and_val_loss_in_one_panel(trained):
    _, paths = trained
    history = load_history(paths[0])
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(history)
    assert len(history["loss"]) == 4
    histories = [(p.name, load_history(p)) for p in paths]
    names = panels(histories)
    assert names[0] == "loss" and "accuracy" in names and "val_loss" not in names
    assert panels(histories, ["val_accuracy"]) == ["accuracy"]
    figure = draw(histories, names)
    axes = [ax for ax in figure.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == names
    loss_axes = axes[0]
    assert [line.get_label() for line in loss_axes.lines] == [
        "seed0.json: loss", "seed0.json: val_loss", "seed1.json: loss", "seed1.json: val_loss"]
    assert [line.get_linestyle() for line in loss_axes.lines] == ["-", "--", "-", "--"]
    first = loss_axes.lines[0]
    assert list(first.get_xdata()) == [1, 2, 3, 4]
    np.testing.assert_allclose(first.get_ydata(), history["loss"])
    assert loss_axes.get_xlabel() == "epoch"


def test_cli_writes_png_svg_and_pdf(trained):
    root, paths = trained
    for name, magic in (("loss.png", b"\x89PNG"), ("loss.svg", b"<?xml"), ("loss.pdf", b"%PDF")):
        result = run(plot_history_command, [*paths, "-o", root / name])
        assert result.exit_code == 0, result.output
        assert (root / name).read_bytes().startswith(magic)
    result = run(plot_history_command, [paths[0], "--metric", "loss", "--log-y",
                                        "-o", root / "only.png"])
    assert result.exit_code == 0, result.output


def test_null_and_nan_entries_are_gaps(tmp_path):
    path = tmp_path / "h.json"
    path.write_text('{"loss": [1.0, null, NaN, Infinity, 0.5], "val_loss": [2, 1e999]}')
    history = load_history(path)
    assert history["loss"][0] == 1.0 and history["loss"][4] == 0.5
    assert all(np.isnan(history["loss"][1:4])) and np.isnan(history["val_loss"][1])
    figure = draw([("h.json", history)], ["loss"])
    assert np.isnan(figure.axes[0].lines[0].get_ydata()[1])


HOSTILE = {
    "not JSON": (b"loss: [1, 2]\n", "is not valid JSON: Expecting value: line 1 column 1"),
    "a list": (b"[1, 2, 3]", "holds a list; a history is a JSON object"),
    "empty": (b"{}", "has no metrics"),
    "no epochs": (b'{"loss": []}', "has no epochs"),
    "not a list": (b'{"loss": 0.5}', "metric 'loss' is a number, expected a list"),
    "a string": (b'{"loss": [0.5, "0.4"]}', "metric 'loss' epoch 2 is a string"),
    "a boolean": (b'{"loss": [true]}', "metric 'loss' epoch 1 is a boolean"),
    "nested": (b'{"loss": [[0.5]]}', "metric 'loss' epoch 1 is a list"),
    "deep": (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON"),
    "binary": (b"\xff\xfe\x00{", "is not UTF-8 text"),
    "huge integer": (b'{"loss": [' + b"9" * 5000 + b"]}", "is not valid JSON"),
    "newline name": (b'{"lo\\nss": "x"}', "metric 'lo\\x0ass' is a string"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_file_that_is_not_a_history_is_refused_with_one_line(case, tmp_path):
    content, message = HOSTILE[case]
    path = tmp_path / "h.json"
    path.write_bytes(content)
    result = run(plot_history_command, [path, "-o", tmp_path / "out.png"])
    assert result.exit_code == 1, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output and str(path) in result.output
    assert not (tmp_path / "out.png").exists()


def test_huge_histories_are_refused_before_plotting(monkeypatch, tmp_path):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"loss": [0.5] * 11}))
    monkeypatch.setattr(history_plot, "MAX_EPOCHS", 10)
    with pytest.raises(InputError, match="has 11 entries, more than the limit of 10 epochs"):
        load_history(path)
    path.write_text(json.dumps({f"m{i}": [1.0] for i in range(20)}))
    with pytest.raises(InputError, match="have 20 metrics; plot-history draws at most 16"):
        panels([("h", load_history(path))])
    monkeypatch.setattr(history_plot, "MAX_HISTORY_BYTES", 100)
    path.write_text(json.dumps({"loss": [0.5] * 100}))
    with pytest.raises(InputError, match="is larger than"):
        load_history(path)


def test_mathtext_in_names_is_shown_not_parsed(tmp_path):
    path = tmp_path / "$\\frac{1}{0}$.json"
    path.write_text('{"$\\\\sqrt{x}$": [1, 2]}')
    result = run(plot_history_command, [path, "-o", tmp_path / "out.png"])
    assert result.exit_code == 0, result.output
    figure = draw([(path.name, load_history(path))], ["$\\sqrt{x}$"])
    assert figure.axes[0].get_title() == "\\$\\sqrt{x}\\$"


def test_output_on_a_history_file_is_refused(trained):
    _, paths = trained
    before = paths[1].read_bytes()
    result = run(plot_history_command, [*paths, "-o", paths[1]])
    assert result.exit_code == 2 and "name the same file" in result.output
    assert paths[1].read_bytes() == before


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    path = tmp_path / "h.json"
    path.write_text('{"loss": [1, 0.5]}')
    for module in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, module, None)
    result = run(plot_history_command, [path, "-o", tmp_path / "out.png"])
    assert result.exit_code == 1
    assert result.output == ("error: plot-history needs matplotlib: "
                             "pip install 'graphspec[plot]'\n")


def test_the_plot_commands_do_not_import_matplotlib():
    code = ("import sys, graphspec.cli.plot_commands; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_files_with_the_same_name_are_told_apart_by_path():
    assert history_plot.labels_for(["runs/a/h.json", "runs/b/h.json", "x.json"]) == \
        ["runs/a/h.json", "runs/b/h.json", "x.json"]
    assert history_plot.labels_for(["runs/a/h.json", "y.json"]) == ["h.json", "y.json"]
