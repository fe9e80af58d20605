"""No command destroys its own inputs (issue 9, issue 15 defect 3).

The table below lists EVERY command registered on ``graphspec.cli.main``: how to call
it on valid files, which options name files it reads, and which options it writes. A
command registered without an entry fails ``test_the_table_lists_every_command``; a
command listed with outputs that does not call ``graphspec.io.files.guard_outputs``
fails the parametrized refusals.
"""
import os
from dataclasses import dataclass, field

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import MLP, write_spec

from graphspec.cli import main

# A param (width) so `sweep` has a grid to run.
TRAINABLE_MLP = MLP.replace("graphspec: 1\n", "graphspec: 1\nparams:\n  width: 8\n").replace(
    "units: 8,", 'units: "${width}",') + """
training:
  default:
    model: mlp
    loss: sparse_categorical_crossentropy
    optimizer: {type: sgd, learning_rate: 0.01}
    epochs: 1
    batch_size: 4
"""


@dataclass
class Command:
    argv: list                      # "{spec}", "{weights}", "{x}", "{data}", "{out}" filled in
    reads: dict                     # option label in messages -> fixture file it names
    writes: dict = field(default_factory=dict)   # option -> "file" | "dir/<file in it>"


COMMANDS = {
    "validate": Command(["validate", "{spec}"], {"SPEC": "spec"}),
    "build": Command(["build", "{spec}"], {"SPEC": "spec"}, {"-o": "file"}),
    "predict": Command(["predict", "{spec}", "--weights", "{weights}", "--input", "x={x}"],
                       {"SPEC": "spec", "--weights": "weights", "--input x": "x"},
                       {"-o": "file"}),
    "inspect-nodes": Command(["inspect-nodes", "{spec}", "--weights", "{weights}",
                              "--input", "x={x}"],
                             {"SPEC": "spec", "--weights": "weights", "--input x": "x"}),
    "train": Command(["train", "{spec}", "--weights", "{weights}", "--data", "{data}",
                      "-o", "{out}"],
                     {"SPEC": "spec", "--weights": "weights", "--data": "data"},
                     {"-o": "file", "--history": "file", "--checkpoint": "dir/checkpoint.npz"}),
    "evaluate": Command(["evaluate", "{spec}", "--weights", "{weights}", "--data", "{data}"],
                        {"SPEC": "spec", "--weights": "weights", "--data": "data"}),
    "schema": Command(["schema"], {}, {"-o": "file"}),
    "plot": Command(["plot", "{spec}"], {"SPEC": "spec"}, {"-o": "file"}),
    "plot-history": Command(["plot-history", "{history}", "-o", "{png}"],
                            {"HISTORY": "history"}, {"-o": "file"}),
    "diff": Command(["diff", "{spec}", "{spec}", "--weights", "{weights}", "--migrate",
                     "-o", "{out}"], {"OLD": "spec", "--weights": "weights"}, {"-o": "file"}),
    "pack": Command(["pack", "{spec}", "--weights", "{weights}", "-o", "{out}"],
                    {"SPEC": "spec", "--weights": "weights"}, {"-o": "file"}),
    "init": Command(["init", "--data", "{csv}", "--target", "label", "-o", "{yaml_out}"],
                    {"--data": "csv"}, {"-o": "file"}),
    "adapt": Command(["adapt", "{norm_spec}", "--data", "{data}", "-o", "{out}"],
                     {"SPEC": "norm_spec", "--data": "data"}, {"-o": "file"}),
    "import-keras": Command(["import-keras", "{keras}", "-o", "{yaml_out}"],
                            {"MODEL.keras|CONFIG.json": "keras"},
                            {"-o": "file", "--weights-out": "file"}),
    "sweep": Command(["sweep", "{spec}", "--data", "{data}", "--set", "width=4", "--epochs",
                      "1", "-o", "{json_out}"], {"SPEC": "spec", "--data": "data"},
                     {"-o": "file"}),
    "export": Command(["export", "{spec}", "--weights", "{weights}", "--format", "onnx",
                       "-o", "{out}"], {"SPEC": "spec", "--weights": "weights"},
                      {"-o": "file"}),
}


def _keras_file(spec, weights, root):
    """A .keras archive of the MLP (written by graphspec itself: keras is not needed)."""
    import graphspec
    from graphspec.interop.keras_export import export_keras
    graph = graphspec.load(spec, seed=0)
    graph.load_weights(weights)
    path = root / "m.keras"
    export_keras(graph, path)
    return path


def run(argv):
    result = CliRunner().invoke(main, [str(a) for a in argv])
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("guard")   # fresh per test: a failing guard destroys them
    spec = write_spec(root, TRAINABLE_MLP)
    weights = root / "w.npz"
    assert run(["build", spec, "--seed", "0", "-o", weights]).exit_code == 0
    rng = np.random.default_rng(0)
    np.save(root / "x.npy", rng.normal(size=(8, 4)).astype(np.float32))
    # The data file is named like a checkpoint so "--checkpoint DIR" can point at it.
    (root / "data").mkdir()
    np.savez(root / "data" / "checkpoint.npz", x=rng.normal(size=(8, 4)).astype(np.float32),
             probs=rng.integers(0, 3, 8))
    (root / "h.json").write_text('{"loss": [1.0, 0.5]}')
    norm_spec = write_spec(root, MLP.replace("layers:\n", "layers:\n  norm: {type: Normalization}\n")
                           .replace("- {layer: dense_1, in: x, out: h}",
                                    "- {layer: norm, in: x, out: z}\n      "
                                    "- {layer: dense_1, in: z, out: h}"), "norm.yaml")
    (root / "t.csv").write_text("a,b,label\n" + "".join(
        f"{i * 0.5},{i % 3},{'xyz'[i % 3]}\n" for i in range(12)))
    return {"spec": spec, "weights": weights, "x": root / "x.npy",
            "history": root / "h.json", "png": root / "curves.png",
            "norm_spec": norm_spec, "csv": root / "t.csv", "yaml_out": root / "started.yaml",
            "keras": _keras_file(spec, weights, root), "json_out": root / "sweep.json",
            "data": root / "data" / "checkpoint.npz", "out": root / "out.npz", "root": root}


def argv_of(command: Command, files: dict, replace: dict | None = None) -> list:
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in command.argv]
    for option, value in (replace or {}).items():
        if option in argv:
            argv[argv.index(option) + 1] = str(value)
        else:
            argv += [option, str(value)]
    return argv


def value_for(kind: str, path) -> str | None:
    """The option value that makes this output land on ``path`` (None: impossible)."""
    if kind == "file":
        return str(path)
    inner = kind.split("/", 1)[1]
    return str(os.path.dirname(path)) if os.path.basename(path) == inner else None


CLASHES = [(name, option, label) for name, c in COMMANDS.items()
           for option, kind in c.writes.items() for label, key in c.reads.items()
           if kind == "file" or key == "data"]
WRITERS = [(name, option) for name, c in COMMANDS.items() for option in c.writes]


def registered_commands() -> list:
    return sorted(name for name in main.commands)


def test_the_table_lists_every_command():
    assert sorted(COMMANDS) == registered_commands(), \
        "add the new command to COMMANDS with the files it reads and the options it writes"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_table_entry_runs_as_written(name, files, tmp_path):
    """The base command lines are valid, so a refusal below is the guard's."""
    result = run(argv_of(COMMANDS[name], {**files, "out": tmp_path / "out.npz"}))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("link", ["same", "symlink", "hardlink"])
@pytest.mark.parametrize("name,option,label", CLASHES)
def test_an_output_naming_an_input_is_refused_before_any_work(name, option, label, link, files,
                                                              tmp_path):
    command = COMMANDS[name]
    target = files[command.reads[label]]
    before = target.read_bytes()
    if link != "same" and command.writes[option] != "file":
        pytest.skip("a directory option is reached through the file's own directory")
    if link == "symlink":
        alias = tmp_path / "alias"
        alias.symlink_to(target)
    elif link == "hardlink":
        alias = tmp_path / "alias"
        os.link(target, alias)
    else:
        alias = target
    value = value_for(command.writes[option], alias)
    result = run(argv_of(command, {**files, "out": tmp_path / "out.npz"}, {option: value}))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"{option} and {label} name the same file" in lines[0] or \
        f"{label} and {option} name the same file" in lines[0], lines[0]
    assert str(alias) in lines[0]
    assert target.read_bytes() == before
    assert not (tmp_path / "out.npz").exists()


@pytest.mark.parametrize("name,option", WRITERS)
def test_an_empty_output_path_is_refused(name, option, files, tmp_path):
    result = run(argv_of(COMMANDS[name], {**files, "out": tmp_path / "out.npz"}, {option: ""}))
    assert result.exit_code == 2, result.output
    assert f"{option}: empty path" in result.output


EMPTY_INPUTS = [(name, option) for name, c in COMMANDS.items()
                for option in ("--weights", "--data") if option in c.argv]


@pytest.mark.parametrize("name,option", EMPTY_INPUTS)
def test_an_empty_input_path_is_refused_not_ignored(name, option, files, tmp_path):
    """``--weights ""`` (an unset shell variable) ran with random weights."""
    result = run(argv_of(COMMANDS[name], {**files, "out": tmp_path / "out.npz"}, {option: ""}))
    assert result.exit_code == 2, result.output
    assert f"{option}: empty path" in result.output


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if "--input" in c.argv])
def test_input_twice_or_empty_is_refused(name, files):
    argv = argv_of(COMMANDS[name], files)
    twice = run(argv + ["--input", f"x={files['x']}"])
    assert twice.exit_code == 2 and "input 'x' given twice" in twice.output
    empty = run(argv[:argv.index("--input")] + ["--input", "x="])
    assert empty.exit_code == 2 and "empty path" in empty.output


@pytest.mark.parametrize("extra,first,second", [
    (["-o", "{root}/w2.npz", "--history", "{root}/w2.npz"], "--history", "-o"),
    (["-o", "{root}/ck/checkpoint.npz", "--checkpoint", "{root}/ck"], "--checkpoint", "-o"),
])
def test_two_outputs_of_train_on_one_file_are_refused(extra, first, second, files):
    """Both lost data: the history replaced the weights; the checkpoint replaced them."""
    argv = argv_of(COMMANDS["train"], files)
    argv = argv[:argv.index("-o")] + [e.format(root=files["root"]) for e in extra]
    result = run(argv)
    assert result.exit_code == 2, result.output
    assert f"{first} and {second} name the same file" in result.output
    assert "one output would overwrite the other" in result.output
    assert not (files["root"] / "w2.npz").exists()


def test_resume_may_rewrite_its_checkpoint_but_not_into_another_option(files, tmp_path):
    ck = tmp_path / "ck"
    base = argv_of(COMMANDS["train"], {**files, "out": tmp_path / "a.npz"})
    first = run(base + ["--checkpoint", ck])
    assert first.exit_code == 0, first.output
    again = run(base + ["--checkpoint", ck, "--resume", "--epochs", "2"])
    assert again.exit_code == 0, again.output
    before = (ck / "checkpoint.npz").read_bytes()
    clash = run(argv_of(COMMANDS["train"], {**files, "out": ck / "checkpoint.npz"})
                + ["--checkpoint", ck, "--resume", "--epochs", "3"])
    assert clash.exit_code == 2
    assert "-o and --checkpoint name the same file" in clash.output
    assert (ck / "checkpoint.npz").read_bytes() == before
