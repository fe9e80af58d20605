"""The one executor: run a compiled model on feeds.

Predicting, a training step, evaluating and ``inspect-nodes`` all run a model the same
way: a :class:`~graphspec.layers.base.CallContext` (training flag, random generator,
frozen layers, collected activity penalties), the feeds wrapped as Variables in input
order, the tape on or off, and then the model's node loop (``Model.run``, which a
sub-model called as a layer runs too). This module is that boilerplate, once, and the
per-batch function an engine maps over chunks of rows (:func:`predict_batches` takes
any dict of array-likes with ``shape`` and slicing, e.g. ``np.memmap``, and yields one
dict of outputs per batch, so a caller can stream them).

Non-finite outputs are an error that names the first node that produced a non-finite
value (the place to look with ``graphspec inspect-nodes``), unless the caller allows
them.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

from ..autodiff import Variable, recording
from ..errors import InputError
from ..io.arrays import check_inputs, check_shape
from ..layers.base import CallContext
from ..layers.simple_rnn import stateful_layers
from .process import tune_allocator


def context(model, *, training: bool = False, rng=None, seed: int | None = None,
            frozen=frozenset(), collect_activity: bool = False) -> CallContext:
    """The call context of one run: ``rng`` if given, else the graph's generator (a
    fresh one for an explicit ``seed``)."""
    if rng is None:
        graph = getattr(model, "graph", None)
        rng = graph.rng(seed) if graph is not None else np.random.default_rng(seed)
    return CallContext(training=training, rng=rng, frozen=frozen,
                       activity=[] if collect_activity else None)


def run(model, feeds, ctx: CallContext | None = None, *, training: bool = False, rng=None,
        record: bool = False, with_masks: bool = False):
    """Every tensor value of one run of ``model``, indexed by ``tensor.slot``.

    ``feeds``: arrays (or Variables) keyed by input name, or a list in input order,
    already checked (:func:`graphspec.io.arrays.check_inputs`). ``record`` keeps the
    tape for a backward pass. A caller that needs the state updates or activity
    penalties of the run passes its own ``ctx``. ``with_masks``: return ``(values,
    masks)``, the masks (boolean arrays or None) also indexed by slot (a loss on an
    output that carries a mask counts its unmasked positions only, as in Keras).
    """
    tune_allocator()
    if ctx is None:
        ctx = context(model, training=training, rng=rng)
    if isinstance(feeds, dict):
        feeds = [feeds[name] for name in model.input_names]
    feeds = [f if isinstance(f, Variable) else Variable(f) for f in feeds]
    with recording(record):
        if with_masks:
            return model.run_with_masks(feeds, ctx)
        return model.run(feeds, ctx)


def outputs(model, values) -> dict:
    """Output arrays keyed by output name, from a run's values."""
    return {t.name: values[t.slot].data for t in model.outputs}


def _finite(value) -> bool:
    data = value.data if isinstance(value, Variable) else value
    return data is None or bool(np.isfinite(data).all())


def first_nonfinite_node(model, values):
    """``(node, tensor)`` of the first call, in execution order, whose output holds NaN
    or Inf; None if every output is finite."""
    for node in model.nodes:
        for tensor in node.output_tensors:
            if not _finite(values[tensor.slot]):
                return node, tensor
    return None


def check_finite_outputs(model, values, where: str = "") -> None:
    """Refuse non-finite outputs, naming the node that first produced a non-finite value.

    Cheap when all is well: only the outputs are scanned; the nodes are searched only
    once an output is bad."""
    bad = [t.name for t in model.outputs if not _finite(values[t.slot])]
    if not bad:
        return
    found = first_nonfinite_node(model, values)
    origin = ""
    if found is not None:
        node, tensor = found
        origin = (f"; the first non-finite value comes from layer '{node.layer.name}' "
                  f"({node.layer.TYPE}, node {node.node_index}) -> tensor '{tensor.name}'")
    raise InputError(f"model '{model.name}': output {', '.join(repr(b) for b in bad)} "
                     f"holds NaN or Inf{where}{origin}; see each node's statistics with "
                     "`graphspec inspect-nodes SPEC --input NAME=FILE.npy`, or pass "
                     "--allow-nonfinite (allow_nonfinite=True) to accept them")


def batch_rows(size: int, batch_size: int | None) -> Iterator[slice]:
    """Row slices of ``batch_size`` (all rows at once if None); one empty slice for 0."""
    step = size if not batch_size else int(batch_size)
    for start in range(0, max(size, 1), max(step, 1)):
        yield slice(start, min(start + step, size))


def predict_batches(model, arrays: dict, batch_size: int | None = None, *,
                    seed: int | None = None, rng=None, allow_nonfinite: bool = False,
                    offset: int = 0) -> Iterator[dict]:
    """Outputs by name, one dict per batch of rows, in order.

    ``arrays``: input arrays (or array-likes with ``shape`` and slicing) keyed by input
    name, all with the same number of rows. Each batch is checked when it is read
    (dtype, shape, range, finiteness after the cast; errors give the row in the whole
    array), so a memory-mapped input is never read whole. ``offset``: the row number of
    ``arrays``' first row in a larger whole (an engine's chunk), for error messages.
    """
    arrays = _by_name(model, arrays)
    for tensor in model.inputs:      # shapes first: no rows are read for a wrong rank
        check_shape(tensor, arrays[tensor.name].shape, model.name)
    sizes = {name: int(a.shape[0]) for name, a in arrays.items()}
    size = next(iter(sizes.values()))
    if any(s != size for s in sizes.values()):
        raise InputError(f"model '{model.name}': inputs have different numbers of rows "
                         f"({', '.join(f'{k}: {v}' for k, v in sizes.items())})")
    check_stateful_batches(model, size, batch_size)
    ctx = context(model, rng=rng, seed=seed)
    for rows in batch_rows(size, batch_size):
        first = offset + rows.start
        feeds = check_inputs(model, {k: a[rows] for k, a in arrays.items()}, offset=first)
        values = run(model, feeds, ctx)
        if not allow_nonfinite:
            where = f" (rows {first}..{offset + rows.stop - 1})" \
                if rows.stop > rows.start else ""
            check_finite_outputs(model, values, where)
        yield outputs(model, values)


def check_stateful_batches(model, size: int, batch_size: int | None) -> None:
    """A stateful RNN carries its state from batch to batch, one sequence per row, so
    every batch must have the same size: refuse a last, shorter batch before any work."""
    if not batch_size or size % int(batch_size) == 0 or size < int(batch_size):
        return
    stateful = [layer.name for layer in stateful_layers(model)]
    if stateful:
        raise InputError(
            f"model '{model.name}' has stateful layers ({', '.join(stateful)}): each batch "
            f"continues the sequences of the one before, so every batch needs the same "
            f"size, but {size} rows do not split into batches of {batch_size}; give a "
            "batch size that divides the rows (or the rows at once)")


def predict(model, inputs, batch_size: int | None = None, seed: int | None = None,
            allow_nonfinite: bool = False) -> dict:
    """Outputs keyed by output name for inputs keyed by input name (a bare array for a
    single-input model); batches are run in turn and concatenated."""
    chunks = list(predict_batches(model, inputs, batch_size, seed=seed,
                                  allow_nonfinite=allow_nonfinite))
    if len(chunks) == 1:
        return chunks[0]
    return {name: np.concatenate([c[name] for c in chunks]) for name in model.output_names}


def _by_name(model, inputs) -> dict:
    if not isinstance(inputs, dict):
        if len(model.inputs) != 1:
            raise InputError(f"model '{model.name}' has inputs {model.input_names}: "
                             "pass a dict keyed by input name")
        inputs = {model.input_names[0]: inputs}
    missing = [n for n in model.input_names if n not in inputs]
    extra = [n for n in inputs if n not in model.input_names]
    if missing or extra:
        raise InputError(f"model '{model.name}' expects inputs {model.input_names}; "
                         f"missing {missing}, unexpected {extra}")
    out = {}
    for name in model.input_names:
        value = inputs[name]
        out[name] = value if hasattr(value, "shape") and hasattr(value, "__getitem__") \
            else np.asarray(value)
    return out


# -- node statistics (inspect-nodes --input) ------------------------------------------------
def _stats(value) -> dict:
    data = np.asarray(value, dtype=np.float64)
    return {"shape": list(value.shape), "mean": float(data.mean()), "std": float(data.std()),
            "min": float(data.min()) + 0.0, "max": float(data.max()) + 0.0}


def node_statistics(model, inputs, seed: int | None = None) -> dict:
    """Run ``model`` once on ``inputs``; shape, mean, std, min and max of every tensor,
    keyed by ``id(symbolic tensor)``. Non-finite values are shown, not refused (this is
    where one looks for them); 0-row inputs are refused (no statistics exist)."""
    arrays = _by_name(model, inputs)
    for name, array in arrays.items():
        if len(array.shape) and array.shape[0] == 0:
            raise InputError(f"input '{name}' has 0 rows (shape {tuple(array.shape)}): "
                             "node statistics need at least one sample")
    values, masks = run(model, check_inputs(model, arrays), context(model, seed=seed),
                        with_masks=True)
    tensors = list(model.inputs) + [t for node in model.nodes for t in node.output_tensors]
    stats = {id(t): _stats(values[t.slot].data) for t in tensors}
    for tensor in tensors:      # the share of masked steps, where a mask travels
        if masks[tensor.slot] is not None:
            stats[id(tensor)]["masked"] = float(1.0 - np.mean(masks[tensor.slot]))
    return stats
