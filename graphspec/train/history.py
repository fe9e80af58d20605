"""Keras' ``History``: what ``Model.fit`` returns."""
from __future__ import annotations


class History:
    """Per-epoch logs of a training run, as Keras returns them from ``fit``.

    ``history``: ``{name: [value per epoch]}`` (loss, metrics, ``val_*``, ``skipped``),
    plain floats, so ``json.dump(h.history, f)`` works; ``epoch``: the 0-based epoch
    indices the lists cover (a resumed run's history starts at epoch 0 of the first
    run); ``params``: the run's epochs, batch size and steps per epoch.
    """

    def __init__(self, history: dict, params: dict | None = None):
        self.history = {k: [float(v) for v in values] for k, values in history.items()}
        length = max((len(v) for v in self.history.values()), default=0)
        self.epoch = list(range(length))
        self.params = dict(params or {})

    # Read access by name (``h["loss"]``) for code written when fit returned the dict.
    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key):
        return key in self.history

    def keys(self):
        return self.history.keys()

    def items(self):
        return self.history.items()

    def __repr__(self):
        return f"<History epochs={len(self.epoch)} keys={sorted(self.history)}>"
