"""Read a spec file into plain data plus the line:column of every value and key.

PyYAML's SafeLoader composes the document into nodes that carry marks; we build the
Python data ourselves from those nodes so every path (``models.mlp.calls[2].layer``)
keeps its location. Only the safe constructors run: a ``!!python/...`` tag is an
error, never an object. Aliases are expanded with a budget so a "billion laughs"
document is refused instead of exhausting memory.
"""
from __future__ import annotations

import os
import re
import stat

import yaml

from ..errors import InputError, SpecError

MAX_SPEC_BYTES = 4 << 20          # a spec is a text file someone reviews, not a data dump
MAX_VALUES = 200_000              # scalars + containers after alias expansion
MAX_DEPTH = 64

_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"


def one_line(text) -> str:
    """``text`` with control and invisible format characters escaped (``\\n``, ``\\u202e``).

    Names and values in a spec end up in error messages: a key holding a newline must
    not forge a second ``FILE:LINE:COL`` line (or a GitHub ``::error`` annotation), and a
    right-to-left override must not disguise one.
    """
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def spec_error(message, file="<spec>", line=0, col=0, path="") -> SpecError:
    """A :class:`SpecError` whose every part is one printable line."""
    return SpecError(one_line(message), one_line(file), line, col, one_line(path))


class Located:
    """Spec data with marks: ``where(path)`` gives (line, col), 1-based."""

    def __init__(self, data, marks: dict, key_marks: dict, file: str):
        self.data, self.marks, self.key_marks, self.file = data, marks, key_marks, file

    def where(self, path: tuple, key: bool = False) -> tuple:
        """The mark of ``path`` (of its key, if asked), else of its nearest ancestor."""
        if key and path in self.key_marks:
            return self.key_marks[path]
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))

    def error(self, path: tuple, message: str, key: bool = False) -> SpecError:
        line, col = self.where(tuple(path), key)
        return spec_error(message, self.file, line, col, format_path(path))


def format_path(path) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _mark(node) -> tuple:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Builder:
    def __init__(self, loader, file):
        self.loader, self.file = loader, file
        self.marks, self.key_marks, self.count = {}, {}, 0

    def fail(self, node, message, path=()):
        line, col = _mark(node)
        raise spec_error(message, self.file, line, col, format_path(path))

    def build(self, node, path=()):
        self.count += 1
        if self.count > MAX_VALUES:
            self.fail(node, f"document expands to more than {MAX_VALUES} values "
                            "(alias bomb or oversized spec)", path)
        if len(path) > MAX_DEPTH:
            self.fail(node, f"nesting deeper than {MAX_DEPTH} levels", path)
        self.marks[path] = _mark(node)
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _SEQ_TAG:
                self.fail(node, f"YAML tag {node.tag!r} is not allowed in a spec", path)
            return [self.build(item, path + (i,)) for i, item in enumerate(node.value)]
        return self._scalar(node, path)

    def _scalar(self, node, path):
        """A scalar through SafeLoader's constructors; anything they refuse is located."""
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            self.fail(node, f"YAML tag {node.tag!r} is not allowed in a spec "
                            f"({exc.problem})", path)
        except (ValueError, OverflowError) as exc:
            text = str(node.value)
            shown = repr(text) if len(text) <= 40 else repr(text[:37] + "...")
            reason = (f"an integer with {sum(c.isdigit() for c in text)} digits is too long"
                      if "digits" in str(exc) else str(exc))
            kind = node.tag.rsplit(":", 1)[-1]
            self.fail(node, f"value {shown} cannot be read as YAML {kind} ({reason})", path)

    def _mapping(self, node, path):
        if node.tag != _MAP_TAG:
            self.fail(node, f"YAML tag {node.tag!r} is not allowed in a spec", path)
        if any(key.tag == "tag:yaml.org,2002:merge" for key, _ in node.value):
            self.fail(node, "YAML merge keys (<<) are not supported in specs", path)
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, "mapping keys must be plain names", path)
            key = self._scalar(key_node, path)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                self.fail(key_node, f"duplicate key '{key}' (the earlier value would be "
                                    "silently lost)", path + (key,))
            self.key_marks[path + (key,)] = _mark(key_node)
            out[key] = self.build(value_node, path + (key,))
        return out


# -- YAML 1.2 numbers ----------------------------------------------------------------------
# PyYAML resolves plain scalars by YAML 1.1, where a float needs a dot and a signed
# exponent: ``1e-3``, ``1E5`` and ``1.5e3`` are strings there, so ``learning_rate: 3e-3``
# failed validation. YAML 1.2 (and JSON, and every Keras user) reads them as numbers.
# The spec loaders below add YAML 1.2's exponent forms to the float resolver (on their
# own subclasses: PyYAML's loaders are left as they are for everyone else).
_FLOAT_1_2 = re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$")
_FLOAT_TAG = "tag:yaml.org,2002:float"


def _with_yaml_1_2_floats(base):
    loader = type(f"Spec{base.__name__}", (base,), {})
    loader.yaml_implicit_resolvers = {k: list(v) for k, v in
                                      base.yaml_implicit_resolvers.items()}
    loader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_1_2, list("-+.0123456789"))
    return loader


_SpecLoader = _with_yaml_1_2_floats(yaml.SafeLoader)
_FastSpecLoader = _with_yaml_1_2_floats(yaml.CSafeLoader) \
    if getattr(yaml, "__with_libyaml__", False) else None


def parse_scalar(text: str):
    """A ``--set NAME=VALUE`` value read as a spec scalar would be: YAML 1.2 numbers
    (``5E-1`` -> 0.5, ``.5``, ``1e5`` -> 100000.0), ``true``/``false``, integers, else
    the text as a string. Anything that is not one scalar (a list, a mapping, nothing,
    a tag) raises :class:`~graphspec.errors.InputError`."""
    text = str(text)
    try:
        loader = _SpecLoader(text)
        try:
            node = loader.get_single_node()
            if not isinstance(node, yaml.ScalarNode) or node.tag.startswith("!") \
                    or node.tag not in _SCALAR_TAGS:
                raise InputError(f"'{one_line(text)}': a value must be a number, string "
                                 "or boolean")
            value = loader.construct_object(node, deep=True)
        finally:
            loader.dispose()
    except (yaml.YAMLError, ValueError, OverflowError):
        return text
    if value is None:
        raise InputError(f"'{one_line(text)}': a value must be a number, string or boolean")
    return value


_SCALAR_TAGS = {"tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null")}


# libyaml composes ~10x faster than PyYAML's pure-Python composer, but it recurses in C
# without a depth limit (2 million nested '[' crash the process). It is used only when
# a cheap over-estimate of the nesting depth is small; everything else, and every
# document libyaml refuses (for PyYAML's own, tested error messages), goes the Python way.
LIBYAML_MAX_DEPTH = 200
_FLOW_STEP = None


def _nesting_bound(text: str) -> int:
    """An upper bound of the document's nesting: flow brackets (quotes ignored, so it
    can only over-count) plus, per line, indentation and block indicators."""
    global _FLOW_STEP
    import numpy as np
    if _FLOW_STEP is None:
        _FLOW_STEP = np.zeros(256, np.int64)
        _FLOW_STEP[[ord("["), ord("{")]] = 1
        _FLOW_STEP[[ord("]"), ord("}")]] = -1
    raw = np.frombuffer(text.encode("utf-8", "replace"), np.uint8)
    flow = int(np.cumsum(_FLOW_STEP[raw]).max(initial=0))
    block = max((len(line) - len(line.lstrip(" ")) + line.count("-") + line.count(":")
                 + line.count("?") for line in text.splitlines()), default=0)
    return flow + block


def _compose(text: str):
    """The node tree and the loader that made it (its constructors build scalars)."""
    if getattr(yaml, "__with_libyaml__", False) and _nesting_bound(text) <= LIBYAML_MAX_DEPTH:
        yaml.reader.Reader(text)   # PyYAML's character checks first, same errors
        fast = _FastSpecLoader(text)
        try:
            return fast, fast.get_single_node()
        except yaml.YAMLError:
            fast.dispose()         # refused: let PyYAML say why, in its words
    loader = _SpecLoader(text)
    try:
        return loader, loader.get_single_node()
    except BaseException as exc:
        exc.graphspec_loader = loader
        raise


def load_text(text: str, file: str = "<spec>") -> Located:
    if len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise spec_error(f"spec is larger than {MAX_SPEC_BYTES >> 20} MiB", file, 1, 1)
    too_deep = f"nesting deeper than {MAX_DEPTH} levels"
    loader = None
    try:
        # The reader checks every character when it is created: a NUL or another
        # control character fails here, before any parsing.
        loader, node = _compose(text)
    except yaml.reader.ReaderError as exc:
        raise _reader_error(exc, text, file) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        raise spec_error(f"invalid YAML: {problem}", file, line, col) from None
    except RecursionError:
        # PyYAML composes nested nodes recursively: [[[[...]]]] ten thousand deep.
        raise spec_error(too_deep, file, 1, 1) from None
    except (ValueError, OverflowError) as exc:
        # The scanner's own conversions: "\U16777216" is not a character (chr() fails).
        loader = getattr(exc, "graphspec_loader", loader)
        mark = loader.get_mark() if loader is not None else None
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = "an escape names a character beyond U+10FFFF" if "chr()" in str(exc) \
            else str(exc)
        raise spec_error(f"invalid YAML: {problem}", file, line, col) from None
    except yaml.YAMLError as exc:
        raise spec_error(f"invalid YAML: {type(exc).__name__}", file, 1, 1) from None
    try:
        if node is None:
            raise spec_error("the spec is empty: it needs at least 'graphspec: 1' and "
                            "'models:'", file, 1, 1)
        builder = _Builder(loader, file)
        try:
            data = builder.build(node)
        except RecursionError:
            raise spec_error(too_deep, file, 1, 1) from None
        return Located(data, builder.marks, builder.key_marks, file)
    finally:
        loader.dispose()


def _reader_error(exc, text: str, file: str) -> SpecError:
    """A character YAML does not allow (NUL, other control characters), located."""
    position = exc.position if isinstance(exc.position, int) else 0
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    char = exc.character
    shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
    return spec_error(f"invalid YAML: character {shown} is not allowed in a spec "
                     f"({exc.reason})", file, line, col)


def load_file(path: str) -> Located:
    """Read and parse ``path``; unreadable files are SpecErrors too (one line, no trace)."""
    display = os.fspath(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise spec_error("cannot read spec: it is a directory", display, 0, 0)
        if not stat.S_ISREG(info.st_mode):
            # A FIFO would block the reader forever; a device never ends.
            raise spec_error("cannot read spec: not a regular file (a device, FIFO or "
                            "socket)", display, 0, 0)
        size = info.st_size
        if size > MAX_SPEC_BYTES:
            raise spec_error(f"spec is larger than {MAX_SPEC_BYTES >> 20} MiB", display, 1, 1)
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise spec_error(f"cannot read spec: {exc.strerror or exc}", display, 0, 0) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise spec_error(f"spec is not UTF-8 text (byte {exc.start})", display, 1, 1) from None
    return load_text(text, display)
