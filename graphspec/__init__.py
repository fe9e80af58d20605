"""graphspec: neural-network graphs declared in YAML, compiled to numpy.

Pipeline: ``spec`` (load + validate) -> ``compiler`` -> ``graph`` (layers, nodes,
tensors) -> ``autodiff``/``ops`` (execution) -> ``train`` -> ``cli``.
"""
__version__ = "0.1.0"
