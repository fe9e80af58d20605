"""A SpecDiff as rows (change, where, before, after), printed as text or Markdown.

One list of rows feeds both formats, so the terminal and the pull-request comment never
disagree. Every cell that comes from a spec is escaped for Markdown and HTML: a spec in
a pull request is written by whoever opened it.
"""
from __future__ import annotations

import html
import json
import re

from ..spec.loader import one_line

MAX_CELL = 80
MAX_LISTED_WEIGHTS = 12


def _value(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return text if len(text) <= MAX_CELL else text[:MAX_CELL - 1] + "…"


def _args(args: dict) -> str:
    return ", ".join(f"{k}={_value(v)}" for k, v in args.items())


def _layer_rows(layers: dict) -> list:
    rows = [("layer added", a["name"], None,
             f"{a['type']}({_args(a['args'])}), {a['params']:,} params") for a in layers["added"]]
    rows += [("layer removed", r["name"], f"{r['type']}, {r['params']:,} params", None)
             for r in layers["removed"]]
    rows += [("layer renamed", f"{r['old']} → {r['new']}", None, None)
             for r in layers["renamed"]]
    rows += [("config", f"{c['layer']}.{c['arg']}", _value(c["old"]), _value(c["new"]))
             for c in layers["config"]]
    rows += [("trainable", t["layer"], _value(t["old"]), _value(t["new"]))
             for t in layers["trainable"]]
    return rows


def _interface_rows(model: str, what: str, part: dict) -> list:
    rows = [(f"{what} added", f"{model}.{a['name']}", None, f"{a['shape']} {a['dtype']}")
            for a in part["added"]]
    rows += [(f"{what} removed", f"{model}.{r['name']}", f"{r['shape']} {r['dtype']}", None)
             for r in part["removed"]]
    rows += [(what, f"{model}.{c['name']}", c["old"], c["new"]) for c in part["changed"]]
    rows += [(f"{what} order", model, ", ".join(r["old"]), ", ".join(r["new"]))
             for r in part["reordered"]]
    return rows


def _call(node: dict) -> str:
    return (f"{node['type']}: {', '.join(node['inputs'])} → {', '.join(node['outputs'])} "
            f"{', '.join(node['shapes'])}")


def _delta(old: int, new: int) -> str:
    return f"{new:,} ({new - old:+,})" if new != old else f"{new:,}"


def _params_rows(params: dict) -> list:
    old, new = params["old"], params["new"]
    return [("params", kind.replace("_", "-"), f"{old[kind]:,}", _delta(old[kind], new[kind]))
            for kind in ("total", "trainable", "non_trainable")
            if kind == "total" or old[kind] != new[kind]]


def _summary_cell(entry: dict) -> str:
    ins = ", ".join(f"{t['name']} {t['shape']}" for t in entry["inputs"])
    outs = ", ".join(f"{t['name']} {t['shape']}" for t in entry["outputs"])
    return (f"inputs {ins}; outputs {outs}; {entry['nodes']} nodes; "
            f"{entry['params']['total']:,} params")


def _model_rows(entry: dict) -> list:
    name = entry["name"]
    if entry["status"] == "added":
        return [("model added", name, None, _summary_cell(entry))]
    if entry["status"] == "removed":
        return [("model removed", name, _summary_cell(entry), None)]
    rows = [("model trainable", name, _value(t["old"]), _value(t["new"]))
            for t in entry["trainable"]]
    rows += _interface_rows(name, "input", entry["inputs"])
    rows += _interface_rows(name, "output", entry["outputs"])
    nodes = entry["nodes"]
    rows += [("node added", n["node"], None, _call(n)) for n in nodes["added"]]
    rows += [("node removed", n["node"], _call(n), None) for n in nodes["removed"]]
    rows += [("rewired", r["node"], ", ".join(r["old"]), ", ".join(r["new"]))
             for r in nodes["rewired"]]
    rows += [("shape", f"{s['tensor']} ({s['node']})", s["old"], s["new"])
             for s in nodes["shapes"]]
    rows += [("sharing", s["layer"], f"{s['old']} call(s)", f"{s['new']} calls: {s['now']}")
             for s in entry["sharing"]]
    rows += [("effective trainable", t["layer"], _flag(t["old"]), _flag(t["new"]))
             for t in entry["effective_trainable"]]
    if any(entry["params"]["delta"].values()):
        rows += _params_rows(entry["params"])
    return rows


def _flag(trainable: bool) -> str:
    return "trainable" if trainable else "frozen"


def _training_rows(training: list) -> list:
    rows = []
    for job in training:
        if job["status"] != "changed":
            rows.append((f"job {job['status']}", job["job"], None, None))
        rows += [("training", f"{job['job']}.{c['key']}", _value(c["old"]), _value(c["new"]))
                 for c in job["changes"]]
    return rows


def _listed(items: list, key: str) -> str:
    shown = ", ".join(i[key] for i in items[:MAX_LISTED_WEIGHTS])
    more = len(items) - MAX_LISTED_WEIGHTS
    return shown + (f" and {more} more" if more > 0 else "")


def _weight_rows(report: dict) -> list:
    rows = []
    if report["loads"]:
        renamed = [w for w in report["loads"] if w["key"] != w["new_key"]]
        same = [w for w in report["loads"] if w["key"] == w["new_key"]]
        if same:
            rows.append(("loads unchanged", f"{len(same)} weight(s)", None,
                         _listed(same, "new_key")))
        rows += [("loads renamed", w["new_key"], w["key"], w["new_key"]) for w in renamed]
    rows += [("changes shape", w["new_key"], w["old"], w["new"] + " (initialised)")
             for w in report["reshaped"]]
    rows += [("new, initialised", w["key"], None, w["shape"]) for w in report["new"]]
    rows += [("dropped", w["key"], w.get("why", "no such weight in the new spec"), None)
             for w in report["dropped"]]
    rows += [("not loadable", w["key"], w["problem"], None) for w in report["unusable"]]
    if report["not_carried"]:
        rows.append(("not carried over", f"{len(report['not_carried'])} entries",
                     "optimizer/loss state", None))
    mismatch = report["old_spec_mismatch"]
    rows += [("old spec mismatch", note, None, None) for note in mismatch[:MAX_LISTED_WEIGHTS]]
    if mismatch:
        rows.append(("next", "are these the OLD spec's weights? if they were trained with "
                     "other params, pass them with --set-old NAME=VALUE", None, None))
    return rows


def sections(diff) -> list:
    """``[(title, rows)]`` with rows ``(change, where, before, after)``; empty ones left out."""
    parts = [("params", [("param", p["name"], _value(p["old"]), _value(p["new"]))
                         for p in diff.params]),
             ("layers", _layer_rows(diff.layers))]
    parts += [(f"model {m['name']}", _model_rows(m)) for m in diff.models]
    parts.append(("training", _training_rows(diff.training)))
    if diff.weights is not None:
        ready = "yes" if diff.weights["fine_tune_ready"] else "partly"
        parts.append((f"weights {diff.weights['file']} (fine-tune from it: {ready})",
                      _weight_rows(diff.weights)))
    return [(title, rows) for title, rows in parts if rows]


def _verdict(diff) -> str:
    if diff.has_model_changes:
        return "model changes"
    return "no model change (comments and formatting only)"


# -- text ---------------------------------------------------------------------------------
def _text_row(change, where, old, new) -> str:
    if old is None and new is None:
        return f"  {change}: {where}"
    if old is None:
        return f"  {change}: {where}  {new}"
    if new is None:
        return f"  {change}: {where}  (was {old})"
    return f"  {change}: {where}  {old} → {new}"


def to_text(diff) -> str:
    """Lines for a terminal; control characters from spec strings are shown escaped
    (a value holding an ANSI escape must not repaint the reader's terminal)."""
    lines = [f"--- {diff.old}", f"+++ {diff.new}"]
    for title, rows in sections(diff):
        lines.append(title)
        lines += [_text_row(*row) for row in rows]
    lines.append(_verdict(diff))
    return "\n".join(one_line(line) for line in lines) + "\n"


# -- markdown -----------------------------------------------------------------------------
def code(text) -> str:
    """``text`` as a Markdown code span inside a table: literal (no HTML, no mentions),
    fenced by more backticks than it contains, pipes escaped (GFM tables split on them)."""
    text = str(text).replace("\n", " ").replace("|", "\\|")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text, as_code: bool = False) -> str:
    """A table cell from spec text: escaped so it cannot open HTML, mention anyone
    (``@team`` in a param value) or end the cell."""
    if text is None:
        return ""
    if as_code:
        return code(text)
    return (html.escape(str(text), quote=False).replace("@", "&#64;")
            .replace("|", "\\|").replace("\n", " "))


def to_markdown(diff) -> str:
    """A compact table for a pull-request comment (one table, one row per change)."""
    title = f"#### {code(diff.old)} → {code(diff.new)}: {_verdict(diff)}"
    found = sections(diff)
    if not found:
        return title + "\n"
    lines = [title, "", "| | change | where | before | after |", "|---|---|---|---|---|"]
    for heading, rows in found:
        for i, (change, where, old, new) in enumerate(rows):
            label = f"**{_cell(heading)}**" if i == 0 else ""
            lines.append(f"| {label} | {_cell(change)} | {_cell(where, as_code=True)} | "
                         f"{_cell(old)} | {_cell(new)} |")
    return "\n".join(lines) + "\n"
