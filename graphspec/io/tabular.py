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

Readers (measured on a 1,000,000-row, 10-column CSV of 85 MB, 2 shared cores: the csv
module 5.4 s, numpy.loadtxt 1.7 s, pyarrow.csv 1.1 s): pyarrow when it is installed
(the ``graphspec[tabular]`` extra), numpy.loadtxt for all-numeric mappings without it,
and the csv module otherwise. The csv module is also the *reference* reader: whenever a
fast reader refuses or finds a bad value, the file is read again by the csv module,
which decides, so every install accepts the same files and locates errors exactly.
"""
from __future__ import annotations

import csv
import difflib
import os

import numpy as np

from ..errors import InputError
from .files import MAX_ARRAY_FILE_BYTES, atomic_write

_PARQUET_MAGIC = b"PAR1"
_BINARY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")
MAX_VOCABULARY = 1 << 20

COLUMN_MAPPING_SCHEMA = {
    "description": "where one model input or target comes from in a CSV/Parquet file",
    "oneOf": [
        {"type": "object", "required": ["columns"], "additionalProperties": False,
         "properties": {"columns": {"oneOf": [
             {"type": "string", "minLength": 1, "maxLength": 4096,
              "description": "a column, or a span 'first:last' in header order"},
             {"type": "array", "minItems": 1, "maxItems": 1 << 16,
              "items": {"type": "string", "minLength": 1, "maxLength": 1024}}]}}},
        {"type": "object", "required": ["column"], "additionalProperties": False,
         "properties": {
             "column": {"type": "string", "minLength": 1, "maxLength": 1024},
             "categories": {"oneOf": [
                 {"const": "auto"},
                 {"type": "array", "minItems": 1, "maxItems": MAX_VOCABULARY,
                  "items": {"type": "string", "maxLength": 1024}}]}}},
    ],
}
# The ``data:`` section of a training job: model input/output name -> mapping.
DATA_SCHEMA = {"type": "object", "propertyNames": {"$ref": "#/$defs/name"},
               "additionalProperties": COLUMN_MAPPING_SCHEMA,
               "description": "columns of a CSV/Parquet --data file for each input and "
                              "target"}


# -- what a file is ------------------------------------------------------------------
def _head(path, n=4) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(n)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None


def table_kind(path) -> str | None:
    """"parquet", "csv", or None for .npz/.npy (by the first bytes, not the name)."""
    head = _head(path, 6)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head[:4] in _BINARY_MAGIC[:2] or head == _BINARY_MAGIC[2]:
        return None
    return "csv"


def _check_file(path) -> None:
    if not os.path.isfile(path):
        what = "a directory" if os.path.isdir(path) else \
            "not a regular file" if os.path.exists(path) else None
        raise InputError(f"cannot read '{path}': " + (f"it is {what}" if what
                                                      else "no such file"))
    if os.path.getsize(path) > MAX_ARRAY_FILE_BYTES:
        raise InputError(f"'{path}' is larger than {MAX_ARRAY_FILE_BYTES >> 30} GiB")


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


# -- reading -----------------------------------------------------------------------------
def _located(path, line, row, column, problem) -> InputError:
    where = f"line {line} (data row {row})" if line else f"row {row}"
    return InputError(f"{path}, {where}, column '{column}': {problem}")


def _csv_header(path) -> list:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start}); is it really a CSV "
                         "file? (arrays go in .npz files)") from None
    except csv.Error as exc:
        raise InputError(f"{path}, line 1: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if not header or not any(h.strip() for h in header):
        raise InputError(f"{path}: no header line; the first line must name the columns")
    seen = set()
    for name in header:
        if name in seen:
            raise InputError(f"{path}, line 1: column '{name}' appears twice in the header")
        seen.add(name)
    return header


def _csv_reference(path, header, columns) -> dict:
    """column -> list of cell strings, by the csv module; row-shape errors located."""
    index = {c: header.index(c) for c in columns}
    cells = {c: [] for c in columns}
    pairs = [(cells[c], index[c]) for c in columns]
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if len(row) != len(header):
                    if not row:
                        continue         # a blank line
                    raise InputError(f"{path}, line {reader.line_num}: {len(row)} fields, "
                                     f"the header has {len(header)}")
                for store, i in pairs:
                    store.append(row[i])
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}, line {reader.line_num}: {exc}") from None
    return cells


def _line_of(path, row) -> int:
    """The line of data row ``row`` (1-based), counting quoted newlines correctly."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader)
        count = 0
        for cells in reader:
            if cells:
                count += 1
                if count == row:
                    return reader.line_num
    return 0


def _numbers(path, column, values, dtype, line_of) -> np.ndarray:
    """Cells -> numbers of ``dtype``; the first bad cell located."""
    try:
        array = np.fromiter(map(float, values), np.float64, len(values))
    except ValueError:
        for row, cell in enumerate(values, 1):
            try:
                float(cell)
            except ValueError:
                problem = "empty cell" if not cell.strip() else \
                    f"'{cell[:40]}' is not a number"
                raise _located(path, line_of(row), row, column, problem) from None
        raise
    return _finite(path, column, array, dtype, line_of, values)


def _finite(path, column, array, dtype, line_of, values=None) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(dtype)
    bad = ~np.isfinite(cast)
    if bad.any():
        row = int(np.argmax(bad)) + 1
        raw = array[row - 1]
        shown = f"'{values[row - 1][:40]}'" if values is not None else repr(float(raw))
        problem = f"{shown} is NaN or infinite" if not np.isfinite(raw) else \
            f"{shown} does not fit {np.dtype(dtype).name}"
        raise _located(path, line_of(row), row, column, problem)
    return cast


def _categories(path, field, values, vocabulary, line_of) -> tuple:
    """Class ids of ``values`` and the vocabulary they index."""
    values = np.asarray(values, dtype=object)
    uniques, inverse = np.unique(values.astype(str), return_inverse=True)
    if vocabulary is None:
        if uniques.size > MAX_VOCABULARY:
            raise InputError(f"{path}: column '{field.columns[0]}' has {uniques.size} "
                             f"distinct values, more than {MAX_VOCABULARY} categories")
        vocabulary = [str(u) for u in uniques]
    lookup = {word: i for i, word in enumerate(vocabulary)}
    codes = np.array([lookup.get(str(u), -1) for u in uniques], dtype=np.int64)
    ids = codes[inverse.reshape(-1)]
    if (ids < 0).any():
        row = int(np.argmax(ids < 0)) + 1
        known = ", ".join(vocabulary[:6]) + (", ..." if len(vocabulary) > 6 else "")
        raise _located(path, line_of(row), row, field.columns[0],
                       f"'{str(values[row - 1])[:40]}' is not one of the "
                       f"{len(vocabulary)} categories the model knows ({known})")
    empty = [i for i, u in enumerate(uniques) if not str(u).strip()]
    if empty and "" not in lookup:
        row = int(np.argmax(inverse.reshape(-1) == empty[0])) + 1
        raise _located(path, line_of(row), row, field.columns[0], "empty cell")
    return ids, vocabulary


def _arrow_csv(path, header, numeric, text):
    """column -> numpy array (float64 or object), or None if pyarrow refuses the file."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pacsv
    except ImportError:
        return None
    types = {c: pa.float64() for c in numeric}
    types.update({c: pa.string() for c in text})
    options = pacsv.ConvertOptions(column_types=types, include_columns=numeric + text,
                                   strings_can_be_null=False)
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError, KeyError, ValueError):
        return None                        # the reference reader says exactly why
    out = {}
    for name in numeric + text:
        column = table.column(name)
        if column.null_count:
            return None
        out[name] = column.to_numpy(zero_copy_only=False) if name in numeric else \
            np.asarray(column.to_pylist(), dtype=object)
    return out


def _loadtxt(path, header, numeric):
    try:
        with np.errstate(all="ignore"):
            array = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2,
                               usecols=[header.index(c) for c in numeric], quotechar='"',
                               encoding="utf-8-sig")
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    if not np.all(np.isfinite(array)):
        return None
    return {c: array[:, i] for i, c in enumerate(numeric)}


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


def _read_csv(path, mapping, dtype) -> tuple:
    header = _csv_header(path)
    fields = _fields(path, header, mapping)
    numeric, text = _kinds(path, fields)
    fast = _arrow_csv(path, header, numeric, text)
    if fast is None and not text:
        fast = _loadtxt(path, header, numeric)
    cells = None
    if fast is None:
        cells = _csv_reference(path, header, numeric + text)

    def line_of(row):
        return _line_of(path, row)

    columns = {}
    for c in numeric:
        if cells is None:
            try:
                columns[c] = _finite(path, c, fast[c], dtype, line_of)
                continue
            except InputError:
                cells = _csv_reference(path, header, numeric + text)   # let it locate
        columns[c] = _numbers(path, c, cells[c], dtype, line_of)
    raw = {c: (fast[c] if cells is None else cells[c]) for c in text}
    return fields, columns, raw, line_of


def _read_parquet(path, mapping, dtype) -> tuple:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install "
                         "'graphspec[tabular]'") from None
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read '{path}' as Parquet: {str(exc)[:160]}") from None
    header = list(schema.names)
    fields = _fields(path, header, mapping)
    needed = list(dict.fromkeys(c for f in fields for c in f.columns))
    try:
        table = pq.read_table(path, columns=needed)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read '{path}' as Parquet: {str(exc)[:160]}") from None
    categorical = set(_kinds(path, fields)[1])
    columns, raw = {}, {}
    for name in needed:
        column = table.column(name)
        if column.null_count:
            row = int(np.argmax(column.is_null().to_numpy(zero_copy_only=False))) + 1
            raise _located(path, 0, row, name, "missing value (null)")
        kind = column.type
        if name in categorical:
            raw[name] = np.asarray(column.to_pylist(), dtype=object)
        elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or \
                pa.types.is_boolean(kind) or pa.types.is_decimal(kind):
            values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
            columns[name] = _finite(path, name, values, dtype, lambda row: 0)
        else:
            first = column[0].as_py() if len(column) else None
            raise InputError(f"{path}: column '{name}' holds {kind} values (e.g. "
                             f"{str(first)[:40]!r}), not numbers; if it is a category map "
                             f"it with {{column: {name}, categories: auto}}")
    return fields, columns, raw, lambda row: 0


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
    _check_file(path)
    kind = table_kind(path)
    if kind is None:
        raise InputError(f"'{path}' is an .npz/.npy array file, not a CSV or Parquet table")
    if not mapping:
        raise InputError(f"{path}: no columns are mapped to the model's inputs and targets; "
                         "add a data: section to the training job, or pass --columns "
                         "NAME=COLUMNS")
    reader = _read_parquet if kind == "parquet" else _read_csv
    fields, columns, raw, line_of = reader(path, mapping, dtype)
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
    return arrays, vocab


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


def write_predictions_csv(path, outputs: dict, vocabularies: dict | None = None) -> list:
    """Write ``outputs`` as a CSV (atomically); returns the column names."""
    columns = prediction_columns(outputs, vocabularies)
    names = list(columns)
    rows = zip(*(columns[n] for n in names))
    with atomic_write(path, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(names)
        for row in rows:
            writer.writerow([v if isinstance(v, str) else repr(float(v)) for v in row])
    return names


# -- a first look at a table (graphspec init) -------------------------------------------
def profile_columns(path, max_rows: int = 100_000) -> list:
    """Per column: name, numeric (every sampled cell a finite number), integer-valued,
    distinct values (up to 1000 counted), rows sampled. Reads at most ``max_rows``."""
    path = os.fspath(path)
    _check_file(path)
    kind = table_kind(path)
    if kind is None:
        raise InputError(f"'{path}' is an .npz/.npy array file, not a CSV or Parquet table")
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError(f"{path}: reading Parquet needs pyarrow: pip install "
                             "'graphspec[tabular]'") from None
        table = pq.read_table(path).slice(0, max_rows)
        header = table.column_names
        cells = {c: [str(v) for v in table.column(c).to_pylist()] for c in header}
    else:
        header = _csv_header(path)
        cells = {c: [] for c in header}
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if len(row) == len(header):
                    for c, v in zip(header, row):
                        cells[c].append(v)
                if len(cells[header[0]]) >= max_rows:
                    break
    profile = []
    for name in header:
        values = cells[name]
        try:
            numbers = np.fromiter(map(float, values), np.float64, len(values))
            numeric = bool(len(values)) and bool(np.all(np.isfinite(numbers)))
        except ValueError:
            numbers, numeric = None, False
        distinct = set()
        for v in values:
            distinct.add(v)
            if len(distinct) > 1000:
                break
        profile.append({"name": name, "numeric": numeric, "rows": len(values),
                        "integer": numeric and bool(np.all(numbers == np.round(numbers))),
                        "min": float(numbers.min()) if numeric else None,
                        "max": float(numbers.max()) if numeric else None,
                        "distinct": len(distinct)})
    return profile
