"""Training curves from ``graphspec train --history H.json`` files.

A history is a JSON object of metric name -> one number per epoch (``loss``,
``val_loss``, ``accuracy``...). Each metric gets its own panel, with its ``val_``
counterpart on the same axes (dashed); several files are overlaid, one colour per file,
named in the legend. A history file is untrusted data: it is read as JSON, never run,
and anything but lists of numbers (or null, drawn as a gap) is refused with one line.

matplotlib is imported only inside :func:`plot_history`, so ``graphspec --help`` never
pays for it, and drawn on a figure of its own with the Agg canvas (no pyplot, no global
backend switch).
"""
from __future__ import annotations

import io
import json
import math
import os

from ..errors import InputError
from ..io.files import atomic_write
from .scene import visible

MAX_HISTORY_BYTES = 64 << 20
MAX_METRICS = 256
MAX_EPOCHS = 1_000_000
MAX_PANELS = 16
FORMATS = ("png", "svg", "pdf")
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
               int: "a number", float: "a number", type(None): "null"}


def _name(text, limit: int = 60) -> str:
    text = visible(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def load_history(path) -> dict:
    """``{metric: [float, ...]}`` of one history file; null/NaN/Inf entries become NaN."""
    path = os.fspath(path)
    raw = _read(path)
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=lambda _: math.nan)
    except UnicodeDecodeError:
        raise InputError(f"'{path}' is not UTF-8 text; expected a JSON history "
                         "(graphspec train --history H.json writes one)") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"'{path}' is not valid JSON: {str(exc)[:160]}") from None
    if not isinstance(data, dict):
        raise InputError(f"'{path}' holds {_JSON_TYPES.get(type(data), 'a value')}; a history "
                         "is a JSON object of metric name -> list of numbers per epoch")
    if not data:
        raise InputError(f"'{path}' has no metrics (an empty JSON object)")
    if len(data) > MAX_METRICS:
        raise InputError(f"'{path}' has {len(data)} metrics, more than the limit of "
                         f"{MAX_METRICS}; is it really a training history?")
    history = {key: _series(path, key, values) for key, values in data.items()}
    if not any(history.values()):
        raise InputError(f"'{path}' has no epochs: every metric is an empty list")
    return history


def _read(path: str) -> bytes:
    try:
        if not os.path.isfile(path):
            what = "no such file" if not os.path.exists(path) else "not a regular file"
            raise InputError(f"cannot read '{path}': {what}")
        if os.path.getsize(path) > MAX_HISTORY_BYTES:
            raise InputError(f"'{path}' is larger than {MAX_HISTORY_BYTES >> 20} MiB; a "
                             "training history is far smaller")
        with open(path, "rb") as handle:
            return handle.read(MAX_HISTORY_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read '{path}': {exc.strerror or exc}") from None


def _series(path: str, key: str, values) -> list:
    where = f"'{path}': metric '{_name(key)}'"
    if not isinstance(values, list):
        raise InputError(f"{where} is {_JSON_TYPES.get(type(values), 'a value')}, expected a "
                         "list of numbers (one per epoch)")
    if len(values) > MAX_EPOCHS:
        raise InputError(f"{where} has {len(values)} entries, more than the limit of "
                         f"{MAX_EPOCHS} epochs")
    series = []
    for epoch, value in enumerate(values, 1):
        if value is None:
            series.append(math.nan)
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where} epoch {epoch} is "
                             f"{_JSON_TYPES.get(type(value), 'a value')}, expected a number "
                             "or null")
        else:
            try:
                number = float(value)
            except OverflowError:
                number = math.nan        # an integer too large for a float: no point to draw
            series.append(number if math.isfinite(number) else math.nan)
    return series


def history_format(output, fmt: str | None = None) -> str:
    if fmt is None:
        fmt = os.path.splitext(os.fspath(output))[1].lower().lstrip(".")
        if fmt not in FORMATS:
            raise InputError(f"cannot tell the image format from '{output}': name the file "
                             ".png, .svg or .pdf, or pass --format")
    if fmt not in FORMATS:
        raise InputError(f"unknown image format '{fmt}'; choose png, svg or pdf")
    return fmt


def panels(histories: list, metrics=()) -> list:
    """Panel names: each metric once (``val_x`` joins ``x``), ``loss`` first."""
    names = []
    for _, history in histories:
        for key in history:
            base = key[4:] if key.startswith("val_") and len(key) > 4 else key
            if base not in names:
                names.append(base)
    names.sort(key=lambda n: n != "loss")          # stable: otherwise first-seen order
    if metrics:
        # --metric val_loss means the loss panel (val_loss is drawn on it).
        metrics = [m[4:] if m.startswith("val_") and m[4:] in names else m for m in metrics]
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise InputError(f"no metric {', '.join(repr(_name(m)) for m in unknown)} in the "
                             f"histories (metrics: {', '.join(_name(n) for n in names)})")
        names = [n for n in names if n in metrics]
    if len(names) > MAX_PANELS:
        raise InputError(f"the histories have {len(names)} metrics; plot-history draws at most "
                         f"{MAX_PANELS} panels: choose some with --metric NAME")
    return names


def labels_for(paths) -> list:
    """Legend names: each file's base name, or the path as given where names collide."""
    bases = [os.path.basename(os.fspath(p)) or os.fspath(p) for p in paths]
    return [b if bases.count(b) == 1 else os.fspath(p) for b, p in zip(bases, paths)]


def plot_history(paths, output, fmt: str | None = None, metrics=(), log_y: bool = False) -> str:
    """Draw the curves of the history files ``paths`` to ``output``; returns the format."""
    fmt = history_format(output, fmt)
    paths = list(paths)
    if not paths:
        raise InputError("plot-history needs at least one history file")
    histories = [(label, load_history(p)) for label, p in zip(labels_for(paths), paths)]
    figure = draw(histories, panels(histories, metrics), log_y)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=110)
    with atomic_write(output, "wb") as handle:
        handle.write(buffer.getvalue())
    return fmt


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise InputError("plot-history needs matplotlib: pip install 'graphspec[plot]'") \
            from None
    return Figure, FigureCanvasAgg, MaxNLocator


def _text(value) -> str:
    """Plain text for matplotlib: '$' would start mathtext, which parses (and can choke
    on) whatever a file name or metric name holds."""
    return _name(value).replace("$", r"\$")


def draw(histories: list, names: list, log_y: bool = False):
    """A matplotlib Figure: one panel per metric name, every history overlaid."""
    Figure, FigureCanvasAgg, MaxNLocator = _matplotlib()
    columns = 1 if len(names) == 1 else 2
    rows = -(-len(names) // columns)
    figure = Figure(figsize=(6.4 * columns, 3.8 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    for ax, name in zip(axes, names):
        _panel(ax, name, histories, log_y)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(names):]:
        ax.set_visible(False)
    return figure


def _panel(ax, name: str, histories: list, log_y: bool) -> None:
    several = len(histories) > 1
    positive = True
    for index, (label, history) in enumerate(histories):
        colour = f"C{index % 10}"
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            values = history.get(key)
            if not values:
                continue
            epochs = range(1, len(values) + 1)
            marker = "o" if len(values) <= 40 else None
            text = f"{_text(label)}: {_text(key)}" if several else _text(key)
            ax.plot(epochs, values, style, color=colour, marker=marker, markersize=3.5,
                    linewidth=1.6, label=text)
            positive &= all(v > 0 for v in values if not math.isnan(v))
    ax.set_title(_text(name))
    ax.set_xlabel("epoch")
    ax.set_ylabel(_text(name))
    ax.grid(True, alpha=0.3)
    if log_y and positive:
        ax.set_yscale("log")
    if ax.lines:
        ax.legend(fontsize=8)
