"""The ONNX graph under construction: unique names, nodes, initializers, small helpers.

Converters (``onnx_layers``, ``onnx_recurrent``, ``onnx_functions``) only ever talk to a
:class:`Builder`; it hides the few places where ONNX changed between opsets (reductions
take their axes as an attribute before opset 18 and as an input from 18 on).

A weight becomes an initializer once per layer instance, whatever the number of calls:
:meth:`Builder.weight` caches it by (layer, key), so a shared layer's calls all read the
same initializer. This module imports ``onnx`` at the top: it is only ever imported from
inside :func:`graphspec.interop.onnx_export.to_onnx`, after the lazy import check.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import InputError

# Nothing graphspec emits needs more than opset 13 (Softmax on any axis, Squeeze axes as
# an input); 17 is the default because every current runtime has it; 21 is the highest
# opset the exports are tested at.
MIN_OPSET = 13
DEFAULT_OPSET = 17
MAX_OPSET = 21
# protobuf's limit on one serialised message, which an ONNX file without external data is
MAX_PROTO_BYTES = (2 << 30) - (16 << 20)

ONNX_DTYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE,
               np.dtype(np.int32): TensorProto.INT32, np.dtype(np.int64): TensorProto.INT64,
               np.dtype(np.bool_): TensorProto.BOOL, np.dtype(np.int8): TensorProto.INT8,
               np.dtype(np.int16): TensorProto.INT16, np.dtype(np.uint8): TensorProto.UINT8}


def onnx_dtype(dtype) -> int:
    return ONNX_DTYPES[np.dtype(dtype)]


class Builder:
    def __init__(self, opset: int, float_dtype=np.float32):
        self.opset = opset
        self.float_dtype = np.dtype(float_dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._used: set = set()
        self._cache: dict = {}
        self._counts: dict = {}

    # -- names ------------------------------------------------------------------------
    def reserve(self, name: str) -> str:
        """Claim a graph input or output name, so no internal tensor takes it."""
        self._used.add(name)
        return name

    def fresh(self, hint: str) -> str:
        """A tensor or node name not used yet, as close to ``hint`` as possible."""
        hint = hint or "t"
        name, n = hint, self._counts.get(hint, 0)
        while name in self._used:
            n += 1
            name = f"{hint}_{n}"
        self._counts[hint] = n
        self._used.add(name)
        return name

    # -- nodes --------------------------------------------------------------------------
    def op(self, op_type: str, inputs, hint: str = "", outputs: int = 1, **attrs):
        """Append one node; returns its output name (a list when ``outputs`` > 1).

        An input may be "" (an omitted optional input, as ONNX writes it)."""
        base = hint or op_type.lower()
        names = [self.fresh(f"{base}" if outputs == 1 else f"{base}_{i}")
                 for i in range(outputs)]
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), names,
                                           name=self.fresh(f"{base}/{op_type}"), **attrs))
        return names[0] if outputs == 1 else names

    def output(self, x: str, name: str) -> None:
        """Identity from ``x`` to the reserved graph output ``name`` (its spec name)."""
        self.nodes.append(helper.make_node("Identity", [x], [name],
                                           name=self.fresh(f"{name}/Identity")))

    def const(self, value, hint: str = "const", dtype=None) -> str:
        """An initializer holding ``value`` (cast to ``dtype`` if given)."""
        array = np.asarray(value, dtype=dtype)
        name = self.fresh(hint)
        # not np.ascontiguousarray: it turns a rank-0 scalar into shape (1,)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def i64(self, values, hint: str = "ints") -> str:
        """A 1-D int64 constant (shapes, axes, pads, slice bounds); cached by value."""
        values = tuple(int(v) for v in np.atleast_1d(values))
        key = ("i64", values)
        if key not in self._cache:
            self._cache[key] = self.const(np.array(values, dtype=np.int64), hint)
        return self._cache[key]

    def scalar(self, value, dtype, hint: str = "scalar") -> str:
        """A rank-0 constant of ``dtype``; cached by (value, dtype)."""
        dtype = np.dtype(dtype)
        key = ("scalar", dtype.str, float(value))
        if key not in self._cache:
            self._cache[key] = self.const(np.array(value, dtype=dtype), hint)
        return self._cache[key]

    def weight(self, layer, key: str, make) -> str:
        """The initializer ``layer.name/key``, made once per layer instance by ``make()``
        (a numpy array derived from the layer's named weights)."""
        cache_key = ("weight", id(layer), key)
        if cache_key not in self._cache:
            array = np.asarray(make())
            if array.dtype.kind == "f":
                array = array.astype(self.float_dtype)
            self._cache[cache_key] = self.const(array, f"{layer.name}/{key}")
        return self._cache[cache_key]

    # -- helpers over the opset differences ----------------------------------------------
    def reduce(self, op_type: str, x: str, axes, keepdims: bool, hint: str = "") -> str:
        """ReduceSum/Mean/Max/Min over ``axes`` (None: every axis)."""
        keep = int(bool(keepdims))
        if axes is None:
            return self.op(op_type, [x], hint, keepdims=keep)
        axes = [int(a) for a in np.atleast_1d(axes)]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, [x, self.i64(axes)], hint, keepdims=keep)
        return self.op(op_type, [x], hint, axes=axes, keepdims=keep)

    def unsqueeze(self, x: str, axes, hint: str = "") -> str:
        return self.op("Unsqueeze", [x, self.i64(axes)], hint)

    def squeeze(self, x: str, axes, hint: str = "") -> str:
        return self.op("Squeeze", [x, self.i64(axes)], hint)

    def transpose(self, x: str, perm, hint: str = "") -> str:
        return self.op("Transpose", [x], hint, perm=[int(p) for p in perm])

    def reshape(self, x: str, shape, hint: str = "") -> str:
        """Reshape to a constant ``shape``; 0 copies the input's dimension (batch)."""
        return self.op("Reshape", [x, self.i64(shape)], hint)

    def slice(self, x: str, starts, ends, axes, steps=None, hint: str = "") -> str:
        inputs = [x, self.i64(starts), self.i64(ends), self.i64(axes)]
        if steps is not None:
            inputs.append(self.i64(steps))
        return self.op("Slice", inputs, hint)

    def cast(self, x: str, dtype, hint: str = "") -> str:
        return self.op("Cast", [x], hint, to=onnx_dtype(dtype))

    def batch_of(self, x: str, hint: str = "batch") -> str:
        """The batch size of ``x`` as a 1-D int64 tensor of one element."""
        shape = self.op("Shape", [x], f"{hint}_shape")
        return self.slice(shape, [0], [1], [0], hint=hint)

    # -- the model ------------------------------------------------------------------------
    def model(self, name: str, inputs: list, outputs: list, doc: str = "") -> onnx.ModelProto:
        size = sum(len(t.raw_data) for t in self.initializers)
        if size >= MAX_PROTO_BYTES:
            raise InputError(f"model '{name}' holds {size / 2 ** 30:.1f} GiB of weights; one "
                             "ONNX file holds less than 2 GiB and export with external data "
                             "files is not supported yet: export a smaller configuration "
                             "(--set) or a sub-model (--model)")
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.initializers,
                                  doc_string=doc)
        opset = helper.make_opsetid("", self.opset)
        model = helper.make_model(graph, opset_imports=[opset], producer_name="graphspec")
        model.ir_version = helper.find_min_ir_version_for([opset])
        return model


def value_info(name: str, dtype, shape) -> onnx.ValueInfoProto:
    """A graph input/output: the batch axis (first) is the symbolic dimension ``batch``;
    other unknown axes get their own symbolic names."""
    dims = [("batch" if i == 0 else f"{name}_dim{i}") if d is None else int(d)
            for i, d in enumerate(shape)]
    return helper.make_tensor_value_info(name, onnx_dtype(dtype), dims)
