"""CSV and Parquet files as training, evaluation and predict data.

A *mapping* says where each model input or target comes from::

    pixels:  {columns: "p0:p63"}                      # a span of columns, header order
    extras:  {columns: [age, height]}                 # a list (spans allowed in it)
    price:   {column: price}                          # one column -> shape (N,)
    species: {column: species, categories: auto}      # text -> class ids, vocabulary kept

``columns`` gives shape ``(N, k)``, ``column`` gives ``(N,)``. Categories become int64
ids into a vocabulary: ``auto`` sorts the distinct values; a vocabulary passed in (the
one stored in a model file) is reused as is, so predict maps names exactly as training
did.

Every cell that enters is checked where it enters: numeric, finite after the cast to the
model's dtype, known category. Errors name the file, line, row and column.

The cells themselves are read by :mod:`graphspec.io.table_readers` (pyarrow when it is
installed, the csv module as the reference that locates every error).
"""
from __future__ import annotations

import csv
import difflib
import os

import numpy as np

from ..errors import InputError
from .files import atomic_write
from .mapping_schema import COLUMN_MAPPING_SCHEMA, MAX_VOCABULARY
from .table_readers import check_table_file, header_of, located, read_columns, table_kind


# -- the mapping -----------------------------------------------------------------------
class _Field:
    """One input or target: its columns, whether it is categorical, its output rank."""

    def __init__(self, name, columns, categories, single):
        self.name, self.columns, self.categories, self.single = name, columns, categories, single


def _did_you_mean(word, choices) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _column(path, header, name, column) -> str:
    if column not in header:
        shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
        raise InputError(f"{path}: no column '{column}' (for '{name}')"
                         f"{_did_you_mean(column, header)}; its columns: {shown}")
    return column


def _expand(path, header, name, item) -> list:
    """A column name, or a span 'first:last' of the header."""
    if item in header or ":" not in item:
        return [_column(path, header, name, item)]
    first, _, last = item.partition(":")
    i = header.index(_column(path, header, name, first))
    j = header.index(_column(path, header, name, last))
    if j < i:
        raise InputError(f"{path}: the span '{item}' for '{name}' runs backwards ('{last}' "
                         f"comes before '{first}' in the header)")
    return header[i:j + 1]


def validate_mapping(mapping, source: str) -> None:
    """Refuse a mapping that is not {name: {columns: ...} | {column: ..., ...}}."""
    import jsonschema   # a core dependency, imported where it is used
    schema = {"type": "object", "additionalProperties": COLUMN_MAPPING_SCHEMA}
    error = next(iter(jsonschema.Draft202012Validator(schema).iter_errors(mapping)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        raise InputError(f"{source}: the column mapping is invalid at {where[:80]}: "
                         f"{error.message[:160]}")


def _fields(path, header, mapping) -> list:
    validate_mapping(mapping, str(path))
    _refuse_missing(path, header, mapping)
    fields = []
    for name, spec in mapping.items():
        if "column" in spec:
            columns = [_column(path, header, name, spec["column"])]
            fields.append(_Field(name, columns, spec.get("categories"), True))
            continue
        items = [spec["columns"]] if isinstance(spec["columns"], str) else spec["columns"]
        columns = [c for item in items for c in _expand(path, header, name, item)]
        fields.append(_Field(name, columns, None, False))
    return fields


def _refuse_missing(path, header, mapping) -> None:
    """Named columns (not spans) the file lacks, all of them in one line: a model file's
    recorded columns are names, and a file without some of them is refused naming each."""
    present = set(header)
    missing = []
    for name, spec in mapping.items():
        items = [spec["column"]] if "column" in spec else \
            [spec["columns"]] if isinstance(spec["columns"], str) else spec["columns"]
        missing += [(item, name) for item in items
                    if item not in present and ":" not in item]
    if len(missing) < 2:
        return               # none, or one: _column says it with a suggestion
    shown = ", ".join(header[:12]) + (", ..." if len(header) > 12 else "")
    lacks = ", ".join(f"'{c}' (for '{n}')" for c, n in missing[:12]) + \
        (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
    raise InputError(f"{path}: no columns {lacks}; its columns: {shown}")


def resolved_mapping(fields) -> dict:
    """The mapping with every span replaced by the column names it resolved to: what a
    weights or model file records, so later files are read by name in any column order."""
    out = {}
    for field in fields:
        if field.single:
            entry = {"column": field.columns[0]}
            if field.categories is not None:
                entry["categories"] = field.categories
        else:
            entry = {"columns": list(field.columns)}
        out[field.name] = entry
    return out


def _items(entry) -> list:
    if "column" in entry:
        return [entry["column"]]
    return [entry["columns"]] if isinstance(entry["columns"], str) else list(entry["columns"])


def has_span(entry) -> bool:
    """Whether a mapping entry names its columns by a span (header order), not by name."""
    return "columns" in entry and any(":" in item for item in _items(entry))


def _resolves_to(entry, recorded) -> bool:
    """Whether ``entry`` (a job's data: entry) read against the recorded names as a header
    gives exactly those names: the same mapping the weights were trained with."""
    if not isinstance(entry, dict) or not isinstance(recorded, dict):
        return False
    if entry == recorded:
        return True
    if "columns" not in entry or "columns" not in recorded or has_span(recorded):
        return False
    names = _items(recorded)
    try:
        got = [c for item in _items(entry) for c in _expand("", names, "", item)]
    except InputError:
        return False
    return got == names


def with_recorded(mapping: dict, metadata: dict | None, source: str = "the weights"):
    """(mapping, notes): ``mapping`` (a job's data: section) with each entry the weights
    were trained with replaced by the column names recorded for it, so a data file is
    read by name whatever its column order. Entries the job maps differently stay (the
    user changed them); names only the file records are added. Files of older versions
    record spans, not names: those keep working in header order, with a note saying so.
    """
    recorded = (metadata or {}).get("columns") or {}
    out, notes = dict(mapping), []
    for name, entry in recorded.items():
        if name not in out or _resolves_to(out[name], entry):
            out[name] = entry
        if out[name] == entry and has_span(entry):
            spans = ", ".join(i for i in _items(entry) if ":" in i)
            notes.append(f"warning: {source} records '{name}' as the span {spans}, not the "
                         "column names it was trained on (an older graphspec wrote it); "
                         "assuming the data file's columns are in the training file's "
                         "order (train again to record the names)")
    return out, notes


def _categories(path, field, values, vocabulary, line_of) -> tuple:
    """Class ids of ``values`` and the vocabulary they index (sorted names for auto).

    An empty cell is a missing value, not a category, unless a given vocabulary has ""."""
    values = np.asarray(values, dtype=object)
    uniques, inverse = np.unique(values.astype(str), return_inverse=True)
    inverse = inverse.reshape(-1)
    blank = [i for i, u in enumerate(uniques) if not u.strip()]
    if blank and (vocabulary is None or uniques[blank[0]] not in vocabulary):
        row = int(np.argmax(inverse == blank[0])) + 1
        raise located(path, line_of(row), row, field.columns[0], "empty cell")
    if vocabulary is None:
        if uniques.size > MAX_VOCABULARY:
            raise InputError(f"{path}: column '{field.columns[0]}' has {uniques.size} "
                             f"distinct values, more than {MAX_VOCABULARY} categories")
        vocabulary = [str(u) for u in uniques]
    lookup = {word: i for i, word in enumerate(vocabulary)}
    ids = np.array([lookup.get(str(u), -1) for u in uniques], dtype=np.int64)[inverse]
    if (ids < 0).any():
        row = int(np.argmax(ids < 0)) + 1
        known = ", ".join(vocabulary[:6]) + (", ..." if len(vocabulary) > 6 else "")
        raise located(path, line_of(row), row, field.columns[0],
                      f"'{str(values[row - 1])[:40]}' is not one of the "
                      f"{len(vocabulary)} categories the model knows ({known})")
    return ids, vocabulary


def _kinds(path, fields) -> tuple:
    """The columns read as numbers and those read as category text."""
    numeric = list(dict.fromkeys(c for f in fields if f.categories is None for c in f.columns))
    text = list(dict.fromkeys(c for f in fields if f.categories is not None
                              for c in f.columns))
    both = [c for c in text if c in numeric]
    if both:
        raise InputError(f"{path}: column '{both[0]}' is mapped both as numbers and as "
                         "categories; map it once")
    return numeric, text


def load_table(path, mapping: dict, vocabularies: dict | None = None,
               dtype: str = "float32") -> tuple:
    """(arrays keyed by input/target name, vocabularies) from a CSV or Parquet file.

    >>> arrays, vocab = load_table("iris.csv", {
    ...     "features": {"columns": "sepal_length:petal_width"},
    ...     "species": {"column": "species", "categories": "auto"}})
    >>> arrays["features"].shape, arrays["species"].dtype, vocab["species"]
    ((150, 4), dtype('int64'), ['setosa', 'versicolor', 'virginica'])
    """
    path = os.fspath(path)
    check_table_file(path)
    kind = table_kind(path)
    if kind is None:
        raise InputError(f"'{path}' is neither a CSV (UTF-8 text) nor a Parquet table")
    if not mapping:
        raise InputError(f"{path}: no columns are mapped to the model's inputs and targets; "
                         "add a data: section to the training job, or pass --columns "
                         "NAME=COLUMNS")
    arrays, vocab, _ = _load(path, kind, mapping, vocabularies, dtype)
    return arrays, vocab


def _load(path, kind, mapping, vocabularies, dtype) -> tuple:
    header = header_of(path, kind)
    fields = _fields(path, header, mapping)
    numeric, text = _kinds(path, fields)
    columns, raw, line_of = read_columns(path, kind, header, numeric, text, dtype)
    arrays, vocab = {}, {}
    for field in fields:
        if field.categories is not None:
            given = (vocabularies or {}).get(field.name)
            if given is None and field.categories != "auto":
                given = list(field.categories)
            arrays[field.name], vocab[field.name] = _categories(
                path, field, raw[field.columns[0]], given, line_of)
        elif field.single:
            arrays[field.name] = columns[field.columns[0]]
        else:
            arrays[field.name] = np.stack([columns[c] for c in field.columns], axis=1)
    sizes = {len(a) for a in arrays.values()}
    if sizes == {0}:
        raise InputError(f"{path}: no data rows below the header")
    return arrays, vocab, resolved_mapping(fields)


# -- one call for the commands that take --data ----------------------------------------
def read_data(path, mapping: dict | None = None, names=None, metadata: dict | None = None,
              dtype: str = "float32") -> tuple:
    """(arrays, vocabularies, mapping used) for ``--data``/``--input``: an ``.npz`` as it is,
    a CSV/Parquet through a mapping. The mapping used has every span resolved to the
    column names it gave in this file's header (what train records in the weights).

    The mapping is ``mapping`` (``--columns``, or the job's ``data:``) when given, else the
    columns recorded in ``metadata`` (the model file's, so a colleague predicts without
    knowing them, in any column order; see :func:`with_recorded` for a job's mapping); ``names`` keeps only those entries (predict: the model's inputs).
    Vocabularies recorded in ``metadata`` are reused, never re-derived.
    """
    from .files import load_npz
    path = os.fspath(path)
    check_table_file(path)
    if table_kind(path) is None:
        return load_npz(path), {}, {}
    metadata = metadata or {}
    chosen = dict(mapping or metadata.get("columns") or {})
    if names is not None:
        missing = [n for n in names if n not in chosen]
        if chosen and missing:
            raise InputError(f"{path}: no columns are mapped to {missing}; add them to the "
                             "job's data: section or pass --columns NAME=COLUMNS")
        chosen = {n: chosen[n] for n in names if n in chosen}
    if not chosen:
        load_table(path, chosen)         # its refusal: nothing is mapped
    arrays, vocabularies, resolved = _load(path, table_kind(path), chosen,
                                           metadata.get("vocabularies"), dtype)
    return arrays, vocabularies, resolved


# -- the command line's --columns ------------------------------------------------------
def parse_columns(values, categories=()) -> dict:
    """``--columns NAME=COLUMNS`` (repeatable) and ``--categories NAME`` -> a mapping.

    COLUMNS is a column, a span ``first:last``, or a comma list of either
    (``pixels=p0:p63``, ``xy=x,y``). ``--categories NAME`` makes NAME's single column a
    category (``categories: auto``).
    """
    mapping = {}
    for item in values:
        name, sep, columns = item.partition("=")
        if not sep or not name or not columns:
            raise InputError(f"--columns '{item}' should look like NAME=COLUMNS, e.g. "
                             "pixels=p0:p63 or species=species")
        parts = [p for p in columns.split(",") if p]
        if name in categories:
            if len(parts) != 1 or ":" in parts[0]:
                raise InputError(f"--categories {name}: map it to one column "
                                 f"(--columns {name}=COLUMN)")
            mapping[name] = {"column": parts[0], "categories": "auto"}
        elif len(parts) == 1 and ":" not in parts[0]:
            mapping[name] = {"column": parts[0]}
        else:
            mapping[name] = {"columns": parts if len(parts) > 1 else parts[0]}
    for name in categories:
        if name not in mapping:
            raise InputError(f"--categories {name}: no --columns {name}=COLUMN goes with it")
    return mapping


# -- predictions out -------------------------------------------------------------------
def prediction_columns(outputs: dict, vocabularies: dict | None = None) -> dict:
    """Output arrays as named CSV columns; a softmax over a vocabulary becomes its names.

    ``species`` (N, 3) with a vocabulary of 3 gives ``species`` (the argmax's name) and
    ``species_probability``; other outputs give ``name`` or ``name_0 ... name_k``.
    """
    columns = {}
    for name, value in outputs.items():
        value = np.asarray(value)
        flat = value.reshape(len(value), -1)
        words = (vocabularies or {}).get(name)
        if words is not None and flat.shape[1] == len(words):
            best = flat.argmax(axis=1)
            columns[name] = np.asarray(words, dtype=object)[best]
            columns[f"{name}_probability"] = flat[np.arange(len(flat)), best]
        elif flat.shape[1] == 1:
            columns[name] = flat[:, 0]
        else:
            columns.update({f"{name}_{i}": flat[:, i] for i in range(flat.shape[1])})
    return columns


def _cell(name: str) -> str:
    """A category name as a CSV cell a spreadsheet will not run: a model file is
    untrusted, and a name like ``=HYPERLINK(...)`` would be a formula (OWASP's advice:
    prefix a quote). Names that are plain numbers (``-1``) stay as they are."""
    if name[:1] in ("=", "+", "-", "@", "\t", "\r"):
        try:
            float(name)
        except ValueError:
            return "'" + name
    return name


def write_predictions_csv(path, outputs: dict, vocabularies: dict | None = None) -> list:
    """Write ``outputs`` as a CSV (atomically); returns the column names."""
    columns = prediction_columns(outputs, vocabularies)
    names = list(columns)
    rows = zip(*(columns[n] for n in names))
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([_cell(v) if isinstance(v, str) else repr(float(v)) for v in row])
    return names


