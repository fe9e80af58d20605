"""graphspec's predict against Keras' predict (torch backend) on the architectures of
issue 14: the five keras.applications models of tests/interop/test_keras_applications.py
(built by that test's helpers, random weights, non-trivial batch-norm statistics) and the
two text models of tests/interop/test_text_models.py (masked LSTM / Bidirectional LSTM
classifiers, Transformer encoder). Each is saved as .keras, imported (import_keras), and
both sides predict the same batch: warmed up, then the median of several runs.

    python bench/keras_predict.py [--runs 5] [--image 64] [--image-batch 8]
                                  [--text-batch 256] [--only ResNet50,lstm]

Prints: architecture, max |graphspec - Keras|, that relative to max |Keras output|,
graphspec ms, Keras ms (medians), graphspec / Keras (the median of per-round ratios,
one call of each per round, alternating order). Not a test (a few minutes); the same
box, process and threads for both (torch's own thread count, numpy's BLAS default).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "interop")]

import numpy as np  # noqa: E402


def _timed(ours, theirs, runs: int) -> tuple:
    """Median ms of each, and the median over rounds of the per-round ratio: both warmed
    up twice, then ``runs`` rounds timing one call of each, alternating which goes first
    (the box's speed drifts; a round compares the two under the same conditions)."""
    for fn in (ours, theirs, ours, theirs):
        fn()
    times, ratios = ([], []), []
    for i in range(runs):
        pair = []
        for fn in ((ours, theirs) if i % 2 == 0 else (theirs, ours)):
            start = time.perf_counter()
            fn()
            pair.append(time.perf_counter() - start)
        a, b = pair if i % 2 == 0 else pair[::-1]
        times[0].append(a)
        times[1].append(b)
        ratios.append(a / b)
    return (1000 * statistics.median(times[0]), 1000 * statistics.median(times[1]),
            statistics.median(ratios))


def _cases(keras, args):
    import test_keras_applications as apps
    import test_text_models as text
    apps.SIZE = (args.image, args.image, 3)
    rng = np.random.default_rng(2)
    for name, build in apps.applications(keras).items():
        def make(name=name, build=build):
            keras.utils.set_random_seed(0)
            low, high = (-1, 1) if name == "MobileNetV2" else (0, 255)
            calibration = rng.uniform(low, high, (16,) + apps.SIZE).astype("float32")
            model = apps.with_moving_statistics(keras, build(), calibration)
            x = rng.uniform(low, high, (args.image_batch,) + apps.SIZE).astype("float32")
            return model, [x]
        yield f"{name} ({args.image}x{args.image}, batch {args.image_batch})", make

    def lstm(bidirectional):
        def make():
            keras.utils.set_random_seed(7)
            tokens = np.concatenate([text.padded(1, "right", batch=args.text_batch // 2),
                                     text.padded(2, "left", batch=args.text_batch // 2)])
            return text.lstm_classifier(keras, bidirectional), [tokens]
        return make

    def encoder():
        keras.utils.set_random_seed(8)
        tokens = np.concatenate([text.padded(3, "right", batch=args.text_batch // 2),
                                 text.padded(4, "left", batch=args.text_batch // 2)])
        return text.transformer_encoder(keras), [tokens, text.positions_of(tokens)]
    batch = f"batch {args.text_batch}, masked"
    yield f"LSTM text classifier ({batch})", lstm(False)
    yield f"Bidirectional LSTM + masked mean ({batch})", lstm(True)
    yield f"Transformer encoder, 2 blocks ({batch})", encoder


def measure(keras, make, runs: int, workdir: Path) -> tuple:
    from graphspec import api
    from graphspec.interop.keras_import import import_keras
    model, feeds = make()
    path = workdir / f"{model.name}.keras"
    model.save(path)
    result = import_keras(str(path))
    graph = api.loads(result.text, seed=0, name=str(path))
    graph.set_weights(result.weights)
    top = graph.model(result.renamed.get(model.name, model.name))
    named = dict(zip(top.input_names, feeds))
    keras_in = feeds[0] if len(feeds) == 1 else feeds
    batch = len(feeds[0])
    want = np.asarray(model.predict(keras_in, batch_size=batch, verbose=0), np.float64)
    got = np.asarray(top.predict(named)[top.output_names[0]], np.float64)
    diff = float(np.abs(got - want).max())
    rel = diff / float(np.abs(want).max())
    return (diff, rel) + _timed(lambda: top.predict(named),
                                lambda: model.predict(keras_in, batch_size=batch, verbose=0),
                                runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--image", type=int, default=64, help="image side (>= 32)")
    parser.add_argument("--image-batch", type=int, default=8)
    parser.add_argument("--text-batch", type=int, default=256)
    parser.add_argument("--only", default="", help="comma-separated name prefixes")
    args = parser.parse_args(argv)
    import keras
    import torch
    wanted = [w.strip().lower() for w in args.only.split(",") if w.strip()]
    rows = []
    print(f"keras {keras.__version__} ({keras.backend.backend()}), torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), numpy "
          f"{np.__version__}; {args.runs} rounds after 2 warm-up calls of each")
    with tempfile.TemporaryDirectory() as tmp:
        for label, make in _cases(keras, args):
            if wanted and not any(label.lower().startswith(w) for w in wanted):
                continue
            rows.append((label,) + measure(keras, make, args.runs, Path(tmp)))
            print(f"  done: {label}", file=sys.stderr, flush=True)
    width = max([len(r[0]) for r in rows] + [12])
    print(f"{'architecture'.ljust(width)}  {'max abs diff':>12}  {'max rel diff':>12}  "
          f"{'graphspec ms':>12}  {'keras ms':>9}  {'ratio':>6}")
    for label, diff, rel, ours, theirs, ratio in rows:
        print(f"{label.ljust(width)}  {diff:12.2e}  {rel:12.2e}  {ours:12.1f}  "
              f"{theirs:9.1f}  {ratio:6.2f}")
    print("ratio: graphspec / Keras, the median over rounds of one call each (alternating "
          "order); load average " + " ".join(open("/proc/loadavg").read().split()[:3])
          if os.path.exists("/proc/loadavg") else "")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
