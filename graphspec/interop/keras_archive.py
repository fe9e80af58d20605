"""A Keras 3 ``.keras`` file (or a bare ``config.json``) read as data, never as code.

A ``.keras`` file is a zip of ``config.json`` (the model's structure, read with the
json module), ``metadata.json`` and ``model.weights.h5`` (the weights, read with h5py).
Nothing in it is deserialized as Python: this module only checks the container and
hands out plain dicts and numpy arrays.

The zip gets the limits an ``.npz`` gets (member count, total uncompressed size), and
member names that could escape a directory when extracted (``../x``, ``/etc/x``,
``C:x``, backslashes) are refused even though nothing is extracted: such a file was
made to attack some reader. In the HDF5 file only hard links, plain numeric datasets
stored inside the file and the standard filters are accepted: an external link or an
external/virtual dataset would make HDF5 open other files on this machine.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import zipfile

import numpy as np

from ..errors import InputError
from ..io.files import MAX_ARCHIVE_MEMBERS, MAX_ARRAY_BYTES
from ..layers.base import MAX_WEIGHT_ELEMENTS

MAX_CONFIG_BYTES = 64 << 20
CONFIG_MEMBER, METADATA_MEMBER, WEIGHTS_MEMBER = "config.json", "metadata.json", \
    "model.weights.h5"
# deflate, shuffle, fletcher32, szip, nbit, scaleoffset, lzf: HDF5's own and h5py's
SAFE_H5_FILTERS = {1, 2, 3, 4, 5, 6, 32000}
KERAS_EXTRA = "{} needs the keras extra: pip install 'graphspec[keras]'"
_BAD_MEMBER = re.compile(r"(^[/\\])|(^[A-Za-z]:)|\\|(^|/)\.\.(/|$)|[\x00-\x1f]")


def h5py_module(feature: str = "graphspec import-keras"):
    """h5py, imported only by the Keras feature; one line naming the extra if absent."""
    try:
        import h5py
    except ImportError:
        raise InputError(KERAS_EXTRA.format(feature)) from None
    return h5py


class KerasArchive:
    """What one Keras file holds: ``config`` (dict) and ``weights`` (H5Weights or None)."""

    def __init__(self, file: str, config: dict, weights=None):
        self.file, self.config, self.weights = file, config, weights


def parse_config(raw: bytes, where: str) -> dict:
    """``config.json`` bytes as a dict; NaN/Infinity and deep nesting refused."""
    def no_constants(name):
        raise ValueError(f"'{name}' is not JSON")
    try:
        config = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
    except RecursionError:
        raise InputError(f"{where}: JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise InputError(f"{where}: expected a JSON object (a serialized Keras model), "
                         f"got {type(config).__name__}")
    return config


def _check_members(path: str, archive: zipfile.ZipFile) -> dict:
    members = archive.infolist()
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise InputError(f"'{path}' holds {len(members)} members, more than the limit of "
                         f"{MAX_ARCHIVE_MEMBERS}")
    total = sum(m.file_size for m in members)
    if total > MAX_ARRAY_BYTES:
        raise InputError(f"'{path}' expands to {total} bytes, more than the "
                         f"{MAX_ARRAY_BYTES >> 30} GiB limit (a zip bomb?)")
    by_name = {}
    for member in members:
        name = member.filename
        if _BAD_MEMBER.search(name):
            raise InputError(f"'{path}' member {name!r} has a path that escapes the "
                             "archive (absolute, '..' or a backslash): refused, the file "
                             "was not written by Keras")
        if name in by_name:
            raise InputError(f"'{path}' holds two members named {name!r}: refused "
                             "(readers disagree on which one counts)")
        by_name[name] = member
    return by_name


def _read_member(path, archive, member, limit: int) -> bytes:
    if member.file_size > limit:
        raise InputError(f"'{path}' member '{member.filename}' is {member.file_size} bytes, "
                         f"more than the {limit >> 20} MiB limit")
    with archive.open(member) as handle:
        data = handle.read(limit + 1)   # the declared size bounds what zipfile inflates
    return data


@contextlib.contextmanager
def open_keras(path):
    """Yield the :class:`KerasArchive` of a ``.keras`` zip or a bare ``config.json``."""
    path = os.fspath(path)
    try:
        if not os.path.isfile(path):
            raise InputError(f"cannot read '{path}': " + (
                "no such file" if not os.path.exists(path) else "not a regular file"))
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if head[:2] != b"PK":
        yield KerasArchive(path, parse_config(_read_plain(path), path))
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = _check_members(path, archive)
            if CONFIG_MEMBER not in members:
                raise InputError(f"'{path}' has no config.json: not a Keras 3 .keras file "
                                 "(save the model with model.save('model.keras'))")
            config = parse_config(_read_member(path, archive, members[CONFIG_MEMBER],
                                               MAX_CONFIG_BYTES), f"{path}:config.json")
            if WEIGHTS_MEMBER not in members:
                other = [n for n in members if n.startswith("model.weights")]
                raise InputError(f"'{path}' has no model.weights.h5" + (
                    f" ({other[0]} is not supported: save with the default h5 weights)"
                    if other else ""))
            raw = _read_member(path, archive, members[WEIGHTS_MEMBER], MAX_ARRAY_BYTES)
    except InputError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError,
            EOFError, ValueError, KeyError) as exc:
        raise InputError(f"cannot read '{path}' as a .keras archive: {exc}") from None
    h5py = h5py_module()
    try:
        h5 = h5py.File(io.BytesIO(raw), "r")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}:model.weights.h5: not an HDF5 file ({exc})") from None
    try:
        yield KerasArchive(path, config, H5Weights(h5, f"{path}:model.weights.h5"))
    finally:
        h5.close()


def _read_plain(path) -> bytes:
    size = os.path.getsize(path)
    if size > MAX_CONFIG_BYTES:
        raise InputError(f"'{path}' is {size} bytes, more than the "
                         f"{MAX_CONFIG_BYTES >> 20} MiB limit for a config.json")
    with open(path, "rb") as handle:
        return handle.read(MAX_CONFIG_BYTES + 1)


class H5Weights:
    """Read-only access to ``model.weights.h5``: groups by path, a layer's ``vars``."""

    def __init__(self, h5, where: str):
        self.h5, self.where = h5, where
        self.bytes_read = 0

    def group(self, path: str, required: bool = True):
        """The group at ``path`` (``layers/dense``), following hard links only."""
        h5py = h5py_module()
        node = self.h5
        for part in [p for p in path.split("/") if p]:
            link = node.get(part, getlink=True) if isinstance(node, h5py.Group) else None
            if link is None:
                if not required:
                    return None
                raise InputError(f"{self.where}: no group '{path}' (the weights do not "
                                 "match config.json)")
            if not isinstance(link, h5py.HardLink):
                raise InputError(f"{self.where}: '{path}' is a {type(link).__name__}: "
                                 "links to other files are refused")
            node = node[part]
        if not isinstance(node, h5py.Group):
            raise InputError(f"{self.where}: '{path}' is not a group")
        return node

    def name_of(self, path: str):
        """The layer name Keras recorded on ``path/vars`` (None if it did not)."""
        group = self.group(path + "/vars", required=False)
        if group is None:
            return None
        name = group.attrs.get("name")
        if isinstance(name, bytes):
            name = name.decode("utf-8", "replace")
        return name if isinstance(name, str) else None

    def children(self, path: str) -> list:
        group = self.group(path, required=False)
        return [] if group is None else list(group.keys())

    def vars(self, path: str) -> list:
        """The arrays ``path/vars/0..n-1`` in order (an absent group holds none)."""
        group = self.group(path + "/vars", required=False)
        if group is None:
            return []
        keys = list(group.keys())
        if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
            raise InputError(f"{self.where}: '{path}/vars' holds {keys[:5]}, expected "
                             "datasets named 0, 1, 2, ...")
        return [self._dataset(group, str(i), f"{path}/vars/{i}") for i in range(len(keys))]

    def _dataset(self, group, key, path) -> np.ndarray:
        h5py = h5py_module()
        link = group.get(key, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise InputError(f"{self.where}: '{path}' is a link to another file: refused")
        ds = group[key]
        if not isinstance(ds, h5py.Dataset):
            raise InputError(f"{self.where}: '{path}' is not a dataset")
        if ds.is_virtual or ds.external:
            raise InputError(f"{self.where}: '{path}' keeps its data outside the file "
                             "(external or virtual dataset): refused")
        plist = ds.id.get_create_plist()
        filters = {plist.get_filter(i)[0] for i in range(plist.get_nfilters())}
        if filters - SAFE_H5_FILTERS:
            raise InputError(f"{self.where}: '{path}' needs HDF5 filter(s) "
                             f"{sorted(filters - SAFE_H5_FILTERS)}, which graphspec does "
                             "not load")
        if ds.dtype.kind not in "fiu" or ds.shape is None:
            raise InputError(f"{self.where}: '{path}' holds {ds.dtype}, expected numbers")
        count = math.prod(ds.shape)
        self.bytes_read += count * ds.dtype.itemsize
        if count > MAX_WEIGHT_ELEMENTS or self.bytes_read > MAX_ARRAY_BYTES:
            raise InputError(f"{self.where}: '{path}' declares shape {ds.shape}: larger "
                             "than graphspec's weight limits")
        try:
            return np.asarray(ds[()])
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.where}: cannot read '{path}' ({exc})") from None
