"""Can the new spec start from the old checkpoint? Weight compatibility and migration.

Each layer weight in the old .npz is followed to its layer in the new spec (through
renames): it *loads unchanged* if the new spec has that weight with the same shape, it
*changes shape* if the shape differs (the new spec initialises it afresh), and it is
*dropped* if its layer is gone. New weights with no source are *initialised*. Entries
that are not layer weights (optimizer and loss state) are not carried over: they
belong to the old training run.
"""
from __future__ import annotations

import numpy as np

from ..io.files import load_npz
from .models import shape_text

_STATE_PREFIXES = ("optimizer/", "state/", "trainer/")


def _is_weight_key(key: str) -> bool:
    return "/" in key and not key.startswith(_STATE_PREFIXES)


def _usable(value) -> str | None:
    """Why an array cannot be copied into a weight, or None."""
    if not np.issubdtype(value.dtype, np.floating):
        return f"dtype {value.dtype}, expected floating point"
    if not np.all(np.isfinite(value)):
        return "contains NaN or Inf"
    return None


def _against_old(old_graph, arrays: dict) -> list:
    """How the file differs from the spec it should belong to (the old one)."""
    specs = old_graph.weight_specs()
    notes = [f"'{k}' is not a weight of the old spec" for k in arrays
             if _is_weight_key(k) and k not in specs]
    notes += [f"'{k}' has shape {shape_text(arrays[k].shape)}, the old spec needs "
              f"{shape_text(s.shape)}" for k, s in specs.items()
              if k in arrays and tuple(arrays[k].shape) != tuple(s.shape)]
    notes += [f"the old spec's '{k}' is missing" for k in specs if k not in arrays]
    return notes


def compatibility(old_graph, new_graph, mapping: dict, path) -> tuple:
    """``(report, {new key: old key} to copy, arrays)`` for the old weights at ``path``."""
    arrays = load_npz(path)
    new_specs = new_graph.weight_specs()
    loads, reshaped, dropped, unusable, sources = [], [], [], [], {}
    for key, value in arrays.items():
        if not _is_weight_key(key):
            continue
        layer, _, weight = key.rpartition("/")
        target = f"{mapping[layer]}/{weight}" if layer in mapping else None
        spec = new_specs.get(target)
        if spec is None:
            why = "its layer is gone" if layer not in mapping else \
                "the layer no longer has this weight (e.g. use_bias turned off)"
            dropped.append({"key": key, "why": why})
        elif tuple(value.shape) != tuple(spec.shape):
            reshaped.append({"key": key, "new_key": target, "old": shape_text(value.shape),
                             "new": shape_text(spec.shape)})
        elif _usable(value):
            unusable.append({"key": key, "problem": _usable(value)})
        else:
            loads.append({"key": key, "new_key": target, "shape": shape_text(spec.shape)})
            sources[target] = key
    changed_targets = {r["new_key"] for r in reshaped}
    fresh = [{"key": k, "shape": shape_text(s.shape)} for k, s in new_specs.items()
             if k not in sources and k not in changed_targets]
    report = {"file": str(path), "loads": loads, "reshaped": reshaped, "new": fresh,
              "dropped": dropped, "unusable": unusable,
              # optimizer/loss state is not carried over; the file's own metadata is not
              # state at all (the migrated file gets metadata describing the new spec)
              "not_carried": sorted(k for k in arrays if not _is_weight_key(k)
                                    and not k.startswith("__graphspec")),
              "old_spec_mismatch": _against_old(old_graph, arrays),
              "fine_tune_ready": not reshaped and not fresh and not unusable}
    return report, sources, arrays


def migrate(new_graph, arrays: dict, sources: dict, output, seed: int = 0) -> dict:
    """Initialise ``new_graph`` (seeded), copy the compatible old weights over, and
    write every weight of the new spec to ``output``."""
    new_graph.initialize(seed)
    variables = new_graph.weights()
    for target, key in sources.items():
        variables[target].data = arrays[key].astype(new_graph.dtype, copy=True)
    new_graph.save_weights(output)
    return {"copied": len(sources), "initialised": len(variables) - len(sources)}
