"""Engines that run a compiled model over many rows.

embedded.py     batches in this process; .npy inputs streamed through mapped windows
dask_engine.py  the same per-chunk functions as tasks on a Dask cluster (lazy import)
bundle.py       what a worker needs to rebuild the model: resolved spec JSON + weights
dask_plugin.py  ships a bundle (or a sweep's data) to every worker once
outputs.py      where output rows go: memory, .npy, DIR/NAME.npy, .npz — whole or not at all
progress.py     rows done, rows/s and ETA on stderr
sweep.py        a grid over spec params, one seeded training run per point
"""
