"""Reading the cells of a CSV or Parquet file, every one checked where it enters.

Readers (measured on a 1,000,000-row, 10-column CSV of 85 MB, 2 shared cores: the csv
module 5.4 s, numpy.loadtxt 1.7 s, pyarrow.csv 1.1 s): pyarrow when it is installed
(the ``graphspec[tabular]`` extra), numpy.loadtxt for all-numeric columns without it,
and the csv module otherwise. The csv module is also the *reference* reader: whenever a
fast reader refuses the file or finds a bad value, the file is read again by the csv
module, which decides, so every install accepts the same files and locates errors
exactly (line, data row, column). pyarrow is imported only inside these functions.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from ..errors import InputError
from .files import MAX_ARRAY_FILE_BYTES

_PARQUET_MAGIC = b"PAR1"
_BINARY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")


# -- what a file is ------------------------------------------------------------------
def _head(path, n=4) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(n)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None


def table_kind(path) -> str | None:
    """"parquet", "csv" (UTF-8 text), or None for anything else: .npz/.npy and binary
    garbage go to the array loader, which says what it expected (by content, not name)."""
    head = _head(path, 8192)
    if head.startswith(_PARQUET_MAGIC):
        return "parquet"
    if head[:4] in _BINARY_MAGIC[:2] or head[:6] == _BINARY_MAGIC[2] or b"\0" in head:
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:       # not just a character cut at the 8 KiB mark
            return None
    return "csv"


def check_table_file(path) -> None:
    if not os.path.isfile(path):
        what = "a directory" if os.path.isdir(path) else \
            "not a regular file" if os.path.exists(path) else None
        raise InputError(f"cannot read '{path}': " + (f"it is {what}" if what
                                                      else "no such file"))
    if os.path.getsize(path) > MAX_ARRAY_FILE_BYTES:
        raise InputError(f"'{path}' is larger than {MAX_ARRAY_FILE_BYTES >> 30} GiB")


# -- reading -----------------------------------------------------------------------------
def located(path, line, row, column, problem) -> InputError:
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
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None
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
                raise located(path, line_of(row), row, column, problem) from None
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
        raise located(path, line_of(row), row, column, problem)
    return cast


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
                               comments=None, encoding="utf-8-sig")   # '#' is data here
    except (ValueError, IndexError, UnicodeDecodeError):
        return None
    if not np.all(np.isfinite(array)):
        return None
    return {c: array[:, i] for i, c in enumerate(numeric)}


def _read_csv(path, header, numeric, text, dtype) -> tuple:
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
    return columns, raw, line_of


def _pyarrow(path):
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow: pip install "
                         "'graphspec[tabular]'") from None
    return pyarrow, pyarrow.parquet


def _parquet_header(path) -> list:
    pa, pq = _pyarrow(path)
    try:
        return list(pq.read_schema(path).names)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read '{path}' as Parquet: {str(exc)[:160]}") from None


def _read_parquet(path, numeric, text, dtype) -> tuple:
    pa, pq = _pyarrow(path)
    needed, categorical = numeric + text, set(text)
    try:
        table = pq.read_table(path, columns=needed)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read '{path}' as Parquet: {str(exc)[:160]}") from None
    columns, raw = {}, {}
    for name in needed:
        column = table.column(name)
        if column.null_count:
            row = int(np.argmax(column.is_null().to_numpy(zero_copy_only=False))) + 1
            raise located(path, 0, row, name, "missing value (null)")
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
    return columns, raw, lambda row: 0




# -- the two entry points ----------------------------------------------------------------
def header_of(path, kind: str) -> list:
    """The column names of a "csv" or "parquet" file."""
    return _parquet_header(path) if kind == "parquet" else _csv_header(path)


def read_columns(path, kind: str, header: list, numeric: list, text: list,
                 dtype: str) -> tuple:
    """(numbers by column, as ``dtype`` and finite; text cells by column; line_of(row)).

    ``line_of`` turns a 1-based data row into its line (0 for Parquet, which has none)."""
    if kind == "parquet":
        return _read_parquet(path, numeric, text, dtype)
    return _read_csv(path, header, numeric, text, dtype)


# -- a first look at a table (graphspec init) -------------------------------------------
def _sample_csv(path, max_rows) -> tuple:
    header = _csv_header(path)
    cells = {c: [] for c in header}
    stores = [cells[c] for c in header]
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            next(reader)
            for row in reader:
                if len(row) == len(header):
                    for store, value in zip(stores, row):
                        store.append(value)
                if len(stores[0]) >= max_rows:
                    break
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise InputError(f"{path}, line {reader.line_num}: {exc}") from None
    return header, cells


def _sample_parquet(path, max_rows) -> tuple:
    """Numeric Parquet columns as numbers (nulls as empty cells: missing), others as text."""
    pa, pq = _pyarrow(path)
    try:
        batch = next(pq.ParquetFile(path).iter_batches(batch_size=max_rows), None)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read '{path}' as Parquet: {str(exc)[:160]}") from None
    header = list(batch.schema.names) if batch is not None else _parquet_header(path)
    cells = {}
    for name in header:
        column = batch.column(name) if batch is not None else pa.array([])
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or \
                pa.types.is_boolean(kind) or pa.types.is_decimal(kind):
            cells[name] = [repr(float(v)) if v is not None else ""
                           for v in column.to_pylist()]
        else:
            cells[name] = ["" if v is None else str(v) for v in column.to_pylist()]
    return header, cells


def profile_columns(path, max_rows: int = 100_000) -> list:
    """Per column: name, numeric (every sampled cell a finite number), missing (a column
    of finite numbers but for that many empty cells; first_missing: the first one's data
    row), integer-valued, min, max (of the numbers), distinct values (up to 1000 counted),
    rows sampled. Reads at most ``max_rows``."""
    path = os.fspath(path)
    check_table_file(path)
    kind = table_kind(path)
    if kind is None:
        raise InputError(f"'{path}' is neither a CSV (UTF-8 text) nor a Parquet table")
    header, cells = (_sample_parquet if kind == "parquet" else _sample_csv)(path, max_rows)
    profile = []
    for name in header:
        values = cells[name]
        blank = [i for i, v in enumerate(values) if not v.strip()]
        filled = [v for v in values if v.strip()] if blank else values
        try:
            numbers = np.fromiter(map(float, filled), np.float64, len(filled))
            finite = bool(len(filled)) and bool(np.all(np.isfinite(numbers)))
        except ValueError:
            numbers, finite = None, False
        numeric = finite and not blank
        distinct = set()
        for v in values:
            distinct.add(v)
            if len(distinct) > 1000:
                break
        profile.append({"name": name, "numeric": numeric, "rows": len(values),
                        # numbers but for empty cells: how many, and the first data row
                        "missing": len(blank) if finite else 0,
                        "first_missing": blank[0] + 1 if finite and blank else None,
                        "integer": finite and bool(np.all(numbers == np.round(numbers))),
                        "min": float(numbers.min()) if finite else None,
                        "max": float(numbers.max()) if finite else None,
                        "distinct": len(distinct)})
    return profile
