"""Reviewing model changes: diffs of compiled graphs, weight migration.

- :mod:`.diff`: :func:`diff_specs`, the one API function, and the :class:`SpecDiff` it returns
- :mod:`.source`: a spec file, or ``REV:PATH`` read from git (no shell)
- :mod:`.match`: which old layer is which new layer (names, then the rename heuristic)
- :mod:`.models`: what changed in one model (effective trainable and parameter counts
  from the one walk, :mod:`graphspec.graph.walk`)
- :mod:`.weights`: can the new spec start from the old checkpoint; migration
- :mod:`.render`: text and Markdown; :mod:`.action`: the GitHub Action's script
"""
from .diff import SpecDiff, diff_specs

__all__ = ["SpecDiff", "diff_specs"]
