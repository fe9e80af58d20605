"""Keras-like text summary of a model, and a Graphviz/Mermaid picture of it."""
from __future__ import annotations

from .walk import iter_layers


def format_shape(shape) -> str:
    shape = list(shape)
    inner = ", ".join("None" if d is None else str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _shapes(shapes) -> str:
    return format_shape(shapes[0]) if len(shapes) == 1 else \
        "[" + ", ".join(format_shape(s) for s in shapes) + "]"


def _node_params(layer) -> int:
    """Every weight element a call of ``layer`` uses (a sub-model's: all of its own)."""
    return sum(sum(use.param_count()) for use in iter_layers(layer))


def summary_rows(model) -> list:
    rows = [(f"{t.name} (Input)", "-", format_shape(t.shape), "0", "-") for t in model.inputs]
    counted = set()
    for node in model.nodes:
        layer = node.layer
        params = "(shared)" if id(layer) in counted else f"{_node_params(layer):,}"
        counted.add(id(layer))
        sources = ", ".join(f"{t.name}" for t in node.input_tensors)
        rows.append((f"{layer.name} ({layer.TYPE})", str(node.node_index),
                     _shapes(node.output_shapes), params, sources))
    return rows


def summary(model) -> str:
    """The table ``graphspec build`` prints: one row per call (node) of the model."""
    header = ("Layer (type)", "Node", "Output Shape", "Param #", "Connected to")
    rows = summary_rows(model)
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(5)]
    rule = "=" * (sum(widths) + 2 * 4)

    def line(cells):
        return "  ".join(c.ljust(w) if i != 3 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    trainable, non_trainable = model.param_count()
    out = [f'Model: "{model.name}"', line(header), rule]
    out += [line(r) for r in rows]
    out += [rule, f"Total params: {trainable + non_trainable:,}",
            f"Trainable params: {trainable:,}", f"Non-trainable params: {non_trainable:,}",
            f"Outputs: {', '.join(f'{t.name} {format_shape(t.shape)}' for t in model.outputs)}"]
    return "\n".join(out)


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(model) -> str:
    """Graphviz DOT: one box per node (layer call), edges labelled with tensor shapes."""
    lines = [f'digraph "{_quote(model.name)}" {{', "  rankdir=TB;",
             '  node [shape=record, fontname="Helvetica", fontsize=10];']
    producer = {}
    for t in model.inputs:
        lines.append(f'  "in_{_quote(t.name)}" [label="{{{_quote(t.name)}|Input}}", '
                     'style=filled, fillcolor="#e8f0fe"];')
        producer[id(t)] = f"in_{t.name}"
    for i, node in enumerate(model.nodes):
        ident = f"n{i}_{node.layer.name}"
        lines.append(f'  "{_quote(ident)}" [label="{{{_quote(node.layer.name)} '
                     f'[{node.node_index}]|{node.layer.TYPE}}}"];')
        for t in node.input_tensors:
            lines.append(f'  "{_quote(producer[id(t)])}" -> "{_quote(ident)}" '
                         f'[label="{_quote(t.name)} {format_shape(t.shape)}"];')
        for t in node.output_tensors:
            producer[id(t)] = ident
    for t in model.outputs:
        lines.append(f'  "out_{_quote(t.name)}" [label="{_quote(t.name)}", shape=oval];')
        lines.append(f'  "{_quote(producer[id(t)])}" -> "out_{_quote(t.name)}" '
                     f'[label="{format_shape(t.shape)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(model) -> str:
    """Mermaid flowchart (renders in GitHub markdown)."""
    lines = ["flowchart TD"]
    producer = {}
    for i, t in enumerate(model.inputs):
        lines.append(f'  in{i}(["{t.name}: Input {format_shape(t.shape)}"])')
        producer[id(t)] = f"in{i}"
    for i, node in enumerate(model.nodes):
        lines.append(f'  n{i}["{node.layer.name} [{node.node_index}]: {node.layer.TYPE}"]')
        for t in node.input_tensors:
            lines.append(f'  {producer[id(t)]} -->|"{t.name} {format_shape(t.shape)}"| n{i}')
        for t in node.output_tensors:
            producer[id(t)] = f"n{i}"
    for i, t in enumerate(model.outputs):
        lines.append(f'  out{i}(["{t.name} {format_shape(t.shape)}"])')
        lines.append(f"  {producer[id(t)]} --> out{i}")
    return "\n".join(lines) + "\n"
