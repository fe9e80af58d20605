"""The metadata member every weights file carries: what the weights were built for.

``__graphspec__`` is a JSON document stored as a 1-D ``uint8`` array, so
``np.load(allow_pickle=False)`` reads it like any other array. It records the graphspec
version, the spec's name and sha256, the model, the effective params, the vocabularies
and column mapping of tabular data (``columns``: the column NAMES training read, spans
resolved against the training file's header, so later files are read by name in any
order; older files recorded the span itself), and an architecture fingerprint (a hash
over every weight's name, shape and dtype and every layer's type).

Metadata is untrusted like everything else: it is size-capped, decoded strictly, parsed
by ``json`` (dicts, lists, strings, numbers; NaN refused) and validated against
:data:`METADATA_SCHEMA` before any field is used. Weights of another architecture are
refused saying which spec, model and params they were written for and what differs;
params recorded in a file apply unless ``--set`` gives them, and a contradicting
``--set`` is refused naming both values.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np

from ..errors import InputError
from .files import load_npz
from .mapping_schema import COLUMN_MAPPING_SCHEMA

META_KEY = "__graphspec__"
FORMAT = "graphspec"
FORMAT_VERSION = 1
MAX_METADATA_BYTES = 8 << 20       # vocabularies of a few hundred thousand names fit
MAX_SPEC_TEXT_BYTES = 4 << 20      # the spec loader's own limit

_HEX64 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_PARAM_VALUE = {"type": ["number", "string", "boolean"], "maxLength": 4096}
METADATA_SCHEMA = {
    "type": "object",
    "required": ["format", "format_version", "graphspec_version", "fingerprint", "weights",
                 "params"],
    "properties": {
        "format": {"const": FORMAT},
        "format_version": {"type": "integer", "minimum": 1},
        "graphspec_version": {"type": "string", "maxLength": 64},
        "spec": {"type": ["string", "null"], "maxLength": 4096},
        "spec_sha256": {"oneOf": [{"type": "null"}, _HEX64]},
        "model": {"type": ["string", "null"], "maxLength": 1024},
        "params": {"type": "object", "maxProperties": 10000,
                   "additionalProperties": _PARAM_VALUE},
        "fingerprint": _HEX64,
        "weights": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["shape", "dtype"], "additionalProperties": False,
            "properties": {"shape": {"type": "array", "maxItems": 32,
                                     "items": {"type": "integer", "minimum": 0}},
                           "dtype": {"type": "string", "maxLength": 32}}}},
        "layer_types": {"type": "object",
                        "additionalProperties": {"type": "string", "maxLength": 128}},
        "vocabularies": {"type": "object", "additionalProperties": {
            "type": "array", "maxItems": 1 << 20,
            "items": {"type": "string", "maxLength": 1024}}},
        "columns": {"type": "object", "additionalProperties": COLUMN_MAPPING_SCHEMA},
    },
}


# -- metadata ------------------------------------------------------------------------
def spec_text_of(graph) -> str | None:
    """The text ``graph`` was compiled from, if it is still known."""
    text = getattr(graph, "spec_text", None)
    if text is not None:
        return text
    path = getattr(graph, "file", None)
    try:
        if path and os.path.isfile(path) and os.path.getsize(path) <= MAX_SPEC_TEXT_BYTES:
            with open(path, "rb") as handle:
                return handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        pass
    return None


def effective_params(graph, params: dict | None = None) -> dict:
    """The spec's declared params with ``params`` (or the graph's own overrides) applied."""
    declared = (graph.spec or {}).get("params") if isinstance(graph.spec, dict) else None
    overrides = params if params is not None else (getattr(graph, "params", None) or {})
    merged = dict(declared or {})
    merged.update({k: v for k, v in overrides.items()})
    return merged


def _weight_table(graph) -> dict:
    return {name: {"shape": [int(d) for d in spec.shape], "dtype": str(graph.dtype)}
            for name, spec in sorted(graph.weight_specs().items())}


def _layer_types(graph) -> dict:
    return {name: getattr(layer, "TYPE", "") or type(layer).__name__
            for name, layer in sorted(graph.layers.items())}


def fingerprint(weights: dict, layer_types: dict) -> str:
    """sha256 over sorted weight names, shapes and dtypes, and the layer types."""
    import hashlib   # here, not at import (OpenSSL): only writing or checking weights needs it
    canonical = json.dumps({"weights": weights, "layers": layer_types}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def make_metadata(graph, model_name: str | None = None, params: dict | None = None,
                  vocabularies: dict | None = None, columns: dict | None = None,
                  spec_text: str | None = None) -> dict:
    """The metadata document for ``graph``'s weights (see the module docstring)."""
    import hashlib
    from .. import __version__   # lazy: graphspec/__init__ imports the whole API
    text = spec_text if spec_text is not None else spec_text_of(graph)
    weights, layer_types = _weight_table(graph), _layer_types(graph)
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "graphspec_version": __version__,
        "spec": os.path.basename(str(graph.file)) if getattr(graph, "file", None) else None,
        "spec_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest() if text else None,
        "model": model_name, "params": effective_params(graph, params),
        "fingerprint": fingerprint(weights, layer_types), "weights": weights,
        "layer_types": layer_types,
    }
    if vocabularies:
        meta["vocabularies"] = {k: list(v) for k, v in vocabularies.items()}
    if columns:
        meta["columns"] = columns
    return meta


def metadata_array(meta: dict) -> np.ndarray:
    """``meta`` as the uint8 array stored under :data:`META_KEY`."""
    raw = json.dumps(meta, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return np.frombuffer(raw.encode("utf-8"), dtype=np.uint8).copy()


def metadata_entry(graph, model_name: str | None = None, params: dict | None = None,
                   **extra) -> dict:
    """``{META_KEY: array}``, ready to merge into the arrays of a weights file."""
    return {META_KEY: metadata_array(make_metadata(graph, model_name, params, **extra))}


def _refuse_constant(name):
    raise ValueError(f"'{name}' is not allowed")


def read_metadata(arrays: dict, source: str = "weights") -> dict | None:
    """The validated metadata of a loaded file, or None if it has none (older files)."""
    if META_KEY not in arrays:
        return None
    raw = arrays[META_KEY]
    bad = f"'{source}' has a corrupt graphspec metadata member ({META_KEY})"
    if not isinstance(raw, np.ndarray) or raw.dtype != np.uint8 or raw.ndim != 1:
        raise InputError(f"{bad}: expected a 1-D uint8 array")
    if raw.size > MAX_METADATA_BYTES:
        raise InputError(f"{bad}: {raw.size} bytes, more than the "
                         f"{MAX_METADATA_BYTES >> 20} MiB limit")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InputError(f"{bad}: {str(exc)[:120]}") from None
    if isinstance(meta, dict) and isinstance(meta.get("format_version"), int) \
            and meta["format_version"] > FORMAT_VERSION and meta.get("format") == FORMAT:
        raise InputError(f"'{source}' was written by a newer graphspec "
                         f"({meta.get('graphspec_version', '?')}, metadata format "
                         f"{meta['format_version']}); upgrade graphspec to read it")
    _validate(meta, bad)
    return meta


def _validate(meta, bad: str) -> None:
    import jsonschema   # a core dependency; lazy like every schema user
    validator = jsonschema.Draft202012Validator(METADATA_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(meta))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise InputError(f"{bad}: at {where[:80]}: {error.message[:120]}")
    for name, words in meta.get("vocabularies", {}).items():
        if len(set(words)) != len(words):
            raise InputError(f"{bad}: vocabulary '{name[:80]}' repeats a category")


# -- compatibility -------------------------------------------------------------------
def _written_for(meta: dict) -> str:
    model = f"model '{meta['model']}' of " if meta.get("model") else ""
    params = ", ".join(f"{k}={v}" for k, v in sorted(meta.get("params", {}).items()))
    return f"{model}{meta.get('spec') or 'an unnamed spec'}" + \
        (f" (params {params})" if params else "")


def check_compatible(meta: dict | None, graph, source: str = "weights",
                     strict: bool = True) -> None:
    """Refuse weights written for another architecture, saying what they were for and
    the first differences; None if they fit (or the file has no metadata)."""
    if meta is None:
        return
    ours = _weight_table(graph)
    if meta["fingerprint"] == fingerprint(ours, _layer_types(graph)):
        return
    theirs = meta["weights"]
    differences = []
    for name, entry in ours.items():
        if name not in theirs:
            if strict:
                differences.append(f"'{name}' {tuple(entry['shape'])} is not in the file")
        elif theirs[name]["shape"] != entry["shape"]:
            differences.append(f"'{name}' is {tuple(theirs[name]['shape'])} in the file, "
                               f"{tuple(entry['shape'])} here")
    if strict:
        differences += [f"the file has '{n}' {tuple(theirs[n]['shape'])}, this spec does not"
                        for n in theirs if n not in ours]
    if not differences:
        return       # same weights; only weightless layers or the dtype changed
    shown = "; ".join(differences[:4]) + (f"; and {len(differences) - 4} more"
                                          if len(differences) > 4 else "")
    raise InputError(f"'{source}' was written for {_written_for(meta)}, another "
                     f"architecture: {shown}; compare the two with `graphspec diff` or "
                     f"`graphspec inspect-nodes {graph.file} --weights {source}`")


# -- params recorded in a file -----------------------------------------------------------
def _same(a, b) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def merge_params(recorded: dict, explicit: dict, source: str, declared: dict | None = None):
    """(params to compile with, notes): recorded params apply unless --set gives them;
    a --set that contradicts the file is refused naming both values."""
    for name, value in explicit.items():
        if name in recorded and not _same(recorded[name], value):
            raise InputError(f"--set {name}={value} conflicts with {name}={recorded[name]} "
                             f"recorded in '{source}' (the weights were built with it); drop "
                             f"--set {name}, or use weights built with {name}={value}")
    params, applied, dropped = dict(explicit), [], []
    for name, value in recorded.items():
        if name in explicit:
            continue
        if declared is not None and name not in declared:
            dropped.append(name)
            continue
        params[name] = value
        if declared is None or not _same(declared[name], value):
            applied.append(f"{name}={value}")
    notes = []
    if applied:
        notes.append(f"using the params recorded in '{source}': {', '.join(applied)}")
    if dropped:
        notes.append(f"'{source}' records params this spec does not declare: "
                     f"{', '.join(dropped)} (ignored)")
    return params, notes


def read_file_metadata(path) -> dict | None:
    """The metadata of the weights or model file at ``path`` (None if it has none).

    Reads that one member (a few KiB), not the weights: commands read the metadata
    before compiling and the weights after, through :func:`load_npz` and its checks."""
    import zipfile   # here, not at import: a spec check reads no archive
    path = os.fspath(path)
    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return read_metadata(load_npz(path), path)     # its one-line refusal
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                info = archive.getinfo(f"{META_KEY}.npy")
            except KeyError:
                return None
            limit = MAX_METADATA_BYTES + 4096           # the array and its .npy header
            if info.file_size > limit:
                raise InputError(f"'{path}' has a graphspec metadata member of "
                                 f"{info.file_size} bytes, more than the "
                                 f"{MAX_METADATA_BYTES >> 20} MiB limit")
            with archive.open(info) as handle:
                raw = np.lib.format.read_array(io.BytesIO(handle.read(limit)),
                                               allow_pickle=False)
    except InputError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise InputError(f"cannot read the graphspec metadata of '{path}': "
                         f"{str(exc)[:120]}") from None
    return read_metadata({META_KEY: raw}, path)
