"""What a cold ``graphspec validate`` and ``graphspec --help`` import (issue 11: a cold
validate within 0.25 s, --help within 0.15 s on a 2-core box). Checked by module, not by
the clock, so it holds on any box: a command imports what it needs when it needs it."""
import json
import subprocess
import sys

from specs_util import REPO

from graphspec.layers.registry import LAYER_MODULES

_RUN = """
import json, sys
from graphspec.cli import main
sys.argv = ["graphspec"] + ARGS
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

# Optional libraries and the rooms of graphspec a spec check never needs.
NEVER_FOR_VALIDATE = [
    "scipy", "torch", "keras", "onnx", "onnxruntime", "dask", "distributed",
    "pyarrow", "matplotlib", "h5py", "sklearn",
    "graphspec.train.trainer", "graphspec.train.loop", "graphspec.train.checkpoint",
    "graphspec.runtime.memory", "graphspec.runtime.executor", "graphspec.io.tabular",
    "graphspec.io.table_readers",
    "graphspec.interop", "graphspec.engines", "graphspec.review", "graphspec.viz",
]


def _imports(*args) -> tuple:
    code = _RUN.replace("ARGS", repr(list(args)))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def test_validate_imports_only_what_checking_a_spec_needs():
    code, modules = _imports("validate", "specs/mlp.yaml")
    assert code == 0
    assert "graphspec.compiler" in modules         # it did compile the spec
    loaded = sorted(m for m in NEVER_FOR_VALIDATE if m in modules)
    assert not loaded, f"graphspec validate imported {loaded}"
    # the layers the spec uses (Dense), not the other ~60; no expression machinery
    others = [f"graphspec.layers.{m}" for t, m in LAYER_MODULES.items() if t != "Dense"]
    assert not [m for m in others if m in modules]
    assert "graphspec.expr.parser" not in modules


def test_an_invalid_spec_still_gets_jsonschemas_messages(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text((REPO / "specs" / "mlp.yaml").read_text().replace("units: 64", "units: -1",
                                                                        1))
    code, modules = _imports("validate", str(spec))
    assert code == 1 and "jsonschema" in modules


def test_help_imports_no_numpy_and_no_command():
    code, modules = _imports("--help")
    assert code == 0
    assert not [m for m in modules if m.split(".")[0] in ("numpy", "yaml", "jsonschema")]
    assert not [m for m in modules if m.startswith("graphspec.") and m != "graphspec.cli"]
