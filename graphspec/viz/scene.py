"""What a picture of a compiled graph shows, before it is written in any drawing language.

A scene has one box per node (one call of a layer instance) and one per model input,
one edge per tensor a node consumes (in the node's input order), and clusters: one per
model drawn as an entry point, and one per call of a sub-model, expanded in place so the
layers it runs are visible. The DOT and Mermaid writers translate a scene and never walk
the graph themselves, so both pictures always say the same thing.

Colour means sharing: a layer instance (or sub-model) called by several nodes gets one
palette colour on every box (or cluster) that calls it, and a legend entry saying where
its calls are. Everything else is white, so colour is never decoration.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from ..graph.model import Model

# ColorBrewer Set3 without its grey (grey marks inputs): light fills, dark text readable.
PALETTE = ("#8dd3c7", "#ffffb3", "#bebada", "#fb8072", "#80b1d3", "#fdb462",
           "#b3de69", "#fccde5", "#bc80bd", "#ccebc5", "#ffed6f")
MAX_NESTING = 64        # sub-models inside sub-models; the compiler already refuses cycles
MAX_BOXES = 20_000      # a picture past this is unreadable and slow to lay out
MAX_NAME = 48           # characters of a name shown in a box (the spec keeps the rest)


@dataclass(eq=False)
class Box:
    id: str
    title: str                       # the layer's (or input's) name
    kind: str                        # "Conv2D", "Input", "TimeDistributed(vision)"
    detail: str = ""                 # a Lambda's or Merge's expression, shortened
    instance: object = None          # the layer called here (None for an input)
    node_index: int | None = None    # shown when the layer has several nodes
    node_count: int = 1
    in_shapes: list = field(default_factory=list)
    out_shapes: list = field(default_factory=list)
    outputs: list = field(default_factory=list)   # model outputs made here: "h (out #1)"
    fill: str | None = None

    @property
    def is_input(self) -> bool:
        return self.instance is None


@dataclass(eq=False)
class Edge:
    source: str
    target: str
    tensor: str
    position: int | None = None      # the input slot, when the target takes several
    slot: int | None = None          # the output slot, when the source makes several


@dataclass(eq=False)
class Cluster:
    id: str
    title: str
    subtitle: str
    entry_point: bool
    instance: object = None          # the sub-model called here (None for an entry point)
    items: list = field(default_factory=list)     # Boxes and Clusters, in call order
    fill: str | None = None


@dataclass(eq=False)
class Scene:
    title: str
    clusters: list                   # one per entry point drawn
    edges: list
    legend: list                     # (colour, text) per shared instance

    def boxes(self) -> list:
        return [item for item in _walk(self.clusters) if isinstance(item, Box)]

    def all_clusters(self) -> list:
        return [item for item in _walk(self.clusters) if isinstance(item, Cluster)]


def _walk(items):
    for item in items:
        yield item
        if isinstance(item, Cluster):
            yield from _walk(item.items)


def edge_label(edge: Edge) -> str:
    """``x``, or ``#1 x`` into input slot 1, or ``h (out #1)`` from output slot 1."""
    text = short(edge.tensor, 32)
    if edge.slot is not None:
        text += f" (out #{edge.slot})"
    return text if edge.position is None else f"#{edge.position} {text}"


def format_shape(shape) -> str:
    dims = ["None" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def short(name: str, limit: int = MAX_NAME) -> str:
    name = str(name)
    return name if len(name) <= limit else name[:limit - 1] + "\u2026"


def visible(text) -> str:
    """``text`` with unprintable characters (newlines, tabs, bidi overrides) spelled out."""
    out = []
    for ch in str(text):
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
                       if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


def kind_line(box: Box) -> str:
    if box.node_index is None:
        return box.kind
    return f"{box.kind} \u00b7 node {box.node_index} of {box.node_count}"


def shape_lines(box: Box) -> list:
    """The shape rows of a box: one ``in -> out`` line, or one line per tensor."""
    ins = [format_shape(s) for s in box.in_shapes]
    outs = [format_shape(s) for s in box.out_shapes]
    if box.is_input:
        return outs
    if len(ins) == 1 and len(outs) == 1:
        return [f"{ins[0]} \u2192 {outs[0]}"]
    lines = [f"in #{i}: {s}" if len(ins) > 1 else f"in: {s}" for i, s in enumerate(ins)]
    return lines + [f"out #{i}: {s}" if len(outs) > 1 else f"out: {s}"
                    for i, s in enumerate(outs)]


def build_scene(graph, model: str | None = None) -> Scene:
    """The scene of one model (``model``) or of every model of the graph side by side."""
    models = [graph.model(model)] if model is not None else list(graph.models.values())
    builder = _Builder()
    clusters = [builder.entry_point(m) for m in models]
    legend = _colour_shared(clusters)
    return Scene(title=str(graph.file), clusters=clusters, edges=builder.edges, legend=legend)


class _Builder:
    def __init__(self):
        self.edges: list = []
        self._ids = {"n": 0, "i": 0, "c": 0}

    def _id(self, prefix: str) -> str:
        self._ids[prefix] += 1
        if self._ids["n"] + self._ids["i"] > MAX_BOXES:
            raise InputError(f"the picture would have more than {MAX_BOXES} boxes; draw one "
                             "model with --model NAME")
        return f"{prefix}{self._ids[prefix] - 1}"

    def entry_point(self, model) -> Cluster:
        cluster = Cluster(self._cluster_id(), model.name, "model", entry_point=True)
        feeds = {}
        for tensor in model.inputs:
            kind = "Input" if tensor.dtype == "float32" else f"Input {tensor.dtype}"
            box = Box(self._id("i"), tensor.name, kind, out_shapes=[tensor.shape])
            cluster.items.append(box)
            feeds[id(tensor)] = (box, tensor, 0)
        self._calls(model, feeds, cluster, depth=0)
        for tensor in model.outputs:
            box, _, slot = feeds[id(tensor)]
            box.outputs.append(tensor.name + _slot(box, slot))
        return cluster

    def _cluster_id(self) -> str:
        self._ids["c"] += 1
        return f"cluster_{self._ids['c'] - 1}"

    def _calls(self, model, feeds: dict, cluster: Cluster, depth: int) -> None:
        for node in model.nodes:
            sources = [feeds[id(t)] for t in node.input_tensors]
            if isinstance(node.layer, Model):
                self._submodel(node, sources, feeds, cluster, depth)
                continue
            box = self._layer_box(node)
            cluster.items.append(box)
            self._connect(sources, box)
            for slot, tensor in enumerate(node.output_tensors):
                feeds[id(tensor)] = (box, tensor, slot)

    def _submodel(self, node, sources, feeds, cluster, depth) -> None:
        """A sub-model call: a cluster holding the sub-model's own nodes, wired to the
        tensors this call feeds it; its outputs then stand for this call's outputs."""
        inner = node.layer
        if depth >= MAX_NESTING:
            raise InputError(f"model '{inner.name}' is nested more than {MAX_NESTING} "
                             "sub-models deep; draw an inner model with --model NAME")
        count = len(inner.inbound_nodes)
        subtitle = "sub-model" + (f" \u00b7 node {node.node_index} of {count}"
                                  if count > 1 else "")
        sub = Cluster(self._cluster_id(), inner.name, subtitle, entry_point=False,
                      instance=inner)
        cluster.items.append(sub)
        inner_feeds = {id(t): source for t, source in zip(inner.inputs, sources)}
        self._calls(inner, inner_feeds, sub, depth + 1)
        for outer, tensor in zip(node.output_tensors, inner.outputs):
            box, _, slot = inner_feeds[id(tensor)]
            feeds[id(outer)] = (box, outer, slot)

    def _layer_box(self, node) -> Box:
        layer = node.layer
        kind = layer.TYPE
        wrapped = layer.sublayers()
        if wrapped:
            kind += "(" + ", ".join(short(w.name, 24) for w in wrapped[:2]) + ")"
        count = len(layer.inbound_nodes)
        # Lambdas differ only by their expression: show it (one line, shortened).
        expr = layer.config.get("expr") if isinstance(getattr(layer, "config", None),
                                                     dict) else None
        detail = short(" ".join(expr.split()), 40) if isinstance(expr, str) else ""
        return Box(self._id("n"), layer.name, kind, detail=detail, instance=layer,
                   node_index=node.node_index if count > 1 else None, node_count=count,
                   in_shapes=list(node.input_shapes), out_shapes=list(node.output_shapes))

    def _connect(self, sources, box: Box) -> None:
        several = len(sources) > 1
        for position, (source, tensor, slot) in enumerate(sources):
            self.edges.append(Edge(source.id, box.id, tensor.name,
                                   position if several else None,
                                   slot if len(source.out_shapes) > 1 else None))


def _slot(box: Box, slot: int) -> str:
    return f" (out #{slot})" if len(box.out_shapes) > 1 else ""


def _colour_shared(clusters) -> list:
    """Give every instance called by several nodes its palette colour; the legend."""
    order, drawn = [], {}
    for item in _walk(clusters):
        instance = item.instance if isinstance(item, (Box, Cluster)) else None
        if instance is None or len(instance.inbound_nodes) < 2:
            continue
        if id(instance) not in drawn:
            drawn[id(instance)] = []
            order.append(instance)
        drawn[id(instance)].append(item)
    legend = []
    for i, instance in enumerate(order):
        colour = PALETTE[i % len(PALETTE)]
        for item in drawn[id(instance)]:
            item.fill = colour
        legend.append((colour, _legend_text(instance, len(drawn[id(instance)]))))
    return legend


def _legend_text(instance, shown: int) -> str:
    nodes = instance.inbound_nodes
    calls = ", ".join(f"{n.model} (node {n.node_index})" for n in nodes[:4])
    more = f" and {len(nodes) - 4} more" if len(nodes) > 4 else ""
    kind = "Model" if isinstance(instance, Model) else instance.TYPE
    note = "" if shown == len(nodes) else f"; {shown} of them drawn here" \
        if shown < len(nodes) else f"; drawn {shown} times here (sub-models expanded)"
    return (f"{short(instance.name)} ({kind}): one instance, {len(nodes)} calls: "
            f"{calls}{more}{note}")
