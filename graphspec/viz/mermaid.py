"""A scene as a Mermaid flowchart (renders in GitHub and GitLab Markdown).

The same boxes, edges, clusters (``subgraph``) and colours as the DOT picture. Identifiers
are generated; names from the spec appear only in quoted labels, where every character
Mermaid could read as syntax is written as an entity code (``#34;``), so a name cannot
close a label, start a link or inject markup.
"""
from __future__ import annotations

from .scene import Box, Cluster, edge_label, kind_line, shape_lines, short, visible

INPUT_FILL = "#e3e3e3"
SUBMODEL_FILL = "#f4f4f4"
_PLAIN = set(" _-.,:()/=+*\u2192\u00b7\u2026")


def text(value) -> str:
    """Mermaid label text: letters, digits and harmless punctuation as they are, every
    other character as an entity code."""
    return "".join(ch if ch.isalnum() or ch in _PLAIN else f"#{ord(ch)};"
                   for ch in visible(value))


def _box(box: Box, indent: str) -> str:
    rows = [f"<b>{text(short(box.title))}</b>", text(kind_line(box))]
    if box.detail:
        rows.append(f"<i>{text(box.detail)}</i>")
    rows += [text(line) for line in shape_lines(box)]
    rows += [f"<b>output: {text(short(name))}</b>" for name in box.outputs]
    label = '"' + "<br>".join(rows) + '"'
    return f"{indent}{box.id}([{label}])" if box.is_input else f"{indent}{box.id}[{label}]"


def _cluster(cluster: Cluster, indent: str, styles: list) -> list:
    title = f"<b>{text(short(cluster.title))}</b> " + \
        ("(model)" if cluster.entry_point else text(cluster.subtitle))
    lines = [f'{indent}subgraph {cluster.id} ["{title}"]']
    for item in cluster.items:
        if isinstance(item, Cluster):
            lines += _cluster(item, indent + "  ", styles)
        else:
            lines.append(_box(item, indent + "  "))
    lines.append(f"{indent}end")
    if cluster.entry_point:
        styles.append(f"  style {cluster.id} fill:none,stroke:#888,stroke-dasharray:5 5")
    else:
        styles.append(f"  style {cluster.id} fill:{cluster.fill or SUBMODEL_FILL},stroke:#555")
    return lines


def _legend(scene, styles: list) -> list:
    lines = [f'  subgraph legend ["{text(short(scene.title, 80))}"]',
             '    legend_key["rounded grey: model input \u00b7 thick border: model output'
             ' \u00b7 #35;k: input slot k' +
             ('<br>same colour: one layer instance called by several nodes (shared weights)'
              if scene.legend else '') + '"]']
    for i, (colour, entry) in enumerate(scene.legend):
        lines.append(f'    legend_{i}["{text(entry)}"]')
        styles.append(f"  style legend_{i} fill:{colour}")
    lines.append("  end")
    return lines


def scene_to_mermaid(scene) -> str:
    lines, styles = ["flowchart TB"], []
    for cluster in scene.clusters:
        lines += _cluster(cluster, "  ", styles)
    lines += _legend(scene, styles)
    for edge in scene.edges:
        label = text(edge_label(edge))
        lines.append(f'  {edge.source} -->|"{label}"| {edge.target}')
    for box in scene.boxes():
        fill = INPUT_FILL if box.is_input else box.fill
        stroke = ",stroke:#000,stroke-width:3px" if box.outputs else ""
        if fill or stroke:
            styles.append(f"  style {box.id} fill:{fill or '#fff'}{stroke}")
    return "\n".join(lines + styles) + "\n"
