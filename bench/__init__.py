"""graphspec benchmark suite (``python -m bench``, ``make bench``; not part of the tests).

Every benchmark runs graphspec and its references in one process, in one run,
alternating call by call after a warm-up, and reports medians and ratios
graphspec / reference. References: PyTorch (CPU, float32, same thread count as
numpy's BLAS), a hand-written numpy program of the same model and step
(:mod:`bench.numpy_refs`, the floor), and the bare GEMM time alone.
Results are printed as a table and written to ``bench/results.json``.
"""
