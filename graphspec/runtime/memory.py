"""How much memory running or training a model takes, known before any weight exists.

The compiled graph fixes every weight shape and every tensor shape (batch axis aside),
so the bytes a command will need can be added up before anything is allocated, and a
model that cannot fit is refused with its size instead of failing half-way with an
``out of memory`` after the machine has started swapping.

The estimate is deliberately simple and errs on the large side:

- weights: parameters x dtype size; training adds one gradient per trainable weight
  and the optimizer's slots (SGD momentum 1, RMSprop 1, Adam 2);
- activations: the executor keeps every tensor of a run (inputs and each node's
  outputs, sub-models expanded), so per sample it is the sum of their sizes, plus a
  convolution's im2col patches (the largest one for inference, all of them for
  training); training keeps them on the tape and adds their gradients and the ops'
  intermediates (x3). Unknown non-batch dimensions (a variable sequence length) count
  as 1; the internals of wrappers (TimeDistributed, Bidirectional) are not counted.

This module reads the compiled graph only (``graph/``); nothing above it.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

TRAINING_ACTIVATION_FACTOR = 3
# Slots per weight when the optimizer is named rather than given (SGD counted with
# momentum: the estimate errs on the large side).
OPTIMIZER_SLOTS = {"sgd": 1, "rmsprop": 1, "adam": 2}


@dataclass(frozen=True)
class LayerBytes:
    name: str
    weights: int                    # bytes, with gradients and slots when training
    activations_per_sample: int     # bytes of this layer's outputs per sample


@dataclass(frozen=True)
class MemoryEstimate:
    """What one command needs for ``model``; ``total(batch)`` is the number to compare."""
    model: str
    batch_size: int
    weights_bytes: int              # the model's own weights (parameters x dtype size)
    weights_total_bytes: int        # + other weights of the graph, gradients and slots
    activation_bytes_per_sample: int   # one forward pass, every tensor kept
    activation_factor: int          # 1 inference, 3 training
    layers: tuple                   # LayerBytes, one per layer
    other_models_bytes: int = 0     # weights of the spec's layers this model does not use

    def activations(self, batch_size: int | None = None) -> int:
        batch = self.batch_size if batch_size is None else batch_size
        return self.activation_bytes_per_sample * self.activation_factor * batch

    def total(self, batch_size: int | None = None) -> int:
        return self.weights_total_bytes + self.activations(batch_size)

    def largest_layers(self, n: int = 3, batch_size: int | None = None) -> list:
        """``[(layer name, bytes)]``, largest first: weights plus outputs at the batch size."""
        batch = self.batch_size if batch_size is None else batch_size
        sized = [(layer.name, layer.weights
                  + layer.activations_per_sample * self.activation_factor * batch)
                 for layer in self.layers]
        return sorted(sized, key=lambda item: -item[1])[:n]

    def describe(self) -> str:
        """``weights 1.2 MiB, activations 3.4 KiB per sample`` (what build prints)."""
        return (f"weights {format_bytes(self.weights_bytes)}, activations "
                f"{format_bytes(self.activation_bytes_per_sample)} per sample")


# -- counting --------------------------------------------------------------------------
def _per_sample(tensor) -> int:
    dims = [1 if d is None else int(d) for d in tuple(tensor.shape)[1:]]
    return math.prod(dims) * np.dtype(tensor.dtype).itemsize


def _weight_bytes(layer, dtype) -> tuple:
    """(all, trainable) bytes of the layer's own weights."""
    size = np.dtype(dtype).itemsize
    everything = trainable = 0
    for spec in layer.weight_shapes.values():
        n = math.prod(spec.shape) * size
        everything += n
        if spec.trainable and getattr(layer, "trainable", True):
            trainable += n
    return everything, trainable


def _is_model(layer) -> bool:
    return hasattr(layer, "nodes") and hasattr(layer, "inputs")


def _workspace(node, dtype) -> int:
    """Bytes per sample of a convolution's im2col patch matrix: every output position
    times the kernel's receptive field (a kernel of rank >= 3 is a convolution's)."""
    spec = node.layer.weight_shapes.get("kernel") if hasattr(node.layer, "weight_shapes") \
        else None
    if spec is None or len(spec.shape) < 3 or not node.output_tensors:
        return 0
    positions = math.prod(1 if d is None else int(d)
                          for d in tuple(node.output_tensors[0].shape)[1:-1])
    return positions * math.prod(spec.shape[:-1]) * np.dtype(dtype).itemsize


def _outputs_by_layer(model, into: dict, work: dict, dtype) -> None:
    """Bytes per sample of every node output (and convolution workspace), by layer
    name, sub-models expanded."""
    for node in model.nodes:
        out = sum(_per_sample(t) for t in node.output_tensors)
        into[node.layer.name] = into.get(node.layer.name, 0) + out
        work[node.layer.name] = work.get(node.layer.name, 0) + _workspace(node, dtype)
        if _is_model(node.layer):
            _outputs_by_layer(node.layer, into, work, dtype)


def _slots(optimizer) -> int:
    if optimizer is None:
        return OPTIMIZER_SLOTS["adam"]
    if isinstance(optimizer, str):
        return OPTIMIZER_SLOTS.get(optimizer.lower(), OPTIMIZER_SLOTS["adam"])
    return len(optimizer.slot_names())


def estimate(model, batch_size: int, training: bool = False, optimizer=None) -> MemoryEstimate:
    """The memory ``model`` needs at ``batch_size``, from shapes alone (no weights needed).

    ``optimizer`` is a name (``"adam"``) or an optimizer object with ``slot_names()``;
    it matters only when ``training``. Weights of the graph outside the model count
    too: :meth:`Graph.initialize` allocates every layer's weights.
    """
    graph = getattr(model, "graph", None)
    dtype = getattr(graph, "dtype", "float32")
    per_weight = 1 + ((1 + _slots(optimizer)) if training else 0)
    activations, work = {}, {}
    _outputs_by_layer(model, activations, work, dtype)
    # Inference frees each convolution's patches after its product: the largest one is
    # the peak. Training keeps them for the kernel's gradient: all of them, on the tape.
    if training:   # kept once (not tripled like the outputs and their gradients)
        activations = {name: size + work.get(name, 0) / TRAINING_ACTIVATION_FACTOR
                       for name, size in activations.items()}
    else:
        largest = max(work, key=work.get, default=None)
        if largest is not None:
            activations[largest] += work[largest]
    own = model.layers()
    rows, weights, total, others = [], 0, 0, 0
    for layer in own:
        everything, trainable = _weight_bytes(layer, dtype)
        extra = trainable * (per_weight - 1)
        weights += everything
        total += everything + extra
        rows.append(LayerBytes(layer.name, everything + extra,
                               math.ceil(activations.pop(layer.name, 0))))
    rows += [LayerBytes(name, 0, math.ceil(size)) for name, size in activations.items()]
    if graph is not None:
        # Graph.initialize allocates every layer of the spec, the other models' too: they
        # count, and they are listed, so the largest layers named are the ones to cut.
        mine = {id(layer) for layer in own}
        for layer in graph.layers.values():
            if id(layer) not in mine:
                everything = _weight_bytes(layer, dtype)[0]
                others += everything
                rows.append(LayerBytes(layer.name, everything, 0))
        total += others
    per_sample = math.ceil(sum(_per_sample(t) for t in model.inputs)
                           + sum(row.activations_per_sample for row in rows))
    return MemoryEstimate(model=model.name, batch_size=int(batch_size), weights_bytes=weights,
                          weights_total_bytes=total, activation_bytes_per_sample=per_sample,
                          activation_factor=TRAINING_ACTIVATION_FACTOR if training else 1,
                          layers=tuple(rows), other_models_bytes=others)


# -- the budget ------------------------------------------------------------------------
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``4G``, ``512M``, ``1.5GiB``, ``1000000`` -> bytes (K/M/G/T are powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise ValueError(f"'{text}' is not a size; write e.g. 4G, 512M or 1000000 (bytes)")
    value = float(match.group(1)) * _UNITS[match.group(2).upper()]
    if value < 1:
        raise ValueError(f"'{text}' is not a positive size")
    return int(value)


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"   # unreachable; keeps linters quiet


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left() -> int | None:
    """RLIMIT_AS minus the address space this process already maps (None: no limit)."""
    try:
        import resource
        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    except (ImportError, OSError, ValueError):
        return None
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            used = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(soft - used, 0)


def available(max_memory: int | None = None) -> tuple:
    """``(bytes, what it is)``: ``--max-memory`` if given, else the smaller of
    MemAvailable and the address-space limit left; ``(None, ...)`` if unknown."""
    if max_memory is not None:
        return int(max_memory), "--max-memory"
    found = [(n, what) for n, what in ((_meminfo_available(), "MemAvailable"),
                                       (_address_space_left(), "address-space limit left"))
             if n is not None]
    return min(found) if found else (None, "unknown")


class MemoryRefused(InputError):
    """The estimate does not fit the budget; raised before anything is allocated."""


def output_bytes_per_sample(model) -> int:
    """Bytes per sample of the model's outputs (what ``predict`` returns for every row)."""
    return sum(_per_sample(t) for t in model.outputs)


def check(est: MemoryEstimate, max_memory: int | None = None, extra: dict | None = None) -> None:
    """Refuse ``est`` when it exceeds the budget, with one line: the estimate, the
    budget, the three largest layers and the flag that lowers it. ``extra`` adds
    what else the command will hold, by what it is (``{"--data file": bytes}``)."""
    extra = {what: n for what, n in (extra or {}).items() if n}
    budget, source = available(max_memory)
    need = est.total() + sum(extra.values())
    if budget is None or need <= budget:
        return
    parts = [f"weights {format_bytes(est.weights_total_bytes)}"]
    if est.other_models_bytes:
        parts[0] += (f", of which {format_bytes(est.other_models_bytes)} in layers of the "
                     "spec's other models (all are allocated)")
    if est.batch_size:
        parts.append(f"activations {format_bytes(est.activations())} at batch size "
                     f"{est.batch_size}")
    parts += [f"{what} {format_bytes(n)}" for what, n in extra.items()]
    largest = ", ".join(f"{name} {format_bytes(size)}" for name, size in est.largest_layers(3))
    room = budget - est.weights_total_bytes - sum(extra.values())
    per_batch = est.activations(1)
    if est.batch_size and per_batch and room >= per_batch:
        hint = f"lower it with --batch-size {room // per_batch} or less"
    elif est.weights_total_bytes + per_batch > budget or not extra:
        hint = "no flag lowers the weights: use fewer or smaller layers (or --max-memory " \
               "if the budget is wrong)"
    else:
        hint = f"the {' and '.join(extra)} leave no room: use fewer rows or smaller files " \
               "(or --max-memory if the budget is wrong)"
    raise MemoryRefused(f"model '{est.model}' needs about {format_bytes(need)} "
                        f"({', '.join(parts)}), more than the {format_bytes(budget)} "
                        f"available ({source}); largest layers: {largest}; {hint}")
