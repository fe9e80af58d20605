"""One self-describing model file: spec text, params, weights and metadata.

A *model file* (``graphspec pack``, :func:`save_model`) is a weights ``.npz`` (one
format) with two more members: ``__graphspec__`` (the metadata, see
:mod:`graphspec.io.metadata`) and ``__graphspec_spec__`` (the spec text as UTF-8 bytes).
So it is a zip of ``.npy`` members read through :func:`graphspec.io.files.load_npz` with
all its checks (sizes, member counts, headers, no pickles), member names that could
escape a directory are refused, and a weights file is a model file without its spec.
Which one a path holds is decided by its content, never by its name.

Commands compile with :func:`graphspec.api.prepare` (SPEC a YAML spec or a model file,
params resolved from what the files record), allocate, then load the file
:func:`weights_source` names with ``Graph.load_weights`` (which checks the architecture
the file records); :func:`graphspec.api.open_graph` does all three for scripts and
``pack``. Compiling lives in the API, above this module: io/ describes files only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from .files import load_npz, save_npz
from .metadata import (MAX_SPEC_TEXT_BYTES, META_KEY, make_metadata, metadata_array,
                       read_metadata, spec_text_of)

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


def is_zip(path) -> bool:
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
    if not is_zip(path):
        return False
    import zipfile   # here, not at import: only for a file that starts like a zip
    try:
        with zipfile.ZipFile(path) as archive:
            return f"{SPEC_KEY}.npy" in archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError, NotImplementedError):
        return False


def _check_members(path) -> None:
    """Names that could escape a directory if extracted, or repeat, are refused."""
    import zipfile
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


def spec_display(path, spec_name) -> str:
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


def attach(graph, meta, text=None, params=None):
    """What later saves need to describe the graph again (see the lead's Graph note)."""
    graph.metadata = meta
    if text is not None:
        graph.spec_text = text
    if params is not None:
        graph.params = params


def weights_source(graph, weights=None):
    """The file a command's weights come from: --weights, else the model file SPEC was."""
    return weights or getattr(graph, "model_file", None)
