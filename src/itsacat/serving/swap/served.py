"""The model a service predicts with, and the checks a candidate passes before it serves."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from itsacat.data import N_X
from itsacat.errors import ItsacatError
from itsacat.nn import Model


class CandidateRejected(ItsacatError):
    """A model that loaded but cannot serve this service's input; the current one stays."""

    http_status = 500

    def __init__(self, source: str, problem: str):
        super().__init__("candidate_rejected", f"{source}: {problem}")


@dataclass(frozen=True)
class ServedModel:
    """An immutable snapshot: a loaded, verified model and the version it came from.

    Requests take one snapshot when they start and use it to the end, so a swap, which
    replaces the snapshot in one assignment, never mixes two versions in one response.
    """

    model: Model
    version: int | None  # the registry's model version; None for a model folder
    artifact_digest: str  # sha256 of the weights file that was verified when loading
    source: str  # where it was loaded from, for logs
    loaded_at: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        if self.version is None:
            return f"sha256 {self.artifact_digest[:12]}"
        return f"v{self.version}"


def check_candidate(model: Model, source: str) -> None:
    """Raise `CandidateRejected` unless `model` takes 64×64 RGB input and gives a probability."""
    if model.n_x != N_X:
        raise CandidateRejected(source, f"the first layer takes {model.n_x} inputs, expected "
                                f"{N_X} (64×64×3 pixels)")
    if model.spec.neurons[-1] != 1 or model.spec.activations[-1] != "sigmoid":
        raise CandidateRejected(source, "the output layer must be one sigmoid neuron, found "
                                f"{model.spec.neurons[-1]} {model.spec.activations[-1]} "
                                "neuron(s)")

    probe = np.full((N_X, 1), 0.5, dtype=model.spec.dtype)
    probability = float(model.predict_proba(probe)[0])
    if not 0.0 <= probability <= 1.0:
        raise CandidateRejected(source, f"it predicts {probability} on a gray picture, not a "
                                "probability; its weights are not finite")
