"""The vectorized engine: each minibatch is a few matrix products in numpy. It is the
reference for the other engines and the fastest on a CPU."""

from __future__ import annotations

import numpy as np

from itsacat.nn import (
    STRATEGIES,
    MinibatchOutcome,
    NetworkSpec,
    Parameters,
    backward,
    cost,
    forward,
    partition,
    update,
)
from itsacat.training.engine import EpochResult, register_engine


def step_minibatch(params: Parameters, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec
                   ) -> MinibatchOutcome:
    """Forward, cost, backward and one gradient-descent step on one minibatch."""
    AL, caches = forward(params, X, spec.activations)
    minibatch_cost = cost(caches[-1].Z, Y)
    grads = backward(params, caches, AL, Y, spec.activations)
    return MinibatchOutcome(Y.shape[1], minibatch_cost, grads,
                            update(params, grads, spec.learning_rate))


@register_engine("vectorized")
class VectorizedEngine:
    name = "vectorized"

    def run_epoch(self, params: Parameters, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  epoch: int) -> EpochResult:
        strategy = STRATEGIES[spec.strategy]
        rows = X.T  # (m, n_x), C-ordered: gathering rows copies contiguous examples
        outcomes: list[MinibatchOutcome] = []
        for indices in partition(Y.shape[1], spec.batch_size, spec.seed, epoch):
            start = outcomes[-1].params if strategy.chained and outcomes else params
            outcomes.append(step_minibatch(start, rows[indices].T, Y[:, indices], spec))
        next_params, epoch_cost = strategy.close_epoch(params, outcomes, spec.learning_rate)
        return EpochResult(next_params, epoch_cost)

    def close(self) -> None:
        pass
