"""Pictures of a compiled graph: DOT or Mermaid text, or an image drawn by Graphviz.

>>> graph = graphspec.load("specs/shared_vision.yaml", initialize=False)
>>> plot_graph(graph, "graph.svg")                  # every model, side by side
>>> graph_text(graph, "mmd", model="vision")        # Mermaid text of one model

What a picture shows is decided once, in :mod:`graphspec.viz.scene`; this module picks
the writer and the file format.
"""
from __future__ import annotations

import os

from ..errors import InputError
from ..io.files import atomic_write
from .dot import scene_to_dot
from .graphviz import IMAGE_FORMATS, render
from .mermaid import scene_to_mermaid
from .scene import build_scene

FORMATS = ("svg", "png", "pdf", "dot", "mmd")
EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot",
              ".mmd": "mmd", ".mermaid": "mmd"}


def picture_format(output, fmt: str | None = None) -> str:
    """``fmt`` if given, else the format ``output``'s extension names."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown picture format '{fmt}'; choose one of "
                             f"{', '.join(FORMATS)}")
        return fmt
    extension = os.path.splitext(os.fspath(output or ""))[1].lower()
    if extension not in EXTENSIONS:
        raise InputError(f"cannot tell the picture format from '{output}': name the file "
                         ".svg, .png, .pdf, .dot, .gv or .mmd, or pass --format")
    return EXTENSIONS[extension]


def graph_text(graph, fmt: str = "dot", model: str | None = None) -> str:
    """The DOT (``fmt="dot"``) or Mermaid (``"mmd"``) text of one model or of all."""
    return scene_text(build_scene(graph, model), fmt)


def scene_text(scene, fmt: str) -> str:
    if fmt == "dot":
        return scene_to_dot(scene)
    if fmt == "mmd":
        return scene_to_mermaid(scene)
    raise InputError(f"pictures are written as 'dot' or 'mmd' text, not '{fmt}'")


def plot_graph(graph, output, model: str | None = None, fmt: str | None = None):
    """Write the picture of ``model`` (default: every model) to ``output`` and return
    its :class:`~graphspec.viz.scene.Scene` (what was drawn). svg/png/pdf need
    Graphviz's ``dot``; dot/mmd text needs nothing."""
    fmt = picture_format(output, fmt)
    scene = build_scene(graph, model)
    text = scene_text(scene, "mmd" if fmt == "mmd" else "dot")
    # UTF-8 whatever the locale: labels hold arrows and any name the spec allows.
    data = render(text, fmt, output) if fmt in IMAGE_FORMATS else text.encode("utf-8")
    with atomic_write(output, "wb") as handle:
        handle.write(data)
    return scene
