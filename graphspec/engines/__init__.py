"""Engines that run a compiled model over many rows: embedded (in-process batches), dask."""
