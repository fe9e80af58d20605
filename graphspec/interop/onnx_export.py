"""ONNX export: one compiled model -> one ``onnx.ModelProto``, checked before it is built.

The walker here knows nothing about any single layer type. It

1. checks every call the model makes (through sub-models and wrappers) against the
   converter tables (``onnx_layers.LAYER_CONVERTERS`` keyed by layer TYPE, and
   ``onnx_functions`` for the functions of Lambda/Merge expressions) and refuses the
   model with one located line naming the first layer or function that cannot be
   exported, before anything is built or written;
2. walks the nodes in execution order, handing each call to its converter; a sub-model
   called as a layer is inlined (its nodes are walked again on the call's inputs), so a
   model called twice appears twice in the ONNX graph but reads the same initializers;
3. names the graph inputs and outputs after the spec's tensors, with the batch axis the
   symbolic dimension ``batch``, float32 throughout.

Inference semantics only: Dropout is the identity and BatchNormalization uses its
moving statistics, as ``Model.predict`` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import GraphspecError, InputError, SpecError
from ..layers.base import call_mask_sources
from .targets import export_targets

ONNX_EXTRA = "graphspec export --format onnx needs the onnx extra: pip install 'graphspec[onnx]'"


def _require_onnx():
    try:
        import onnx  # noqa: F401
    except ImportError:
        raise InputError(ONNX_EXTRA) from None


@dataclass
class Call:
    """One layer call as a converter sees it: ONNX input names, shapes (batch None),
    dtypes, the expected output shapes, and a way back to the walker for wrapped layers."""
    builder: object
    layer: object
    inputs: list
    input_shapes: list
    input_dtypes: list
    output_shapes: list
    hint: str
    walker: object = field(repr=False, default=None)
    # per input: the ONNX name of its boolean mask (onnx_masks), or None
    masks: list = field(default_factory=list)

    def mask(self, index: int = 0):
        return self.masks[index] if index < len(self.masks) else None

    def convert(self, layer, inputs, input_shapes, input_dtypes, hint) -> list:
        """Convert a call of a wrapped layer or model (TimeDistributed's inner layer)."""
        output_shapes = [tuple(s) for s in layer.compute_output_shapes(input_shapes)]
        return self.walker.convert(layer, inputs, input_shapes, input_dtypes,
                                   output_shapes, hint)


class Walker:
    def __init__(self, builder):
        self.builder = builder

    def run_model(self, model, inputs: list, scope: str, input_dtypes=None) -> list:
        """Walk ``model``'s nodes on ONNX tensors ``inputs``; its outputs' names."""
        return self.run_model_masked(model, inputs, scope, input_dtypes)[0]

    def run_model_masked(self, model, inputs: list, scope: str, input_dtypes=None,
                         input_masks=None) -> tuple:
        """(output names, output mask names or None): the masks travel beside the values
        as in ``Model.run_with_masks``, built by ``onnx_masks``."""
        from .onnx_masks import output_masks
        values = {id(t): name for t, name in zip(model.inputs, inputs)}
        masks = {id(t): m for t, m in zip(model.inputs, input_masks or ())}
        input_dtypes = input_dtypes or [t.dtype for t in model.inputs]
        dtypes = {id(t): onnx_io_dtype(d) for t, d in zip(model.inputs, input_dtypes)}
        for node in model.nodes:
            hint = scope + (node.output_tensors[0].name if node.output_tensors
                            else node.layer.name)
            ins = [values[id(t)] for t in node.input_tensors]
            in_masks = [masks.get(id(t)) for t in node.input_tensors]
            shapes = [tuple(t.shape) for t in node.input_tensors]
            in_dtypes = [dtypes[id(t)] for t in node.input_tensors]
            try:
                if _is_model(node.layer):
                    outs, out_masks = self.run_model_masked(node.layer, ins, f"{hint}.",
                                                            in_dtypes, in_masks)
                else:
                    outs = self.convert(node.layer, ins, shapes, in_dtypes,
                                        [tuple(t.shape) for t in node.output_tensors],
                                        hint, in_masks)
                    out_masks = output_masks(self.builder, node.layer, ins, shapes,
                                             in_dtypes, in_masks, len(outs), hint)
            except SpecError:
                raise       # already located (in a sub-model)
            except GraphspecError as exc:
                # a refusal found while translating (an expression construct)
                raise _located(model.graph, node, str(exc)) from None
            for tensor, name, mask in zip(node.output_tensors, outs, out_masks):
                values[id(tensor)] = name
                masks[id(tensor)] = mask
                dtypes[id(tensor)] = onnx_io_dtype(tensor.dtype)
        return [values[id(t)] for t in model.outputs], [masks.get(id(t)) for t in model.outputs]

    def convert(self, layer, inputs, input_shapes, input_dtypes, output_shapes, hint,
                masks=None) -> list:
        from .onnx_layers import LAYER_CONVERTERS
        if _is_model(layer):
            return self.run_model(layer, inputs, f"{hint}.", input_dtypes)
        call = Call(self.builder, layer, list(inputs), list(input_shapes),
                    list(input_dtypes), list(output_shapes), hint, self, list(masks or ()))
        outs = LAYER_CONVERTERS[layer.TYPE](call)
        if len(outs) != len(output_shapes):   # a converter bug, never a user error
            raise RuntimeError(f"ONNX converter of {layer.TYPE} gave {len(outs)} outputs, "
                               f"expected {len(output_shapes)}")
        return outs


def onnx_io_dtype(dtype) -> np.dtype:
    """The exported dtype: float32 for every float (a float64 graph exports as float32),
    integer inputs as declared."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.kind == "f" else dtype


def _is_model(layer) -> bool:
    return getattr(layer, "TYPE", "") == "Model"


# -- the up-front check --------------------------------------------------------------------
def export_problems(model) -> list:
    """``[(node, message)]`` for every call ``model`` makes that cannot be exported, in
    execution order (sub-models and wrapped layers included). Empty: it exports.
    Masks are followed as the compiler follows them (a sub-model called on a masked
    tensor runs masked), so a layer is checked with the masks its call gets."""
    from .onnx_layers import layer_refusal
    from .onnx_masks import mask_refusal
    problems, seen = [], set()

    def visit_layer(layer, node, sources):
        reason = layer_refusal(layer, node) or mask_refusal(layer, node, sources)
        if reason:
            problems.append((node, f"{layer.TYPE} layer '{layer.name}' cannot be exported "
                                   f"to ONNX: {reason}"))
            return
        for inner in layer.sublayers():
            if _is_model(inner):
                visit_model(inner, [None] * len(inner.inputs))
            else:
                visit_layer(inner, node, [None])

    def visit_model(model, sources):
        key = (id(model), tuple(sources))
        if key in seen:
            return
        seen.add(key)
        known = {id(t): s for t, s in zip(model.inputs, sources)}
        for node in model.nodes:
            ins = [known.get(id(t)) for t in node.input_tensors]
            layer = node.layer
            if _is_model(layer):
                visit_model(layer, ins)
            else:
                visit_layer(layer, node, ins)
            outs = call_mask_sources(layer, ins, len(node.output_tensors))
            for tensor, source in zip(node.output_tensors, outs):
                known[id(tensor)] = source
    visit_model(model, [None] * len(model.inputs))
    return problems


def _call_path(graph, node) -> tuple:
    """Where ``node`` is written: ``models.M.calls[i]`` (nodes are the calls, in order)."""
    model = graph.models.get(node.model) if graph is not None else None
    if model is None:
        return ("models", node.model)
    index = next((i for i, n in enumerate(model.nodes) if n is node), None)
    return ("models", node.model) if index is None else ("models", node.model, "calls", index)


def _located(graph, node, message: str) -> SpecError:
    """A SpecError at the call in the spec file (line and column when the file reads)."""
    path = _call_path(graph, node)
    file = getattr(graph, "file", "<spec>") if graph is not None else "<spec>"
    try:
        from ..spec.loader import load_file
        return load_file(file).error(path, message)
    except Exception:  # noqa: BLE001 - no marks (a spec from text): the path still locates
        from ..spec.loader import format_path
        return SpecError(message, file, 0, 0, format_path(path))


def check_exportable(model) -> None:
    """Raise a located SpecError for the first call of ``model`` that cannot be exported."""
    problems = export_problems(model)
    if problems:
        node, message = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise _located(model.graph, node, message + more)


# -- the API ------------------------------------------------------------------------------
def to_onnx(model, path=None, opset: int | None = None):
    """Export ``model`` (weights as they are now) to an ``onnx.ModelProto``.

    The model is checked first: a layer or expression function with no ONNX form is
    refused with a located :class:`~graphspec.errors.SpecError` and nothing is written.
    With ``path`` the file is written atomically. ``opset`` defaults to 17 (13..21).

    >>> proto = to_onnx(graphspec.load("specs/mlp.yaml", seed=0).model())  # doctest: +SKIP
    """
    _require_onnx()
    from .onnx_builder import DEFAULT_OPSET, MAX_OPSET, MIN_OPSET, Builder, value_info
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(f"opset {opset} is not supported; choose {MIN_OPSET}..{MAX_OPSET} "
                         f"(default {DEFAULT_OPSET})")
    check_exportable(model)
    builder = Builder(opset)
    for name in model.input_names + model.output_names:
        builder.reserve(name)
    internal = Walker(builder).run_model(model, list(model.input_names), "")
    for tensor, name in zip(model.outputs, internal):
        if name != tensor.name:     # an input passed straight through keeps its name
            builder.output(name, tensor.name)
    inputs = [value_info(t.name, onnx_io_dtype(t.dtype), t.shape) for t in model.inputs]
    outputs = [value_info(t.name, onnx_io_dtype(t.dtype), t.shape) for t in model.outputs]
    proto = builder.model(model.name, inputs, outputs,
                          doc=f"graphspec model '{model.name}' from {model.graph.file}"
                          if model.graph is not None else "")
    if path is not None:
        from ..io.files import atomic_write
        with atomic_write(path) as handle:
            handle.write(proto.SerializeToString())
    return proto


def export_onnx(graph, path, model_name: str | None = None, opset: int | None = None) -> list:
    """Export one model (``model_name``) or, without it, every model of ``graph``: one
    file per model (``out.MODEL.onnx``) when there are several. All models are checked
    before any file is written. Returns ``[(model name, path written)]``."""
    _require_onnx()
    targets = export_targets(graph, path, model_name, ".onnx")
    for model, _ in targets:
        check_exportable(model)
    protos = [(m, to_onnx(m, opset=opset), target) for m, target in targets]
    from ..io.files import atomic_write
    written = []
    for model, proto, target in protos:
        with atomic_write(target) as handle:
            handle.write(proto.SerializeToString())
        written.append((model.name, target))
    return written
