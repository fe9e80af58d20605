"""The benchmarks. Each takes the :class:`Context` and records into the report.

graphspec is always measured through its public path: a spec file (``bench/specs/``)
or generated spec text, ``graphspec.load``/``loads``, ``graph.trainer()`` and
``Trainer.train_on_batch`` (what ``fit`` calls per batch, on data it has already
checked once), ``Model.predict``.
"""
from __future__ import annotations

import gc
import os
import tempfile
import tracemalloc
from dataclasses import dataclass

import numpy as np

import graphspec
from graphspec.layers.registry import REGISTRY

from . import numpy_refs, specgen, torch_refs
from .harness import Report, alternate, paired_ratio, time_once

SPECS = os.path.join(os.path.dirname(__file__), "specs")
BATCHES = 8   # distinct batches each variant cycles through


@dataclass
class Context:
    report: Report
    torch: object          # the torch module, or None
    threads: int
    quick: bool

    @property
    def budget(self) -> float:
        """Seconds of timed calls per timing group."""
        return 1.5 if self.quick else 8.0

    @property
    def block(self) -> float:
        """Seconds of consecutive calls per block: several steps of a training loop's
        steady state, short enough for many rounds (see ``harness.paired_ratio``)."""
        return 0.1


def _cycle(batches):
    """A callable returning the batches of ``batches`` in turn."""
    state = {"i": 0}

    def next_batch():
        state["i"] = (state["i"] + 1) % len(batches)
        return batches[state["i"]]
    return next_batch


def _one_hot(rng, batch, classes=10):
    return np.eye(classes, dtype=np.float32)[rng.integers(0, classes, batch)]


def _trainer_batches(trainer, data):
    """Inputs and targets as ``fit`` hands them to ``train_on_batch`` (checked once)."""
    out = []
    for item in data:
        inputs, targets, _ = trainer.split_data(item)
        out.append((inputs, targets))
    return out


def _missing(*types):
    return [t for t in types if t not in REGISTRY]


def _first_losses(gs_step, torch_step, numpy_step):
    """The first step's loss of each implementation from identical weights and batch: a
    check that the three programs compute the same thing before they are timed."""
    losses = {"graphspec": gs_step()}
    if torch_step is not None:
        losses["torch"] = torch_step()
    if numpy_step is not None:
        losses["numpy"] = numpy_step()
    text = ", ".join(f"{k} {v:.6f}" for k, v in losses.items())
    print(f"   first-step loss (same weights, same batch): {text}")
    return losses


# -- MLP ------------------------------------------------------------------------------------

def mlp(ctx: Context) -> None:
    report, torch = ctx.report, ctx.torch
    name, batch = "mlp", 128
    report.section(name, f"MLP 784-256-256-10 (relu, softmax + categorical crossentropy, "
                         f"Adam), batch {batch}, float32")
    graph = graphspec.load(os.path.join(SPECS, "mlp.yaml"), seed=0)
    model, trainer = graph.model("mlp"), graph.trainer()
    rng = np.random.default_rng(1)
    data = [{"pixels": rng.standard_normal((batch, 784)).astype(np.float32),
             "digit": _one_hot(rng, batch)} for _ in range(BATCHES)]
    weights = [(graph.weights()[f"{n}/kernel"].data, graph.weights()[f"{n}/bias"].data)
               for n in ("dense_1", "dense_2", "predictions")]
    ref = numpy_refs.MLP(weights, batch)
    tref = torch_refs.mlp(torch, weights) if torch else None
    gs_batches = _trainer_batches(trainer, data)
    t_batches = [(torch.from_numpy(d["pixels"]), torch.from_numpy(d["digit"]))
                 for d in data] if torch else []
    losses = _first_losses(
        lambda: trainer.train_on_batch(*gs_batches[0])["loss"],
        (lambda: tref.train(*t_batches[0])) if torch else None,
        lambda: ref.step(data[0]["pixels"], data[0]["digit"]))
    report.value(name, "first_step_loss", losses)

    gs_next, np_next, g_next = _cycle(gs_batches), _cycle(data), _cycle(data)
    fns = {"graphspec": lambda: trainer.train_on_batch(*gs_next())}
    if torch:
        t_next = _cycle(t_batches)
        fns["torch"] = lambda: tref.train(*t_next())

    def numpy_step():
        d = np_next()
        ref.step(d["pixels"], d["digit"])
    fns["numpy (hand-written)"] = numpy_step
    fns["GEMMs alone"] = lambda: ref.gemms(g_next()["pixels"])
    timings = alternate(fns, ctx.budget, block_seconds=ctx.block)
    report.timings(name, "train step", timings)
    _ratios(report, name, "train", timings)
    if torch:
        report.target("MLP train step / PyTorch", _r(timings, "graphspec", "torch"), 0.8)
    report.target("MLP train step / hand-written numpy",
                  _r(timings, "graphspec", "numpy (hand-written)"), 1.15)

    p_next, n_next, f_next = (_cycle([d["pixels"] for d in data]) for _ in range(3))
    fns = {"graphspec": lambda: model.predict(p_next())}
    if torch:
        tp_next = _cycle([b[0] for b in t_batches])
        fns["torch"] = lambda: tref.predict(tp_next())
    fns["numpy (hand-written)"] = lambda: ref.predict(n_next())
    fns["GEMMs alone"] = lambda: ref.forward_gemms(f_next())
    timings = alternate(fns, ctx.budget, block_seconds=ctx.block)
    report.timings(name, "predict", timings)
    _ratios(report, name, "predict", timings)
    if torch:
        report.target("MLP predict / PyTorch", _r(timings, "graphspec", "torch"), 1.0)
    print()


def _r(timings, a, b) -> float:
    return paired_ratio(timings[a], timings[b])


def _ratios(report, name, what, timings):
    for ref in timings:
        if ref != "graphspec":
            report.ratio(name, f"{what}: graphspec / {ref}", _r(timings, "graphspec", ref))
    if "torch" in timings and "GEMMs alone" in timings:
        report.ratio(name, f"{what}: torch / GEMMs alone", _r(timings, "torch", "GEMMs alone"))


# -- CNN ------------------------------------------------------------------------------------

def _cnn_gemms(batch):
    """The GEMMs of an im2col CNN step (conv: (pixels, taps*cin) @ (taps*cin, cout))."""
    p1, p2 = batch * 26 * 26, batch * 11 * 11
    return numpy_refs.GemmFloor([
        (p1, 9, 32, "nn"), (p2, 288, 64, "nn"), (batch, 1600, 10, "nn"),      # forward
        (1600, batch, 10, "tn"), (batch, 10, 1600, "nt"),                     # dense
        (288, p2, 64, "tn"), (p2, 64, 288, "nt"),                             # conv_2
        (9, p1, 32, "tn"),                                                    # conv_1
    ])


def cnn(ctx: Context) -> None:
    report, torch = ctx.report, ctx.torch
    name, batch = "cnn", 64
    title = (f"CNN Conv2D(32,3)-MaxPool-Conv2D(64,3)-MaxPool-Flatten-Dense(10) on 28x28x1, "
             f"batch {batch}, float32")
    missing = _missing("Conv2D", "MaxPooling2D")
    if missing:
        report.skip(name, title, f"{', '.join(missing)} not registered")
        return
    report.section(name, title)
    graph = graphspec.load(os.path.join(SPECS, "cnn.yaml"), seed=0)
    model, trainer = graph.model("cnn"), graph.trainer()
    rng = np.random.default_rng(2)
    data = [{"image": rng.random((batch, 28, 28, 1), dtype=np.float32),
             "digit": _one_hot(rng, batch)} for _ in range(BATCHES)]
    weights = {k: v.data for k, v in graph.weights().items()}
    tref = torch_refs.cnn(torch, weights) if torch else None
    gs_batches = _trainer_batches(trainer, data)
    t_batches = [(torch.from_numpy(np.ascontiguousarray(d["image"].transpose(0, 3, 1, 2))),
                  torch.from_numpy(d["digit"])) for d in data] if torch else []
    report.value(name, "first_step_loss", _first_losses(
        lambda: trainer.train_on_batch(*gs_batches[0])["loss"],
        (lambda: tref.train(*t_batches[0])) if torch else None, None))
    floor = _cnn_gemms(batch)
    gs_next = _cycle(gs_batches)
    fns = {"graphspec": lambda: trainer.train_on_batch(*gs_next())}
    if torch:
        t_next = _cycle(t_batches)
        fns["torch"] = lambda: tref.train(*t_next())
    fns["GEMMs alone (im2col)"] = floor.run
    timings = alternate(fns, ctx.budget, block_seconds=ctx.block)
    report.timings(name, "train step", timings)
    _ratios(report, name, "train", timings)
    if torch:
        report.target("CNN train step / PyTorch", _r(timings, "graphspec", "torch"), 1.0)
    p_next = _cycle([d["image"] for d in data])
    fns = {"graphspec": lambda: model.predict(p_next())}
    if torch:
        tp_next = _cycle([b[0] for b in t_batches])
        fns["torch"] = lambda: tref.predict(tp_next())
    timings = alternate(fns, ctx.budget / 2, block_seconds=ctx.block)
    report.timings(name, "predict", timings)
    _ratios(report, name, "predict", timings)
    if torch:
        report.target("CNN predict / PyTorch", _r(timings, "graphspec", "torch"), 1.0)
    print()


# -- LSTM -----------------------------------------------------------------------------------

def _lstm_gemms(batch, steps, features, units):
    g = 4 * units
    return numpy_refs.GemmFloor(
        [(batch * steps, features, g, "nn")] + [(batch, units, g, "nn")] * steps     # forward
        + [(batch, g, units, "nt")] * steps                                          # d h_prev
        + [(units, batch * steps, g, "tn"), (features, batch * steps, g, "tn")])     # d weights


def lstm(ctx: Context) -> None:
    report, torch = ctx.report, ctx.torch
    name, batch, steps, features, units = "lstm", 64, 50, 32, 64
    title = (f"LSTM({units}) over {steps} steps of {features} features -> Dense(1), mse, "
             f"Adam, batch {batch}, float32")
    missing = _missing("LSTM")
    if missing:
        report.skip(name, title, f"{', '.join(missing)} not registered")
        return
    report.section(name, title)
    graph = graphspec.load(os.path.join(SPECS, "lstm.yaml"), seed=0)
    model, trainer = graph.model("seq"), graph.trainer()
    rng = np.random.default_rng(3)
    data = [{"series": rng.standard_normal((batch, steps, features)).astype(np.float32),
             "value": rng.standard_normal((batch, 1)).astype(np.float32)}
            for _ in range(BATCHES)]
    weights = {k: v.data for k, v in graph.weights().items()}
    tref = torch_refs.lstm(torch, weights, units) if torch else None
    gs_batches = _trainer_batches(trainer, data)
    t_batches = [(torch.from_numpy(d["series"]), torch.from_numpy(d["value"]))
                 for d in data] if torch else []
    report.value(name, "first_step_loss", _first_losses(
        lambda: trainer.train_on_batch(*gs_batches[0])["loss"],
        (lambda: tref.train(*t_batches[0])) if torch else None, None))
    floor = _lstm_gemms(batch, steps, features, units)
    gs_next = _cycle(gs_batches)
    fns = {"graphspec": lambda: trainer.train_on_batch(*gs_next())}
    if torch:
        t_next = _cycle(t_batches)
        fns["torch"] = lambda: tref.train(*t_next())
    fns["GEMMs alone"] = floor.run
    timings = alternate(fns, ctx.budget, block_seconds=ctx.block)
    report.timings(name, "train step", timings)
    _ratios(report, name, "train", timings)
    if torch:
        report.target("LSTM train step / PyTorch", _r(timings, "graphspec", "torch"), 1.0)
    p_next = _cycle([d["series"] for d in data])
    fns = {"graphspec": lambda: model.predict(p_next())}
    if torch:
        tp_next = _cycle([b[0] for b in t_batches])
        fns["torch"] = lambda: tref.predict(tp_next())
    timings = alternate(fns, ctx.budget / 2, block_seconds=ctx.block)
    report.timings(name, "predict", timings)
    _ratios(report, name, "predict", timings)
    if torch:     # issue 11: predict <= 1.0x PyTorch
        report.target("LSTM predict / PyTorch", _r(timings, "graphspec", "torch"), 1.0)
    print()


# -- per-node overhead ----------------------------------------------------------------------

def chain(ctx: Context) -> None:
    report, torch = ctx.report, ctx.torch
    name, layers, units = "chain", 200, 16
    report.section(name, f"Per-node overhead: chain of {layers} Dense({units}, relu), "
                         "batch 1, predict")
    graph = graphspec.loads(specgen.chain_spec(layers, units), seed=0, name="chain")
    model = graph.model("chain")
    weights = [(graph.weights()[f"dense_{i}/kernel"].data,
                graph.weights()[f"dense_{i}/bias"].data) for i in range(layers)]
    ref = numpy_refs.Chain(weights)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((1, units)).astype(np.float32) for _ in range(BATCHES)]
    x_next, n_next = _cycle(xs), _cycle(xs)
    fns = {"graphspec": lambda: model.predict(x_next())}
    if torch:
        tref = torch_refs.chain(torch, weights)
        t_next = _cycle([torch.from_numpy(x) for x in xs])
        fns["torch"] = lambda: tref.predict(t_next())
    fns["numpy (hand-written)"] = lambda: ref.predict(n_next())
    timings = alternate(fns, ctx.budget, block_seconds=ctx.block)
    report.timings(name, f"predict, per node (µs = total / {layers})", timings, unit="us",
                   per=layers)
    per_node = {k: v.median / layers * 1e6 for k, v in timings.items()}
    report.value(name, "us_per_node", per_node)
    _ratios(report, name, "predict", timings)
    report.target("per-node predict overhead (µs/node)", per_node["graphspec"], 15.0, "µs")
    print()


# -- compile / validate scaling -------------------------------------------------------------

def scaling(ctx: Context) -> None:
    report = ctx.report
    name = "scaling"
    report.section(name, "Compile/validate scaling: generated specs (Dense, Activation, Add, "
                         "Dropout, Concatenate, inline layers); best of several runs")
    sizes = (100, 1000, 10000)
    repeats = {100: 5, 1000: 3, 10000: 1} if ctx.quick else {100: 9, 1000: 5, 10000: 3}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = os.path.join(tmp, f"generated_{n}.yaml")
            with open(path, "w") as fh:
                fh.write(specgen.scaling_spec(n))
            errors = graphspec.validate(path)
            if errors:
                raise RuntimeError(f"generated spec of {n} nodes is invalid: {errors[0]}")
            t_validate = time_once(lambda: graphspec.validate(path), repeats[n])
            t_load = time_once(lambda: graphspec.load(path, initialize=False), repeats[n])
            rows[n] = {"validate_s": t_validate, "load_s": t_load,
                       "bytes": os.path.getsize(path)}
    print(f"     {'nodes':>8}{'validate s':>14}{'load s':>12}{'growth (validate, load)':>30}")
    for i, n in enumerate(sizes):
        growth = ""
        if i:
            prev = rows[sizes[i - 1]]
            gv, gl = rows[n]["validate_s"] / prev["validate_s"], rows[n]["load_s"] / prev["load_s"]
            rows[n]["growth_validate"], rows[n]["growth_load"] = gv, gl
            growth = f"x{gv:.1f}, x{gl:.1f}"
        print(f"     {n:>8}{rows[n]['validate_s']:>14.3f}{rows[n]['load_s']:>12.3f}"
              f"{growth:>30}")
    report.benchmarks[name]["sizes"] = {str(k): v for k, v in rows.items()}
    big = rows[sizes[-1]]
    report.target("10,000-node spec: validate (s)", big["validate_s"], 2.0, "s")
    report.target("10,000-node spec: load(initialize=False) (s)", big["load_s"], 2.0, "s")
    report.target("growth per 10x nodes, 1k -> 10k, load (linear = 10)", big["growth_load"],
                  13.0, "x")
    print()


# -- peak memory ----------------------------------------------------------------------------

def _nbytes(arrays) -> int:
    return int(sum(a.nbytes for a in arrays))


def _measure_step(spec, model_name, data):
    """tracemalloc peak of one training step (after a warm-up step that creates the
    optimizer state), and the accounted sum of what a step must hold."""
    from graphspec.autodiff import Variable, recording
    from graphspec.layers.base import CallContext

    # Load once untraced: the first load in a process builds module-level caches (the
    # schema validator) that would otherwise count as the step's memory when this
    # benchmark runs alone (MLP 2.15x alone, 1.24x after the others).
    graphspec.load(os.path.join(SPECS, spec), seed=0)
    gc.collect()
    tracemalloc.start()
    try:
        graph = graphspec.load(os.path.join(SPECS, spec), seed=0)
        trainer = graph.trainer()
        inputs, targets, _ = trainer.split_data(data)
        trainer.train_on_batch(inputs, targets)          # creates the Adam slots
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        trainer.train_on_batch(inputs, targets)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    model = graph.model(model_name)
    params = [var.data for _, var in trainer.params]
    slots = [a for slots in trainer.job.optimizer.slots.values() for a in slots.values()]
    with recording(False):
        values = model.run([Variable(inputs[n]) for n in model.input_names],
                           CallContext(training=True))
    n_inputs = len(model.inputs)
    activations = [v.data for v in values[n_inputs:] if v is not None]
    accounted = {"weights": _nbytes(params), "gradients": _nbytes(params),
                 "optimizer_state": _nbytes(slots), "activations": _nbytes(activations)}
    total = sum(accounted.values())
    return {"peak_bytes": peak, "before_step_bytes": before, "accounted": accounted,
            "accounted_bytes": total, "ratio": peak / total}


def memory(ctx: Context) -> None:
    report = ctx.report
    name = "memory"
    report.section(name, "Peak memory (tracemalloc) of one training step vs weights + "
                         "gradients + optimizer state + live activations")
    rng = np.random.default_rng(5)
    cases = {"MLP": ("mlp.yaml", "mlp", {"pixels": rng.standard_normal((128, 784)).astype(
        np.float32), "digit": _one_hot(rng, 128)})}
    if not _missing("Conv2D", "MaxPooling2D"):
        cases["CNN"] = ("cnn.yaml", "cnn", {"image": rng.random((64, 28, 28, 1),
                                                                 dtype=np.float32),
                                            "digit": _one_hot(rng, 64)})
    else:
        print("     CNN skipped: Conv2D/MaxPooling2D not registered")
    print(f"     {'model':<6}{'peak MB':>10}{'accounted MB':>14}{'ratio':>8}   "
          "(weights / grads / optimizer / activations MB)")
    for label, (spec, model_name, data) in cases.items():
        row = _measure_step(spec, model_name, data)
        parts = " / ".join(f"{v / 1e6:.2f}" for v in row["accounted"].values())
        print(f"     {label:<6}{row['peak_bytes'] / 1e6:>10.2f}"
              f"{row['accounted_bytes'] / 1e6:>14.2f}{row['ratio']:>8.2f}   ({parts})")
        report.benchmarks[name][label] = row
        # The CNN's floor: every activation is held until the step ends, and the
        # gradient of the largest one (conv_1's output, 5.5 MB of 10.3) must exist
        # beside it while the first max pool's backward writes it (1.5x); patch-matrix
        # chunks, pooling indices and the next gradient sit on top.
        limit = {"MLP": 1.5, "CNN": 1.8}.get(label, 1.5)
        report.target(f"{label} train step peak memory / accounted sum", row["ratio"], limit)
    print()


CASES = {"mlp": mlp, "cnn": cnn, "lstm": lstm, "chain": chain, "scaling": scaling,
         "memory": memory}
