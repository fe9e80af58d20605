"""The Python API the CLI wraps: load, validate, and the objects they return.

>>> graph = graphspec.load("specs/shared_entry.yaml", seed=0)
>>> graph.models["model_b"].predict({"input_b": np.arange(100).reshape(10, 10)})
"""
from __future__ import annotations

import contextlib
import gc

from .compiler import Compiler
from .errors import SpecError, SpecErrors
from .spec.loader import Located, load_file, load_text
from .spec.validate import schema_errors, substitute_params
from .train.frontend import Graph, Model
from .train.job import job_problems


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
    # Models are built as train.frontend.Model: the structure of graph/ plus Keras'
    # predict/fit methods, which live above graph/ (see graphspec.train.frontend).
    compiler = Compiler(located, dtype, model_class=Model).compile()
    return compiler.errors, compiler


def validate(path, params: dict | None = None) -> list:
    """Every problem in the spec at ``path`` as located SpecErrors ([] if valid).

    Training jobs are checked by the very code ``graphspec train`` runs, so a spec that
    validates also trains (as far as the spec alone can tell)."""
    try:
        with _no_gc():
            located = load_file(path)
    except SpecError as exc:
        return [exc]
    errors, compiler = _check(located, params, "float32")
    if errors:
        return errors
    graph = Graph(located.file, compiler.layers, compiler.models,
                  located.data.get("training"), spec=located.data)
    return [located.error(where, message) for where, message in job_problems(graph)]


def _build(located: Located, params, dtype, seed, initialize) -> Graph:
    errors, compiler = _check(located, params, dtype)
    if errors:
        raise SpecErrors(errors)
    graph = Graph(located.file, compiler.layers, compiler.models,
                  located.data.get("training"), dtype=dtype, spec=located.data)
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
