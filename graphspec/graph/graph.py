"""A compiled spec: every layer instance, every model, and the weights they share."""
from __future__ import annotations

import numpy as np

from ..autodiff import Variable
from ..errors import InputError
from ..initializers import initialize
from ..io.arrays import check_weight
from ..io.files import load_npz, save_npz
from ..io.metadata import (META_KEY, check_compatible, make_metadata, metadata_array,
                           read_metadata)
from ..io.modelfile import save_model

# Entries of a weights file that are not layer weights: optimizer slots, loss state, the
# trainer's run record, and the model-file members (metadata, spec text; io/modelfile.py).
_MODEL_FILE_MEMBERS = "__graphspec"
_NOT_WEIGHTS = ("optimizer/", "state/", "trainer/", _MODEL_FILE_MEMBERS)


class Graph:
    def __init__(self, file: str, layers: dict, models: dict, training: dict,
                 dtype: str = "float32", spec: dict | None = None):
        self.file = file
        self.layers = layers            # name -> Layer (declared, inline and wrapped)
        self.models = models            # name -> Model
        self.training = training or {}  # the spec's training jobs (raw config)
        self.dtype = dtype
        self.spec = spec
        self.params: dict = {}          # the spec's params as used (declared, then --set)
        # What the file the weights came from records (io/metadata.py: its CSV columns and
        # vocabularies); for a model file, its spec text and path.
        self.metadata: dict | None = None
        self.spec_text: str | None = None
        self.model_file: str | None = None
        self.seed = None
        self.warnings: list = []        # the compiler's located warnings (SpecError)
        self._rng = None                # made on first use: numpy.random costs a cold start
        for model in models.values():
            model.graph = self

    # -- randomness -------------------------------------------------------------------
    def rng(self, seed: int | None = None) -> np.random.Generator:
        """The graph's generator, or a fresh one for an explicit seed."""
        if seed is not None:
            return np.random.default_rng(seed)
        if self._rng is None:
            self._rng = np.random.default_rng()
        return self._rng

    # -- weights ----------------------------------------------------------------------
    def initialize(self, seed: int | None = None) -> None:
        """Keras' default initializers, in declaration order, from one seeded generator."""
        self.seed = seed
        rng = np.random.default_rng(seed)
        for layer in self.layers.values():
            layer.weights = {
                name: Variable(initialize(spec.initializer, spec.shape, rng, self.dtype),
                               requires_grad=True, name=f"{layer.name}/{name}")
                for name, spec in layer.weight_shapes.items()}
        self._rng = np.random.default_rng(None if seed is None else seed + 1)

    def weights(self) -> dict:
        """Every weight keyed ``layer_name/weight_name``, e.g. ``dense_1/kernel``."""
        return {f"{layer.name}/{name}": var
                for layer in self.layers.values() for name, var in layer.weights.items()}

    def weight_specs(self) -> dict:
        return {f"{layer.name}/{name}": spec
                for layer in self.layers.values() for name, spec in layer.weight_shapes.items()}

    def save_weights(self, path, extra: dict | None = None) -> None:
        """Write every weight, ``extra`` entries (optimizer state...) and the metadata that
        makes the file self-describing (spec, model, params, architecture fingerprint;
        :mod:`graphspec.io.metadata`) as one ``.npz``, atomically."""
        arrays = {key: var.data for key, var in self.weights().items()}
        arrays.update(extra or {})
        arrays.setdefault(META_KEY, metadata_array(make_metadata(self)))
        save_npz(path, arrays)

    def save_model(self, path, model_name: str | None = None, **metadata) -> None:
        """One file to hand over: spec text, params, weights and metadata
        (``graphspec.load_model(path)`` reads it back; so do the commands, as SPEC)."""
        save_model(self, path, model_name=model_name, **metadata)

    def load_weights(self, path, strict: bool = True) -> dict:
        """Load ``path`` into the weights; refuse it whole if anything does not fit.

        ``strict=False`` loads the weights the file has and leaves the others as they
        are (reusing a trained sub-model in a bigger spec); present weights must still
        fit exactly. Returns the entries that are not weights (optimizer and loss
        state) for the trainer to use.
        """
        arrays = load_npz(path)
        meta = read_metadata(arrays, str(path))
        check_compatible(meta, self, str(path), strict)
        self.set_weights(arrays, source=str(path), strict=strict)
        if meta is not None:
            self.metadata = meta
        return {k: v for k, v in arrays.items()
                if k not in self.weight_specs() and not k.startswith(_MODEL_FILE_MEMBERS)}

    def set_weights(self, arrays: dict, source: str = "weights", strict: bool = True) -> None:
        """Put ``arrays`` (keyed ``layer/weight``) into the weights, all or nothing.

        Every array is checked by :func:`graphspec.io.arrays.check_weight` (shape, a
        floating dtype, finite after the cast to the graph's dtype). Under ``strict``
        every weight must be there and every key must name one (optimizer, loss-state
        and trainer entries of a checkpoint excepted)."""
        specs = self.weight_specs()
        if not strict:
            specs = {k: v for k, v in specs.items() if k in arrays}
        problems = []
        for key, spec in specs.items():
            if key not in arrays:
                problems.append(f"missing '{key}' {tuple(spec.shape)}")
                continue
            problem = check_weight(key, arrays[key], spec.shape, self.dtype)
            if problem:
                problems.append(problem)
        if strict:
            problems += [f"unexpected '{k}' (no such layer weight in the spec)"
                         for k in arrays if k not in specs and not k.startswith(_NOT_WEIGHTS)]
        if problems:
            shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                               if len(problems) > 5 else "")
            spec = "SPEC" if str(self.file).startswith("<") else self.file   # loads(): no file
            raise InputError(f"{source} does not match the spec: {shown} (was it written "
                             "for another spec or other --set params? compare with "
                             f"`graphspec inspect-nodes {spec} --weights {source}`)")
        for key, var in self.weights().items():
            if key in specs:
                var.data = arrays[key].astype(self.dtype, copy=True)

    # -- introspection ------------------------------------------------------------------
    def nodes(self, model: str | None = None, layer: str | None = None) -> list:
        """Every node of every layer instance, in call order (``inspect-nodes``); an
        unknown ``model`` is an error, as everywhere else."""
        if model is not None:
            self.model(model)
        out = []
        for candidate in list(self.layers.values()) + list(self.models.values()):
            if layer is not None and candidate.name != layer:
                continue
            for node in candidate.inbound_nodes:
                if model is None or node.model == model:
                    out.append(node)
        return out

    def model(self, name: str | None = None):
        """The model called ``name``; the only one if the spec has one and no name is given."""
        if name is None:
            if len(self.models) == 1:
                return next(iter(self.models.values()))
            raise InputError(f"{self.file} defines {len(self.models)} models "
                             f"({', '.join(self.models)}): choose one with --model NAME")
        if name not in self.models:
            raise InputError(f"{self.file} has no model '{name}' "
                             f"(models: {', '.join(self.models)})")
        return self.models[name]
