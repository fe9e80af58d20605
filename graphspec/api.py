"""The Python API the CLI wraps: load, validate, and the objects they return.

>>> graph = graphspec.load("specs/shared_entry.yaml", seed=0)
>>> graph.models["model_b"].predict({"input_b": np.arange(100).reshape(10, 10)})
"""
from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass

from .compiler import Compiler
from .errors import SpecError, SpecErrors
from .io.metadata import merge_params, read_file_metadata
from .io.modelfile import (attach, is_model_file, is_zip, open_model_file,
                           spec_display, weights_source)
from .spec.loader import Located, load_file, load_text
from .spec.validate import broken_entries, schema_errors, substitute_params
from .train import frontend
from .train.frontend import Graph
from .train.job import job_problems


class Model(frontend.Model):
    """The model :func:`load` returns: structure, Keras' predict/fit (train.frontend), and
    export to the formats of :mod:`graphspec.interop`, which sits above training."""

    def to_onnx(self, path=None, opset: int | None = None):
        """This model with its current weights as an ``onnx.ModelProto`` (written
        atomically to ``path`` if given); checked by ``onnx.checker``. Needs [onnx]."""
        from .interop.onnx_export import to_onnx
        return to_onnx(self, path, opset)

    def to_keras(self, path) -> str:
        """Write this model and its weights as a Keras 3 ``.keras`` archive; returns the
        path (``keras.saving.load_model`` reads it). Needs [keras] (h5py)."""
        from .interop.keras_export import export_keras
        return export_keras(self.graph, path, self.name)[0][1]


@contextlib.contextmanager
def _no_gc():
    """No cyclic-GC passes while a spec is read, validated and compiled: the pipeline
    makes hundreds of thousands of long-lived objects and no garbage cycles, and gen-2
    passes over them made a 10,000-node spec ~5x slower to compose (measured)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _check(located: Located, params: dict | None, dtype: str):
    """All errors of one spec, and the compiler (None if the schema already failed)."""
    with _no_gc():
        return _check_all(located, params, dtype)


def _check_all(located: Located, params: dict | None, dtype: str):
    errors = substitute_params(located, params)
    errors += schema_errors(located)
    if errors:
        return errors, None
    # Models are built as Model above: the structure of graph/ plus Keras' predict/fit
    # (train.frontend) plus export (interop), each from the floor it belongs to.
    compiler = Compiler(located, dtype, model_class=Model).compile()
    return compiler.errors, compiler


def _errors_of_schema_valid_parts(located: Located) -> list:
    """Reference and shape errors of the layers and models that pass the schema, compiled
    without the entries that fail it (and without training jobs). Errors that only echo a
    left-out entry ('unknown layer X') are dropped: the schema error already says it."""
    bad = broken_entries(located)
    data = located.data
    if not bad or not isinstance(data, dict) or not all(
            isinstance(data.get(section), dict) for section, _ in bad):
        return []
    partial = {key: value for key, value in data.items() if key != "training"}
    for section, name in bad:
        partial[section] = {k: v for k, v in partial[section].items() if k != name}
    if not partial.get("models"):
        return []
    dropped = {str(name) for _, name in bad}
    compiler = Compiler(Located(partial, located.marks, located.key_marks, located.file),
                        "float32", model_class=Model).compile()
    return [e for e in compiler.errors if not any(f"'{n}'" in e.message for n in dropped)]


def validate(path, params: dict | None = None, warnings: list | None = None) -> list:
    """Every problem in the spec at ``path`` as located SpecErrors ([] if valid).

    Training jobs are checked by the very code ``graphspec train`` runs, so a spec that
    validates also trains (as far as the spec alone can tell). ``warnings``: a list that
    receives the located warnings of a spec that compiles (a mask a layer drops)."""
    try:
        with _no_gc():
            if is_model_file(path):      # a packed model: its spec, with its params
                model_file = open_model_file(path)
                located = load_text(model_file.spec_text,
                                    spec_display(path, model_file.spec_name))
                params = dict(model_file.params, **(params or {}))
            else:
                located = load_file(path)
    except SpecError as exc:
        return [exc]
    errors, compiler = _check(located, params, "float32")
    if errors and compiler is None:
        # Schema errors: the entries that pass the schema are still compiled, so one run
        # shows every kind of error (references, cycles, shapes) a user must fix.
        with _no_gc():
            errors += _errors_of_schema_valid_parts(located)
        return sorted(errors, key=lambda e: (e.line, e.col))
    if errors:
        return errors
    graph = Graph(located.file, compiler.layers, compiler.models,
                  located.data.get("training"), spec=located.data)
    if warnings is not None:
        warnings.extend(compiler.warnings)
    return [located.error(where, message) for where, message in job_problems(graph)]


def _build(located: Located, params, dtype, seed, initialize) -> Graph:
    errors, compiler = _check(located, params, dtype)
    if errors:
        raise SpecErrors(errors)
    graph = Graph(located.file, compiler.layers, compiler.models,
                  located.data.get("training"), dtype=dtype, spec=located.data)
    graph.warnings = list(compiler.warnings)
    declared = located.data.get("params")
    graph.params = dict(declared if isinstance(declared, dict) else {}, **(params or {}))
    if initialize:
        graph.initialize(seed)
    return graph


def load(path, seed: int | None = None, dtype: str = "float32", params: dict | None = None,
         initialize: bool = True) -> Graph:
    """Validate and compile the spec at ``path``; weights get Keras' initializers.

    Raises :class:`SpecErrors` listing every problem if the spec is invalid.
    ``params`` overrides the spec's ``params:`` (e.g. reduced image sizes).
    """
    with _no_gc():
        located = load_file(path)
    return _build(located, params, dtype, seed, initialize)


def loads(text: str, seed: int | None = None, dtype: str = "float32",
          params: dict | None = None, name: str = "<string>", initialize: bool = True) -> Graph:
    """Like :func:`load`, from YAML text."""
    return _build(load_text(text, name), params, dtype, seed, initialize)


# -- model files: SPEC may be a YAML spec or a self-describing model file ------------------
def declared_params(spec_path) -> dict | None:
    data = load_file(spec_path).data
    params = data.get("params") if isinstance(data, dict) else None
    return params if isinstance(params, dict) else {}


def resolve_params(weights_path, explicit_params: dict | None, spec_path=None):
    """(params, notes) to compile a spec with before loading ``weights_path`` into it.

    Call this before :func:`graphspec.api.load`: a spec is compiled with its params, so
    the recorded ones must be known first. With ``spec_path``, recorded params the spec
    does not declare are left out (with a note) and only values that differ from the
    spec's defaults are mentioned.
    """
    explicit = dict(explicit_params or {})
    if not weights_path:
        return explicit, []
    meta = read_file_metadata(weights_path)
    if meta is None or not meta["params"]:
        return explicit, []
    declared = declared_params(spec_path) if spec_path is not None else None
    return merge_params(meta["params"], explicit, str(weights_path), declared)


def load_model(path, seed: int | None = None, dtype: str = "float32"):
    """Compile the spec embedded in a model file with its params, and set its weights."""
    if not is_model_file(path):
        open_model_file(path)          # says why, in one line
    return open_graph(path, None, None, seed, dtype).graph


@dataclass
class Opened:
    graph: object
    metadata: dict | None            # of the weights (or model file) loaded, if any
    notes: list                      # lines for stderr (params applied from a file)


def prepare(spec, weights=None, params: dict | None = None, dtype: str = "float32") -> Opened:
    """Compile SPEC (a YAML spec or a model file, by content) with the params it needs,
    weights not allocated yet: what the CLI's ``open_spec`` does before its memory check.

    Params recorded in the model file or in ``weights`` apply unless ``params`` (--set)
    gives them; a contradicting --set is refused naming both values. For a model file,
    ``graph.model_file`` is its path: :func:`weights_source` then loads its weights.
    """
    explicit = dict(params or {})
    recorded = read_file_metadata(weights) if weights else None
    if is_zip(spec):          # a model file; a weights file as SPEC is refused by name
        model_file = open_model_file(spec)
        merged, notes = merge_params(model_file.params, explicit, str(spec))
        if recorded is not None:
            merge_params(recorded["params"], merged, str(weights))   # refuses a conflict
        graph = loads(model_file.spec_text, dtype=dtype, params=merged, initialize=False,
                          name=spec_display(spec, model_file.spec_name))
        attach(graph, model_file.metadata, model_file.spec_text)   # params: set by load
        graph.model_file = os.fspath(spec)
        return Opened(graph, model_file.metadata, notes + _warning_lines(graph))
    merged, notes = explicit, []
    if recorded is not None and recorded["params"]:
        merged, notes = merge_params(recorded["params"], explicit, str(weights),
                                     declared_params(spec))
    graph = load(spec, dtype=dtype, params=merged, initialize=False)
    # Its vocabularies and columns, for --data. graph.params stays as load set it: the
    # spec's declared params with the merged --set/recorded values on top.
    attach(graph, recorded)
    return Opened(graph, recorded, notes + _warning_lines(graph))


def _warning_lines(graph) -> list:
    return [f"warning: {w.format()}" for w in graph.warnings]


def open_graph(spec, weights=None, params: dict | None = None, seed: int | None = None,
               dtype: str = "float32") -> Opened:
    """Compile, initialise and load weights in one call (pack, scripts): SPEC and
    ``weights`` as in :func:`prepare`; the weights come from ``weights`` if given,
    else from the model file SPEC is."""
    opened = prepare(spec, weights, params, dtype)
    opened.graph.initialize(seed)
    source = weights_source(opened.graph, weights)
    if source:
        opened.graph.load_weights(source)
        opened.metadata = opened.graph.metadata or opened.metadata
    return opened
