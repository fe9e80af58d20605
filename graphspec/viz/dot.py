"""A scene as Graphviz DOT text.

Every identifier in the text is generated (``n3``, ``i0``, ``cluster_2``); names from the
spec appear only inside HTML-like labels, escaped as XML text with backslashes doubled,
so a name holding quotes, angle brackets, braces or backslashes can neither break the
file nor be read by Graphviz as an escape sequence (``\\N``, ``\\G``).
"""
from __future__ import annotations

from .scene import Box, Cluster, edge_label, kind_line, shape_lines, short, visible

INPUT_FILL = "#e3e3e3"
SUBMODEL_FILL = "#f4f4f4"


def html(text) -> str:
    """Text for inside an HTML-like label: visible, XML-escaped, and with backslashes
    doubled: Graphviz substitutes ``\\N``, ``\\G``... even inside HTML labels (after
    decoding entities, so ``&#92;`` would not help); ``\\\\`` is its literal backslash."""
    return (visible(text).replace("\\", "\\\\").replace("&", "&amp;").replace("<", "&lt;")
            .replace(">", "&gt;").replace('"', "&quot;").replace("'", "&#39;"))


def _small(text: str, colour: str = "#333333") -> str:
    return f'<FONT POINT-SIZE="9" COLOR="{colour}">{text}</FONT>'


def _box_label(box: Box) -> str:
    rows = [f"<B>{html(short(box.title))}</B>", _small(html(kind_line(box)))]
    if box.detail:
        rows.append(_small(f"<I>{html(box.detail)}</I>", "#1f4e79"))
    rows += [_small(html(line), "#000000") for line in shape_lines(box)]
    rows += [f'<FONT POINT-SIZE="9"><B>output: {html(short(name))}</B></FONT>'
             for name in box.outputs]
    cells = "".join(f"<TR><TD>{row}</TD></TR>" for row in rows)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">{cells}</TABLE>>'


def _box(box: Box, indent: str) -> str:
    attrs = [f"label={_box_label(box)}"]
    if box.is_input:
        attrs += ['style="rounded,filled"', f'fillcolor="{INPUT_FILL}"']
    else:
        attrs.append(f'fillcolor="{box.fill or "#ffffff"}"')
    if box.outputs:
        attrs += ["peripheries=2", "penwidth=1.5"]
    if len(box.in_shapes) > 1:
        attrs.append("ordering=in")     # input slots left to right, as the #k labels say
    return f"{indent}{box.id} [{', '.join(attrs)}];"


def _cluster(cluster: Cluster, indent: str) -> list:
    title = f"<B>{html(short(cluster.title))}</B>"
    if cluster.entry_point:
        label = f'<{title} <FONT POINT-SIZE="10" COLOR="#555555">(model)</FONT>>'
        style = ['style="rounded,dashed"', 'color="#888888"', 'fontsize=13']
    else:
        # An empty cell as wide as the text keeps the cluster at least twice the title's
        # width, so the edges entering at its centre pass beside the title, not through.
        spacer = int(max(len(short(cluster.title)), 0.8 * len(cluster.subtitle)) * 7.5) + 16
        label = (f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR><TD ALIGN="LEFT">'
                 f'{title}</TD><TD ROWSPAN="2" WIDTH="{spacer}"> </TD></TR><TR>'
                 f'<TD ALIGN="LEFT">{_small(html(cluster.subtitle))}</TD></TR></TABLE>>')
        style = ['style="rounded,filled"', f'fillcolor="{cluster.fill or SUBMODEL_FILL}"',
                 'color="#555555"', 'fontsize=11']
    lines = [f"{indent}subgraph {cluster.id} {{", f"{indent}  label={label};",
             f"{indent}  labelloc=t;", f"{indent}  labeljust=l;"]
    lines += [f"{indent}  {attr};" for attr in style]
    inputs = [item.id for item in cluster.items if isinstance(item, Box) and item.is_input]
    if len(inputs) > 1:
        # Inputs on the top row in declaration order, so input slots #0, #1 of the
        # layers below read left to right instead of crossing.
        lines.append(f"{indent}  {{rank=same; {' -> '.join(inputs)} [style=invis];}}")
    for item in cluster.items:
        if isinstance(item, Cluster):
            lines += _cluster(item, indent + "  ")
        else:
            lines.append(_box(item, indent + "  "))
    lines.append(f"{indent}}}")
    return lines


def _legend(scene) -> str:
    rows = [f'<TR><TD COLSPAN="2" ALIGN="LEFT"><B>{html(scene.title)}</B></TD></TR>',
            '<TR><TD COLSPAN="2" ALIGN="LEFT">grey rounded box: model input \u00b7 double '
            'border: model output \u00b7 #k on an edge: input slot k</TD></TR>']
    if scene.legend:
        rows.append('<TR><TD COLSPAN="2" ALIGN="LEFT">same colour: one layer instance '
                    'called by several nodes (shared weights)</TD></TR>')
    for colour, text in scene.legend:
        rows.append(f'<TR><TD BGCOLOR="{colour}" WIDTH="24" BORDER="1"> </TD>'
                    f'<TD ALIGN="LEFT">{html(text)}</TD></TR>')
    return ('<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="1">'
            + "".join(rows) + "</TABLE>>")


def scene_to_dot(scene) -> str:
    lines = [
        "digraph graphspec {",
        '  graph [rankdir=TB, newrank=true, nodesep=0.25, ranksep=0.35, '
        'fontname="Helvetica", labelloc=b, labeljust=l, fontsize=10];',
        f"  label={_legend(scene)};",
        '  node [shape=box, style=filled, fontname="Helvetica", fontsize=10, '
        'margin="0.12,0.05", color="#333333"];',
        '  edge [fontname="Helvetica", fontsize=8, color="#555555", fontcolor="#333333", '
        'arrowsize=0.7];',
    ]
    for cluster in scene.clusters:
        lines += _cluster(cluster, "  ")
    for edge in scene.edges:
        text = html(edge_label(edge))
        lines.append(f'  {edge.source} -> {edge.target} [label=<{text}>];')
    lines.append("}")
    return "\n".join(lines) + "\n"
