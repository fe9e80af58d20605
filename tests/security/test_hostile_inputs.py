"""Hostile specs, weights, data and paths through the CLI.

Each case is something an attacker (or an accident) can put in a file graphspec reads:
YAML tags that construct Python objects, alias bombs, deep nesting, huge numbers and
shapes, expression escapes in Lambda/Merge bodies and custom losses, pickled arrays,
forged array headers, zip bombs, and output paths that are directories or devices.

Every case asserts the same three things:

1. refusal: a non-zero exit code (1, or click's 2 for usage errors), never 3 (an
   internal error) and never a traceback;
2. a clear message: one line naming the file and what is wrong;
3. no side effect: the marker file a successful exploit would create never appears,
   and every file that existed before is byte-for-byte unchanged (no new files either).
"""
import os
import stat
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from specs_util import MLP, SPECS, write_spec

import graphspec
from graphspec.cli import main

MARKER = "PWNED"

TRAINED_MLP = MLP + """
training:
  default:
    model: mlp
    loss: categorical_crossentropy
    optimizer: {type: sgd, learning_rate: 0.1}
    batch_size: 4
    epochs: 1
"""


# -- the three checks --------------------------------------------------------------------
def _snapshot(root: Path) -> dict:
    state = {}
    for path in sorted(root.rglob("*")):
        info = os.lstat(path)
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else None
        state[str(path)] = (stat.S_IFMT(info.st_mode), content)
    return state


def refuse(tmp_path, *args, mentions=(), names=None, code=1):
    """Run the CLI; assert refusal, a one-line message, and an untouched ``tmp_path``.

    ``names``: the file the message must name (the spec by default: the first path
    argument after the command). ``mentions``: words of what is wrong (any case).
    """
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(main, [str(a) for a in args])
    output = result.output
    assert result.exit_code == code, output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in output and "internal error" not in output, output
    if names is None and len(args) > 1:
        names = args[1]
    wanted = ([str(names)] if names is not None else []) + [m.lower() for m in mentions]
    lines = [line for line in output.splitlines()
             if all(w in line or w in line.lower() for w in wanted)]
    assert lines, f"no line of the output names {wanted}:\n{output}"
    assert not list(tmp_path.rglob(MARKER)), "the exploit ran"
    assert _snapshot(tmp_path) == before, "files changed"
    return output


@pytest.fixture
def marker(tmp_path):
    return tmp_path / MARKER


@pytest.fixture
def trained(tmp_path):
    """A spec with a training job, initial weights, and matching data."""
    spec = write_spec(tmp_path, TRAINED_MLP)
    weights = tmp_path / "w.npz"
    graphspec.load(spec, seed=0).save_weights(weights)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 4)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[np.arange(16) % 3]
    data = tmp_path / "data.npz"
    np.savez(data, x=x, probs=y)
    np.save(tmp_path / "x.npy", x)
    return spec, weights, data, x, y


# -- YAML: tags, aliases, nesting, encodings, shapes of documents -----------------------
@pytest.mark.parametrize("template", [
    "!!python/object/apply:os.system ['touch {marker}']\n",
    "graphspec: !!python/object/apply:os.system ['touch {marker}']\nmodels: {{}}\n",
    "graphspec: !!python/name:os.system\nmodels: {{}}\n",
    "graphspec: 1\nmodels: !!python/object/new:os.system ['touch {marker}']\n",
    "graphspec: !!python/module:os\nmodels: {{}}\n",
    "graphspec: 1\nmodels: !!python/object:os._wrap_close {{}}\n",
    "!!python/name:os.system : 1\ngraphspec: 1\n",
    "graphspec: 1\nmodels: !!set {{a, b}}\n",
    "graphspec: !mytag 1\nmodels: {{}}\n",
], ids=["apply-root", "apply-value", "name", "new", "module", "object", "tag-on-key", "set",
        "local-tag"])
def test_yaml_python_tags_are_refused_not_constructed(tmp_path, marker, template):
    spec = write_spec(tmp_path, template.format(marker=marker))
    for command in ("validate", "build"):
        refuse(tmp_path, command, spec, mentions=["tag", "not allowed"])


def test_binary_scalar_where_text_is_expected(tmp_path):
    spec = write_spec(tmp_path, MLP.replace("graphspec: 1", "graphspec: 1\n"
                                            "description: !!binary aGVsbG8="))
    refuse(tmp_path, "validate", spec, mentions=["description", "expected string"])


def test_billion_laughs_is_refused_quickly(tmp_path):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    spec = write_spec(tmp_path, "\n".join(lines) + "\n")
    start = time.perf_counter()
    refuse(tmp_path, "validate", spec, mentions=["alias bomb"])
    assert time.perf_counter() - start < 10


def test_recursive_alias_is_refused(tmp_path):
    spec = write_spec(tmp_path, "graphspec: 1\nmodels: &m {a: *m}\n")
    refuse(tmp_path, "validate", spec, mentions=["nesting deeper"])


@pytest.mark.parametrize("opening,closing,inner", [("[", "]", ""), ("{a: ", "}", "1")],
                         ids=["lists", "mappings"])
def test_ten_thousand_levels_of_flow_nesting(tmp_path, opening, closing, inner):
    spec = write_spec(tmp_path, opening * 10_000 + inner + closing * 10_000)
    refuse(tmp_path, "validate", spec, mentions=["nesting deeper"])


def test_deep_block_nesting(tmp_path):
    text = "".join(" " * i + f"k{i}:\n" for i in range(1000)) + " " * 1000 + "v\n"
    spec = write_spec(tmp_path, text)
    refuse(tmp_path, "validate", spec, mentions=["nesting deeper"])


def test_integer_literal_with_thousands_of_digits(tmp_path):
    spec = write_spec(tmp_path, MLP.replace("units: 8", "units: " + "9" * 5000))
    refuse(tmp_path, "validate", spec, mentions=["units", "5000 digits"])


def test_nul_character_in_spec(tmp_path):
    spec = write_spec(tmp_path, MLP.replace("graphspec: 1", "graphspec: 1\x00"))
    refuse(tmp_path, "validate", spec, mentions=["U+0000", "not allowed"])


def test_non_utf8_spec(tmp_path):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes(MLP.replace("graphspec: 1", "graphspec: 1\ndescription: café")
                     .encode("latin-1"))
    refuse(tmp_path, "validate", spec, mentions=["not UTF-8"])


def test_binary_garbage_spec(tmp_path):
    spec = tmp_path / "garbage.yaml"
    spec.write_bytes(np.random.default_rng(0).bytes(4096))
    refuse(tmp_path, "validate", spec, mentions=["not UTF-8"])


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"],
                         ids=["empty", "blank", "comment", "empty-document"])
def test_empty_spec(tmp_path, text):
    spec = tmp_path / "empty.yaml"
    spec.write_text(text)
    refuse(tmp_path, "validate", spec, mentions=["empty"])


@pytest.mark.parametrize("text,what", [("- a\n- b\n", "got array"), ("42\n", "got integer"),
                                       ("hello\n", "got string"), ("null\n", "got null")],
                         ids=["list", "int", "string", "null"])
def test_spec_that_is_not_a_mapping(tmp_path, text, what):
    spec = write_spec(tmp_path, text)
    refuse(tmp_path, "validate", spec, mentions=["expected object", what])


def test_five_megabyte_spec(tmp_path):
    spec = tmp_path / "big.yaml"
    spec.write_text(MLP.replace("graphspec: 1", "graphspec: 1\ndescription: '" +
                                "a" * (5 << 20) + "'"))
    refuse(tmp_path, "validate", spec, mentions=["larger than 4 MiB"])


@pytest.mark.parametrize("old,new,key", [
    ("graphspec: 1", "graphspec: 1\ngraphspec: 1", "graphspec"),
    ("  out: {type: Dense", "  dense_1: {type: Dense, units: 1}\n  out: {type: Dense",
     "dense_1"),
], ids=["top-level", "layer-name"])
def test_duplicate_keys(tmp_path, old, new, key):
    spec = write_spec(tmp_path, MLP.replace(old, new))
    refuse(tmp_path, "validate", spec, mentions=[f"duplicate key '{key}'"])


def test_yaml_merge_keys(tmp_path):
    spec = write_spec(tmp_path, MLP.replace(
        "  out: {type: Dense, units: 3, activation: softmax}",
        "  out: {<<: {type: Dense, units: 3}, activation: softmax}"))
    refuse(tmp_path, "validate", spec, mentions=["merge keys"])


def test_several_documents(tmp_path):
    spec = write_spec(tmp_path, MLP + "---\n" + MLP)
    refuse(tmp_path, "validate", spec, mentions=["another document"])


# -- sizes: refused before anything is allocated -----------------------------------------
def _peak_bytes(*args):
    tracemalloc.start()
    try:
        result = CliRunner().invoke(main, [str(a) for a in args])
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("old,new,what", [
    ("units: 8", "units: 1000000000000", "maximum of 16777216"),
    ("units: 8", "units: 16777216", "element limit"),
    ("[4]", "[1000000000, 1000000000]", "maximum of 16777216"),
], ids=["dense-1e12-units", "dense-2^48-kernel", "input-1e9x1e9"])
def test_huge_layers_and_shapes_are_refused_before_allocating(tmp_path, old, new, what):
    text = MLP.replace(old, new)
    if "16777216" in new:   # a 2**24-wide input makes the kernel 2**48 elements
        text = text.replace("[4]", "[16777216]")
    spec = write_spec(tmp_path, text)
    result, peak = _peak_bytes("build", spec, "-o", tmp_path / "w.npz")
    assert result.exit_code == 1 and what in result.output, result.output
    assert peak < 64 << 20, f"{peak >> 20} MiB allocated"
    assert not (tmp_path / "w.npz").exists()


def test_integral_float_where_an_integer_is_required(tmp_path):
    # JSON Schema calls 8.0 an integer; numpy does not (this crashed `build`).
    spec = write_spec(tmp_path, MLP.replace("units: 8", "units: 8.0"))
    refuse(tmp_path, "build", spec, mentions=["units", "expected integer", "8.0"])


@pytest.mark.parametrize("value,what", [("-1", "less than the minimum"),
                                        ("0", "less than the minimum"),
                                        ("true", "expected integer"),
                                        (".nan", "expected integer"),
                                        ("'8'", "expected integer")])
def test_bad_unit_counts(tmp_path, value, what):
    spec = write_spec(tmp_path, MLP.replace("units: 8", f"units: {value}"))
    refuse(tmp_path, "validate", spec, mentions=["units", what])


RESHAPE = """
graphspec: 1
layers:
  r: {type: Reshape, target_shape: TARGET}
models:
  m:
    inputs:
      x: {shape: SHAPE}
    calls:
      - {layer: r, in: x, out: y}
    outputs: [y]
"""


def test_reshape_to_a_huge_target(tmp_path):
    spec = write_spec(tmp_path, RESHAPE.replace("TARGET", "[16777216, 16777216, 16777216, -1]")
                      .replace("SHAPE", "[4]"))
    refuse(tmp_path, "validate", spec, mentions=["cannot reshape"])


def test_flatten_of_a_huge_input_does_not_wrap_around(tmp_path):
    spec = write_spec(tmp_path, RESHAPE.replace("{type: Reshape, target_shape: TARGET}",
                                                "{type: Flatten}")
                      .replace("SHAPE", "[16777216, 16777216, 16777216, 16777216]"))
    result = CliRunner().invoke(main, ["build", str(spec)])
    assert "(None, 0)" not in result.output
    assert result.exit_code == 1, result.output


def test_repeat_vector_to_a_petabyte_tensor(tmp_path):
    spec = write_spec(tmp_path, RESHAPE.replace("{type: Reshape, target_shape: TARGET}",
                                                "{type: RepeatVector, n: 16777216}")
                      .replace("SHAPE", "[16777216]"))
    refuse(tmp_path, "validate", spec, mentions=["too large"])


# -- expressions in specs: Lambda, Merge ----------------------------------------------------
LAMBDA = """
graphspec: 1
layers:
  f: {type: Lambda, expr: EXPR}
  g: {type: Merge, expr: "x[0] + x[1]"}
models:
  m:
    inputs:
      x: {shape: [4]}
    calls:
      - {layer: f, in: x, out: y}
      - {layer: g, in: [x, y], out: z}
    outputs: [z]
"""

ESCAPES = {
    "subclasses": ("().__class__.__bases__[0].__subclasses__()", "attribute access"),
    "attribute": ("x.__class__", "attribute access"),
    "comprehension": ("[v for v in x]", "comprehensions"),
    "lambda": ("(lambda: x)()", "can be called"),
    "import": ("__import__('os').system('touch {marker}')", "not allowed"),
    "open": ("open('/etc/hostname')", "function 'open' is not allowed"),
    "eval": ("eval('x')", "function 'eval' is not allowed"),
    "string-format": ("'%s' % x", "strings are not allowed"),
    "f-string": ("f'{{x}}'", "strings are not allowed"),
    "walrus": ("(y := x)", "not allowed"),
    "conditional": ("x if x else x", "conditional"),
    "long": ("x" + " + x" * 1000, "too long"),
    "deep": ("(" * 100 + "x" + ")" * 100, "nested too deeply"),
    "huge-power": ("x * 10 ** 10 ** 10", "too large"),
    "huge-allocation": ("random_normal([100000, 100000])", "limit"),
}


@pytest.mark.parametrize("expr,what", list(ESCAPES.values()), ids=list(ESCAPES))
def test_lambda_expression_escapes(tmp_path, marker, expr, what):
    text = expr.format(marker=marker).replace('"', '\\"')
    spec = write_spec(tmp_path, LAMBDA.replace("EXPR", f'"{text}"'))
    for command in ("validate", "build"):
        refuse(tmp_path, command, spec, mentions=[what])


@pytest.mark.parametrize("name", ["subclasses", "import", "comprehension", "long"])
def test_merge_expression_escapes(tmp_path, marker, name):
    expr, what = ESCAPES[name]
    text = expr.format(marker=marker).replace("x", "x[0]").replace('"', '\\"')
    spec = write_spec(tmp_path, LAMBDA.replace("EXPR", '"x"')
                      .replace('"x[0] + x[1]"', f'"{text}"'))
    refuse(tmp_path, "validate", spec, mentions=[what])


# -- expressions in training jobs: custom losses, terms, added losses, state ---------------
JOB_FIELDS = {
    "custom-loss": "loss: {{expr: \"{expr}\"}}",
    "term": "loss: mse\n    terms: {{t: \"{expr}\"}}",
    "added-loss": "loss: mse\n    added_losses: [\"{expr}\"]",
    "state-update": "loss: mse\n    state: {{k: {{initial: 0.0, update: \"{expr}\"}}}}",
}
LOSS_ESCAPES = ["subclasses", "import", "open", "comprehension", "string-format"]


def _job_spec(tmp_path, field, expr):
    body = JOB_FIELDS[field].format(expr=expr.replace("x", "y_pred" if field == "custom-loss"
                                                      else "probs").replace('"', '\\"'))
    return write_spec(tmp_path, MLP + f"training:\n  default:\n    model: mlp\n    {body}\n")


@pytest.mark.parametrize("field", list(JOB_FIELDS))
@pytest.mark.parametrize("name", LOSS_ESCAPES)
def test_training_expression_escapes_are_refused_by_train(tmp_path, marker, trained, field,
                                                          name):
    _, _, data, _, _ = trained
    expr, what = ESCAPES[name]
    spec = _job_spec(tmp_path, field, expr.format(marker=marker))
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           mentions=[what], names="")


@pytest.mark.parametrize("field", list(JOB_FIELDS))
def test_validate_reports_training_expression_escapes(tmp_path, field):
    spec = _job_spec(tmp_path, field, ESCAPES["subclasses"][0])
    refuse(tmp_path, "validate", spec, mentions=["attribute access"])


def test_train_names_the_spec_of_a_bad_custom_loss(tmp_path, trained):
    _, _, data, _, _ = trained
    spec = _job_spec(tmp_path, "custom-loss", ESCAPES["attribute"][0])
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           mentions=["attribute access"])


# -- output paths -------------------------------------------------------------------------
def test_output_into_a_missing_directory(tmp_path, trained):
    spec, _, data, _, _ = trained
    for args in (["build", spec, "-o", tmp_path / "nope" / "w.npz"],
                 ["predict", spec, "--input", f"x={tmp_path / 'x.npy'}",
                  "-o", tmp_path / "nope" / "out.npz"],
                 ["train", spec, "--data", data, "-o", tmp_path / "nope" / "w.npz"],
                 ["schema", "-o", tmp_path / "nope" / "s.json"],
                 ["plot", spec, "-o", tmp_path / "nope" / "g.md"]):
        refuse(tmp_path, *args, mentions=["does not exist"], names=tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_output_that_is_a_directory(tmp_path, trained):
    spec = trained[0]
    (tmp_path / "outdir").mkdir()
    refuse(tmp_path, "build", spec, "-o", tmp_path / "outdir",
           mentions=["is a directory"], names=tmp_path / "outdir")
    refuse(tmp_path, "build", spec, "-o", str(tmp_path / "outdir") + os.sep,
           mentions=["is a directory"], names=tmp_path / "outdir")


def test_output_that_is_a_fifo_is_not_replaced(tmp_path, trained):
    # Stands for /dev/full and /dev/null: renaming over a device (as root) replaced it.
    spec = trained[0]
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    refuse(tmp_path, "build", spec, "-o", fifo, mentions=["not a regular file"], names=fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_failed_training_leaves_the_old_output_alone(tmp_path, trained):
    spec, _, _, x, y = trained
    out = tmp_path / "out.npz"
    out.write_bytes(b"previous weights")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x, probs=np.full_like(y, np.nan))
    refuse(tmp_path, "train", spec, "--data", bad, "-o", out, mentions=["NaN"], names="probs")


def test_checkpoint_pointing_at_an_existing_file(tmp_path, trained):
    spec, _, data, _, _ = trained
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           "--checkpoint", existing, mentions=["is a file"], names=existing, code=2)


def test_checkpoint_directory_under_a_file(tmp_path, trained):
    spec, _, data, _, _ = trained
    existing = tmp_path / "notes.txt"
    existing.write_text("keep me")
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           "--checkpoint", existing / "sub", mentions=["checkpoint"], names=existing)


def test_resume_without_or_from_a_forged_checkpoint(tmp_path, trained):
    spec, _, data, _, _ = trained
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz", "--resume",
           mentions=["--resume needs --checkpoint"], names="")
    (tmp_path / "ck").mkdir()
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           "--checkpoint", tmp_path / "ck", "--resume", mentions=["no checkpoint"],
           names=tmp_path / "ck")
    (tmp_path / "ck" / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip")
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           "--checkpoint", tmp_path / "ck", "--resume", mentions=["cannot read"],
           names=tmp_path / "ck" / "checkpoint.npz")


def test_history_into_a_missing_directory_fails_before_training(tmp_path, trained):
    spec, _, data, _, _ = trained
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           "--history", tmp_path / "nope" / "h.json", mentions=["does not exist"],
           names=tmp_path / "nope")


def test_spec_path_that_is_a_directory_or_device(tmp_path):
    refuse(tmp_path, "validate", tmp_path / "nothing.yaml", mentions=["cannot read",
                                                                      "no such file"],
           names=tmp_path / "nothing.yaml", code=2)      # a mistyped path: a usage error
    refuse(tmp_path, "build", tmp_path, mentions=["is a directory"])
    refuse(tmp_path, "validate", "/dev/zero", mentions=["not a regular file"])


def test_spec_that_is_a_fifo_does_not_hang(tmp_path):
    fifo = tmp_path / "spec.yaml"
    os.mkfifo(fifo)
    done = threading.Event()

    def unblock():   # if graphspec opened the FIFO, give it an EOF instead of a hang
        while not done.wait(0.2):
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
    threading.Thread(target=unblock, daemon=True).start()
    try:
        refuse(tmp_path, "validate", fifo, mentions=["not a regular file"])
    finally:
        done.set()


# -- arrays: pickles, forged headers, zip bombs, wrong kinds --------------------------------
class _Exploit:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _pickled(marker):
    return np.array([_Exploit(marker)], dtype=object)


def test_pickled_object_array_in_data(tmp_path, marker, trained):
    spec, _, _, _, y = trained
    data = tmp_path / "evil.npz"
    np.savez(data, x=_pickled(marker), probs=y)
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           mentions=["pickled"], names=data)
    refuse(tmp_path, "evaluate", spec, "--data", data, mentions=["pickled"], names=data)


def test_pickled_object_array_in_weights(tmp_path, marker, trained):
    spec, weights, _, _, _ = trained
    evil = tmp_path / "evil_w.npz"
    np.savez(evil, **{**np.load(weights), "dense_1/kernel": _pickled(marker)})
    refuse(tmp_path, "predict", spec, "--weights", evil, "--input",
           f"x={tmp_path / 'x.npy'}", mentions=["pickled"], names=evil)


def test_pickled_object_array_as_input(tmp_path, marker, trained):
    spec = trained[0]
    evil = tmp_path / "evil.npy"
    np.save(evil, _pickled(marker), allow_pickle=True)
    refuse(tmp_path, "predict", spec, "--input", f"x={evil}", mentions=["pickled"],
           names=evil)


def _forged_npy(shape, dtype="<f4", payload=b"\0" * 64) -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def test_forged_npz_header_claiming_a_terabyte(tmp_path, trained):
    spec, _, _, _, y = trained
    data = tmp_path / "forged.npz"
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("x.npy", _forged_npy((10 ** 11, 4)))
        archive.writestr("probs.npy", _forged_npy(y.shape, payload=y.tobytes()))
    tracemalloc.start()
    try:
        refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
               mentions=["more data than"], names=data)
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()


def test_forged_npy_header(tmp_path, trained):
    spec = trained[0]
    forged = tmp_path / "forged.npy"
    forged.write_bytes(_forged_npy((10 ** 11, 4)))
    refuse(tmp_path, "predict", spec, "--input", f"x={forged}", mentions=["more data than"],
           names=forged)


def test_zip_bomb_is_refused_before_inflating(tmp_path, trained, monkeypatch):
    from graphspec.io import files
    spec, _, _, _, y = trained
    monkeypatch.setattr(files, "MAX_ARRAY_BYTES", 1 << 20)   # stands for 8 GiB
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros((1 << 20, 4), np.float32), probs=y)
    assert bomb.stat().st_size < 100_000
    refuse(tmp_path, "train", spec, "--data", bomb, "-o", tmp_path / "out.npz",
           mentions=["zip bomb"], names=bomb)


def test_archive_with_a_member_that_is_not_an_array(tmp_path, trained):
    spec, _, _, _, y = trained
    data = tmp_path / "odd.npz"
    np.savez(data, probs=y)
    with zipfile.ZipFile(data, "a") as archive:
        archive.writestr("../../x.sh", "touch PWNED")
    refuse(tmp_path, "train", spec, "--data", data, "-o", tmp_path / "out.npz",
           mentions=["not an .npy array"], names=data)


def test_garbage_and_swapped_array_files(tmp_path, trained):
    spec, _, data, _, _ = trained
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(np.random.default_rng(1).bytes(1000))
    x_npy = tmp_path / "x.npy"
    refuse(tmp_path, "train", spec, "--data", garbage, "-o", tmp_path / "o.npz",
           mentions=["neither an .npz archive nor a .npy array"], names=garbage)
    refuse(tmp_path, "train", spec, "--data", x_npy, "-o", tmp_path / "o.npz",
           mentions=["expected an .npz archive"], names=x_npy)
    refuse(tmp_path, "predict", spec, "--input", f"x={data}", mentions=["pass a .npy"],
           names=data)
    refuse(tmp_path, "predict", spec, "--input", f"x={tmp_path}", mentions=["directory"],
           names=tmp_path)


# -- weights that do not fit --------------------------------------------------------------
@pytest.mark.parametrize("change,what", [
    (lambda w: w.update({"dense_1/kernel": w["dense_1/kernel"].astype(np.int32)}),
     "has dtype int32"),
    (lambda w: w.update({"dense_1/kernel": w["dense_1/kernel"].T}), "has shape (8, 4)"),
    (lambda w: w["dense_1/kernel"].__setitem__((0, 0), np.nan), "NaN or Inf"),
    (lambda w: w["out/bias"].__setitem__(0, np.inf), "NaN or Inf"),
    (lambda w: w.update({"dense_1/kernel": w["dense_1/kernel"].astype(complex)}),
     "has dtype complex128"),
    (lambda w: w.update({"dense_1/kernel": np.array(["a"])}), "dense_1/kernel"),
    (lambda w: w.pop("out/bias"), "missing 'out/bias'"),
    (lambda w: w.update({"evil/x": np.zeros(1)}), "unexpected 'evil/x'"),
], ids=["int-dtype", "transposed", "nan", "inf", "complex", "strings", "missing", "extra"])
def test_weights_that_do_not_fit(tmp_path, trained, change, what):
    spec, weights, _, _, _ = trained
    arrays = {k: v.copy() for k, v in np.load(weights).items()}
    change(arrays)
    bad = tmp_path / "bad_w.npz"
    np.savez(bad, **arrays)
    refuse(tmp_path, "predict", spec, "--weights", bad, "--input",
           f"x={tmp_path / 'x.npy'}", mentions=["does not match the spec", what], names=bad)


# -- data and inputs that do not fit ------------------------------------------------------
@pytest.mark.parametrize("array,what", [
    (np.full((3, 4), np.nan, np.float32), "NaN or Inf"),
    (np.full((3, 4), np.inf), "NaN or Inf"),
    (np.zeros((3, 5)), "expects shape (None, 4)"),
    (np.zeros(4), "expects shape (None, 4)"),
    (np.float32(1), "expects shape (None, 4)"),
    (np.array([["a"] * 4]), "must be a numeric array"),
    (np.zeros((2, 4), "datetime64[s]"), "must be a numeric array"),
    (np.zeros((2, 4), [("a", "f4")]), "must be a numeric array"),
], ids=["nan", "inf", "features", "rank", "scalar", "strings", "datetime", "structured"])
def test_predict_inputs_that_do_not_fit(tmp_path, trained, array, what):
    spec = trained[0]
    bad = tmp_path / "bad.npy"
    np.save(bad, array)
    refuse(tmp_path, "predict", spec, "--input", f"x={bad}", mentions=["input 'x'", what],
           names="")


@pytest.mark.filterwarnings("ignore::numpy.exceptions.ComplexWarning")
def test_complex_inputs_are_refused(tmp_path, trained):
    spec = trained[0]
    bad = tmp_path / "complex.npy"
    np.save(bad, np.zeros((2, 4), complex) + 1j)
    refuse(tmp_path, "predict", spec, "--input", f"x={bad}", mentions=["input 'x'"], names="")


@pytest.mark.parametrize("make,what", [
    (lambda x, y: {"x": np.full_like(x, np.nan), "probs": y}, "input 'x'"),
    (lambda x, y: {"x": x, "probs": np.full_like(y, np.inf)}, "target 'probs'"),
    (lambda x, y: {"x": x, "probs": y[:5]}, "has 5 samples"),
    (lambda x, y: {"x": x, "probs": y[:, :2]}, "do not match predictions"),
    (lambda x, y: {"x": x, "probs": np.array([["a"] * 3] * 16)}, "must be numeric"),
    (lambda x, y: {"x": x}, "lacks ['probs']"),
    (lambda x, y: {"x": x[:, :3], "probs": y}, "expects shape (None, 4)"),
], ids=["nan-input", "inf-target", "sample-count", "target-shape", "string-target",
        "missing-target", "input-shape"])
def test_training_data_that_does_not_fit(tmp_path, trained, make, what):
    spec, _, _, x, y = trained
    bad = tmp_path / "bad.npz"
    np.savez(bad, **make(x, y))
    refuse(tmp_path, "train", spec, "--data", bad, "-o", tmp_path / "out.npz",
           mentions=[what], names="")


def test_training_data_with_no_samples(tmp_path, trained):
    spec, _, _, x, y = trained
    empty = tmp_path / "empty.npz"
    np.savez(empty, x=x[:0], probs=y[:0])
    refuse(tmp_path, "train", spec, "--data", empty, "-o", tmp_path / "out.npz",
           mentions=["no samples"], names="")


def test_data_errors_name_the_data_file(tmp_path, trained):
    spec, _, _, x, y = trained
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=x, probs=np.full_like(y, np.nan))
    refuse(tmp_path, "train", spec, "--data", bad, "-o", tmp_path / "out.npz",
           mentions=["NaN"], names=bad)


def test_every_reference_spec_survives_hostile_set_overrides(tmp_path):
    """``--set`` values come from the command line of a CI job: still never a crash."""
    for spec in sorted(SPECS.glob("*.yaml")):
        for value in ("-1", "0", "1e400", "99999999999999999999", "nan", "'x.__class__'"):
            result = CliRunner().invoke(main, ["validate", str(spec), "--set",
                                               f"image_size={value}"])
            assert result.exit_code in (0, 1, 2), result.output
            assert "Traceback" not in result.output and "internal error" not in result.output
