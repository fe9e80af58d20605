"""Every array from outside, checked once: inputs, targets, weights, checkpoint arrays.

The rules, in order, for an array the user (or a file) hands in:

1. A real numeric dtype: bool, integer or floating point. Complex (the imaginary part
   would be lost), datetime64/timedelta64 (numbers only by accident), object, string
   and structured arrays are refused with the array's name.
2. Cast to the dtype the model computes in, THEN checked: finiteness after the cast, so
   a float64 1e300 that becomes float32 inf is refused, naming the array and the first
   offending position (rows counted in the whole array when a batch is checked).
3. Integer index inputs (an Embedding's) are checked BEFORE the cast: non-integral or
   out-of-range values are refused with the first position, the value and the valid
   range (an int64 2**32+5 must not wrap to 5; a float 1e20 must not become
   -2147483648).

Nothing here knows a layer: a model describes its inputs (``name``, ``shape``, ``dtype``)
and, through ``index_limits()``, the valid range of its integer inputs.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError

_REFUSED_KINDS = {"c": "complex numbers", "M": "datetimes (datetime64)",
                  "m": "time deltas (timedelta64)", "O": "Python objects",
                  "S": "bytes", "U": "strings", "V": "structured records"}


def shapes_compatible(expected: tuple, got: tuple) -> bool:
    """Equal rank and equal dims wherever both are known (None matches anything)."""
    return len(expected) == len(got) and all(
        a is None or b is None or a == b for a, b in zip(expected, got))


def format_shape(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def real_array(value, what: str, noun: str = "a numeric array") -> np.ndarray:
    """``value`` as an ndarray of bool, integer or floating dtype; refused otherwise."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    kind = array.dtype.kind
    if kind not in "biuf":
        holds = _REFUSED_KINDS.get(kind, "other values")
        raise InputError(f"{what} must be {noun} of real numbers (bool, integer or "
                         f"floating point), got {holds} (dtype {array.dtype})")
    return array


def _first(mask: np.ndarray) -> tuple:
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))


def _show(value) -> str:
    """A numpy scalar as the number it is (``1e+300``, ``nan``, ``4294967301``)."""
    return str(value) if isinstance(value, np.generic) else repr(value)


def _where(position: tuple, offset: int) -> str:
    if not position:
        return "(scalar)"
    position = (position[0] + offset,) + position[1:]
    return f"row {position[0]}" + (f", position {position}" if len(position) > 1 else "")


def as_float(value, dtype, what: str, offset: int = 0) -> np.ndarray:
    """A real array cast to the floating ``dtype``; NaN/Inf after the cast refused."""
    array = real_array(value, what)
    with np.errstate(over="ignore", invalid="ignore"):
        out = array.astype(dtype, copy=False)
    if out.size and out.dtype.kind == "f":
        finite = np.isfinite(out)
        if not finite.all():
            pos = _first(~finite)
            original = array[pos] if array.ndim else array[()]
            overflow = bool(np.isfinite(original))
            why = (f" after the cast to {np.dtype(dtype).name} ({_show(original)} overflows "
                   "it)" if overflow else f" ({_show(original)})")
            raise InputError(f"{what} contains NaN or Inf{why} at {_where(pos, offset)}; "
                             "graphspec needs finite numbers")
    return out


def as_indices(value, dtype, what: str, limit: tuple | None = None,
               offset: int = 0) -> np.ndarray:
    """A real array of integral values cast to the integer ``dtype``, checked first.

    ``limit``: ``(n, reason)`` when the values index a table of ``n`` rows (an
    Embedding's ``input_dim``): the range is then ``[0, n - 1]``; else the range of
    ``dtype``."""
    array = real_array(value, what)
    info = np.iinfo(dtype)
    low, high = (0, limit[0] - 1) if limit else (info.min, info.max)
    reason = f" ({limit[1]})" if limit else f" (the range of {np.dtype(dtype).name})"
    if array.size:
        if array.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(array) | (array != np.floor(array))
            if bad.any():
                pos = _first(bad)
                raise InputError(f"{what} holds {_show(array[pos])} at {_where(pos, offset)}: "
                                 "a non-integer value where integer indices are needed "
                                 f"(valid: {low}..{high}{reason})")
        with np.errstate(invalid="ignore"):
            bad = (array < low) | (array > high)
        if bad.any():
            pos = _first(bad)
            raise InputError(f"{what} holds {_show(array[pos])} at {_where(pos, offset)}: "
                             "out of "
                             f"range; valid indices are {low}..{high}{reason}")
    return array.astype(dtype, copy=False)


def check_shape(tensor, shape, model_name: str) -> None:
    """The array's shape fits the input (batch first, None matches any size)."""
    got = (None,) + tuple(shape[1:]) if len(shape) else ()
    if not shapes_compatible(tensor.shape, got):
        raise InputError(f"input '{tensor.name}' of model '{model_name}' expects shape "
                         f"{format_shape(tensor.shape)} (batch first), got an array of shape "
                         f"{tuple(shape)}")


def check_input(tensor, value, model_name: str, limit=None, offset: int = 0) -> np.ndarray:
    """One model input: dtype, shape (batch first), then values after the cast."""
    what = f"input '{tensor.name}' of model '{model_name}'"
    array = real_array(value, what)
    check_shape(tensor, array.shape, model_name)
    if np.dtype(tensor.dtype).kind in "iu":
        return as_indices(array, tensor.dtype, what, limit, offset)
    return as_float(array, tensor.dtype, what, offset)


def check_inputs(model, inputs, offset: int = 0) -> dict:
    """Arrays keyed by input name (model order), checked and cast; clear errors otherwise.

    ``inputs``: a dict keyed by input name, or a bare array for a single-input model.
    ``offset``: the row of the whole array where these rows start (positions in errors).
    """
    if not isinstance(inputs, dict):
        if len(model.inputs) != 1:
            raise InputError(f"model '{model.name}' has inputs {model.input_names}: "
                             "pass a dict keyed by input name")
        inputs = {model.inputs[0].name: inputs}
    missing = [n for n in model.input_names if n not in inputs]
    extra = [n for n in inputs if n not in model.input_names]
    if missing or extra:
        raise InputError(f"model '{model.name}' expects inputs {model.input_names}; "
                         f"missing {missing}, unexpected {extra}")
    limits = model.index_limits() if hasattr(model, "index_limits") else {}
    arrays, batch = {}, None
    for tensor in model.inputs:
        array = check_input(tensor, inputs[tensor.name], model.name,
                            limits.get(tensor.name), offset)
        size = array.shape[0] if array.ndim else 0
        if batch is not None and size != batch[1]:
            raise InputError(f"model '{model.name}': inputs have different numbers of rows "
                             f"({batch[0]}: {batch[1]}, {tensor.name}: {size})")
        batch = batch or (tensor.name, size)
        arrays[tensor.name] = array
    return arrays


def check_target(name: str, value, rows: int, dtype, source: str = "") -> np.ndarray:
    """A training target: real, one row per sample; floats cast to ``dtype`` and then
    checked finite (integer class ids are kept as they are, for sparse losses)."""
    what = f"target '{name}'{source}"
    array = real_array(value, what, "numeric: an array")
    if array.shape[:1] != (rows,):
        got = array.shape[0] if array.ndim else 0
        raise InputError(f"{what} has {got} samples (shape {tuple(array.shape)}), the "
                         f"inputs have {rows}")
    if array.dtype.kind == "f":
        return as_float(array, dtype, what)
    return array


def check_weight(key: str, value, shape: tuple, dtype, source: str = "weights") -> str | None:
    """Why the weight array ``value`` cannot be loaded as ``key``, or None if it can."""
    array = np.asarray(value)
    if tuple(array.shape) != tuple(shape):
        return f"'{key}' has shape {tuple(array.shape)}, the spec needs {tuple(shape)}"
    if array.dtype.kind != "f":
        return f"'{key}' has dtype {array.dtype}, expected floating point"
    try:
        as_float(array, dtype, f"'{key}'")
    except InputError as exc:
        return str(exc)
    return None
