"""One self-describing model file: spec text, params, weights and metadata.

A *model file* (``graphspec pack``, :func:`save_model`) is a weights ``.npz`` (one
format) with two more members: ``__graphspec__`` (the metadata, see
:mod:`graphspec.io.metadata`) and ``__graphspec_spec__`` (the spec text as UTF-8 bytes).
So it is a zip of ``.npy`` members read through :func:`graphspec.io.files.load_npz` with
all its checks (sizes, member counts, headers, no pickles), member names that could
escape a directory are refused, and a weights file is a model file without its spec.
Which one a path holds is decided by its content, never by its name.

Commands compile with :func:`prepare` (SPEC a YAML spec or a model file, params resolved
from what the files record), allocate, then :func:`load_weights` from
:func:`weights_source`; :func:`open_graph` does all three for scripts and ``pack``.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .files import load_npz, save_npz
from .metadata import (META_KEY, MAX_SPEC_TEXT_BYTES, declared_params, spec_text_of,
                       check_compatible, make_metadata, merge_params, metadata_array,
                       read_file_metadata, read_metadata)

SPEC_KEY = "__graphspec_spec__"


@dataclass
class ModelFile:
    spec_text: str
    spec_name: str
    params: dict
    weights: dict                    # weight name -> array
    metadata: dict
    extra: dict = field(default_factory=dict)   # other members (optimizer/loss state)


def _safe_member_name(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and "\\" not in name and "\x00" not in name and \
        not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def _is_zip(path) -> bool:
    """A regular file starting like a zip (a FIFO is never opened: it would block)."""
    try:
        if not os.path.isfile(path):
            return False
        with open(path, "rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def is_model_file(path) -> bool:
    """True if ``path`` is a zip holding a spec member (decided by content, not name)."""
    if not _is_zip(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return f"{SPEC_KEY}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError):
        return False


def _check_members(path) -> None:
    """Names that could escape a directory if extracted, or repeat, are refused."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError) as exc:
        raise InputError(f"cannot read '{path}' as a model file: {exc}") from None
    for name in names:
        if not _safe_member_name(name):
            raise InputError(f"'{path}' holds a member named {name[:80]!r} (an absolute or "
                             "'..' path); refusing the archive")
    if len(set(names)) != len(names):
        raise InputError(f"'{path}' holds two members with the same name; refusing it")


def open_model_file(path) -> ModelFile:
    """Read a model file (``graphspec pack``); every member checked before use."""
    path = os.fspath(path)
    _check_members(path)
    arrays = load_npz(path)      # sizes, member count, headers, no pickles
    meta = read_metadata(arrays, path)
    if SPEC_KEY not in arrays or meta is None:
        raise InputError(f"'{path}' is a weights file, not a model file (no embedded spec); "
                         "pass the spec too, or make one with graphspec pack SPEC --weights "
                         f"{path} -o model.gspec.zip")
    raw = arrays[SPEC_KEY]
    if raw.dtype != np.uint8 or raw.ndim != 1 or raw.size > MAX_SPEC_TEXT_BYTES:
        raise InputError(f"'{path}': its spec member is not UTF-8 text of at most "
                         f"{MAX_SPEC_TEXT_BYTES >> 20} MiB")
    try:
        text = raw.tobytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"'{path}': its spec member is not UTF-8 text (byte {exc.start})") \
            from None
    weights = {k: v for k, v in arrays.items() if k in meta["weights"]}
    extra = {k: v for k, v in arrays.items()
             if k not in weights and k not in (META_KEY, SPEC_KEY)}
    return ModelFile(text, meta.get("spec") or "spec.yaml", dict(meta["params"]), weights,
                     meta, extra)


def _spec_display(path, spec_name) -> str:
    return f"{path}/{spec_name}"


def save_model(graph, path, model_name: str | None = None, params: dict | None = None,
               vocabularies: dict | None = None, columns: dict | None = None,
               spec_text: str | None = None) -> dict:
    """Write ``graph`` (spec text, params, weights, metadata) as one model file."""
    text = spec_text if spec_text is not None else spec_text_of(graph)
    if text is None:
        raise InputError("save_model needs the spec text: load the graph from a file, or "
                         "pass spec_text=")
    previous = getattr(graph, "metadata", None) or {}
    meta = make_metadata(graph, model_name or previous.get("model"),
                         params if params is not None else previous.get("params"),
                         vocabularies if vocabularies is not None
                         else previous.get("vocabularies"),
                         columns if columns is not None else previous.get("columns"), text)
    if getattr(graph, "metadata", None) and meta["spec"] != previous.get("spec"):
        meta["spec"] = previous.get("spec") or meta["spec"]
    arrays = {key: var.data for key, var in graph.weights().items()}
    arrays[META_KEY] = metadata_array(meta)
    arrays[SPEC_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()
    save_npz(path, arrays)
    return meta


def _attach(graph, meta, text=None, params=None):
    """What later saves need to describe the graph again (see the lead's Graph note)."""
    graph.metadata = meta
    if text is not None:
        graph.spec_text = text
    if params is not None:
        graph.params = params


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
    from .. import api   # the API compiles; a model file only describes
    explicit = dict(params or {})
    recorded = read_file_metadata(weights) if weights else None
    if _is_zip(spec):          # a model file; a weights file as SPEC is refused by name
        model_file = open_model_file(spec)
        merged, notes = merge_params(model_file.params, explicit, str(spec))
        if recorded is not None:
            merge_params(recorded["params"], merged, str(weights))   # refuses a conflict
        graph = api.loads(model_file.spec_text, dtype=dtype, params=merged, initialize=False,
                          name=_spec_display(spec, model_file.spec_name))
        _attach(graph, model_file.metadata, model_file.spec_text, merged)
        graph.model_file = os.fspath(spec)
        return Opened(graph, model_file.metadata, notes)
    merged, notes = explicit, []
    if recorded is not None and recorded["params"]:
        merged, notes = merge_params(recorded["params"], explicit, str(weights),
                                     declared_params(spec))
    graph = api.load(spec, dtype=dtype, params=merged, initialize=False)
    _attach(graph, recorded, params=merged)    # its vocabularies and columns, for --data
    return Opened(graph, recorded, notes)


def weights_source(graph, weights=None):
    """The file a command's weights come from: --weights, else the model file SPEC was."""
    return weights or getattr(graph, "model_file", None)


def load_weights(graph, path, strict: bool = True) -> dict:
    """Load a weights or model file into ``graph`` after checking its architecture;
    returns the non-weight entries (optimizer, loss state), like Graph.load_weights."""
    arrays = load_npz(path)
    meta = read_metadata(arrays, str(path))
    check_compatible(meta, graph, str(path), strict)
    graph.set_weights(arrays, source=str(path), strict=strict)
    if meta is not None:
        _attach(graph, meta)
    return {k: v for k, v in arrays.items()
            if k not in graph.weight_specs() and k not in (META_KEY, SPEC_KEY)}


def open_graph(spec, weights=None, params: dict | None = None, seed: int | None = None,
               dtype: str = "float32") -> Opened:
    """Compile, initialise and load weights in one call (pack, scripts): SPEC and
    ``weights`` as in :func:`prepare`; the weights come from ``weights`` if given,
    else from the model file SPEC is."""
    opened = prepare(spec, weights, params, dtype)
    opened.graph.initialize(seed)
    source = weights_source(opened.graph, weights)
    if source:
        load_weights(opened.graph, source)
        opened.metadata = opened.graph.metadata or opened.metadata
    return opened
