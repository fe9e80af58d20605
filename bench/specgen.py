"""Generated specs: the 200-layer chain (per-node overhead) and the scaling specs."""
from __future__ import annotations


def chain_spec(layers: int = 200, units: int = 16) -> str:
    """``layers`` distinct Dense(units, relu) instances called one after the other."""
    lines = ["graphspec: 1", f"description: chain of {layers} Dense({units}) layers",
             "layers:"]
    lines += [f"  dense_{i}: {{type: Dense, units: {units}, activation: relu}}"
              for i in range(layers)]
    lines += ["models:", "  chain:", "    inputs:", f"      x: {{shape: [{units}]}}",
              "    calls:"]
    previous = "x"
    for i in range(layers):
        lines.append(f"      - {{layer: dense_{i}, in: {previous}, out: h_{i}}}")
        previous = f"h_{i}"
    lines += [f"    outputs: [{previous}]", ""]
    return "\n".join(lines)


# One repeating pattern of layer kinds, so a generated spec exercises several layer
# types, merges (two inbound tensors) and inline layers, not only one code path.
_PATTERN = ("dense", "activation", "dense", "add", "dropout", "dense", "inline", "concat_dense")


def scaling_spec(nodes: int, units: int = 8) -> str:
    """A spec with exactly ``nodes`` calls (one node each), block-style YAML as a person
    would write it. Every call's layer is its own declared instance except the inline
    ones; merges take the two latest tensors."""
    layers, calls = [], []
    tensors = ["x"]
    for i in range(nodes):
        kind = _PATTERN[i % len(_PATTERN)]
        out = f"t{i}"
        last = tensors[-1]
        if kind == "dense":
            layers.append(f"  l{i}: {{type: Dense, units: {units}, activation: relu}}")
            calls.append(f"      - {{layer: l{i}, in: {last}, out: {out}}}")
        elif kind == "activation":
            layers.append(f"  l{i}: {{type: Activation, activation: tanh}}")
            calls.append(f"      - {{layer: l{i}, in: {last}, out: {out}}}")
        elif kind == "add":
            layers.append(f"  l{i}: {{type: Add}}")
            calls.append(f"      - {{layer: l{i}, in: [{tensors[-2]}, {last}], out: {out}}}")
        elif kind == "dropout":
            layers.append(f"  l{i}: {{type: Dropout, rate: 0.1}}")
            calls.append(f"      - {{layer: l{i}, in: {last}, out: {out}}}")
        elif kind == "inline":
            calls.append(f"      - layer: {{type: Dense, units: {units}, name: l{i}}}\n"
                         f"        in: {last}\n        out: {out}")
        else:  # concatenate the two latest tensors, then a Dense back to ``units``
            layers.append(f"  l{i}: {{type: Concatenate}}")
            calls.append(f"      - {{layer: l{i}, in: [{tensors[-2]}, {last}], out: {out}}}")
            tensors.append(out)
            continue
        tensors.append(out)
    # Concatenate doubles the width: a Dense after each brings it back (the next node in
    # the pattern is a Dense, since the pattern wraps around to "dense").
    return "\n".join(["graphspec: 1", f"description: generated spec with {nodes} nodes",
                      "layers:", *layers, "models:", "  generated:", "    inputs:",
                      f"      x: {{shape: [{units}]}}", "    calls:", *calls,
                      f"    outputs: [{tensors[-1]}]", ""])
