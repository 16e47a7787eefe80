"""A trained network ready to predict: its spec, its parameters and the names of its classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from itsacat.nn.network import Parameters, predict_proba
from itsacat.nn.spec import NetworkSpec


@dataclass
class Model:
    """A network that maps input columns `(n_x, m)` scaled to [0, 1] to class probabilities.

    `class_names[1]` is the positive class, the one whose probability the output neuron gives.
    """

    spec: NetworkSpec
    params: Parameters
    class_names: tuple[str, str] = ("non-cat", "cat")

    @property
    def n_x(self) -> int:
        return self.params.W[1].shape[1]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Return the probability of the positive class for each column of X, shape `(m,)`."""
        return predict_proba(self.params, X.astype(self.spec.dtype, copy=False),
                             self.spec.activations)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the predicted class index (0 or 1) for each column of X, shape `(m,)`."""
        return (self.predict_proba(X) > 0.5).astype(np.int64)
