"""How the minibatches of one epoch are cut and how their results combine into the next weights.

`sequential`: ordinary minibatch SGD; each minibatch starts from the weights the previous one
left, so an epoch makes one update per minibatch.
`average`: synchronous data parallelism; every minibatch starts from the epoch's weights, their
gradients are averaged, weighted by minibatch size, and one update is made. Because the
weights are the sizes, this is exactly one step of full-batch gradient descent.
`best_batch`: the reference design's rule; every minibatch starts from the epoch's weights and
takes its own step, and the minibatch with the lowest cost wins the epoch.

Engines call `partition` and `Strategy.close_epoch`, so every engine cuts and combines alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from itsacat.nn.network import Gradients, Parameters, update


@dataclass
class MinibatchOutcome:
    """One minibatch's contribution: its size, its cost before the step, its gradients and
    the weights after its own step."""

    size: int
    cost: float
    grads: Gradients
    params: Parameters


def partition(m: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Shuffle the indices 0…m-1 for `epoch` and cut them into minibatches of `batch_size`.

    The shuffle depends only on (seed, epoch), so a resumed run and every engine draw the same
    minibatches without carrying random state. The last minibatch contains the remainder.
    """
    order = np.random.default_rng((seed, epoch)).permutation(m)
    return [order[start:start + batch_size] for start in range(0, m, batch_size)]


class Strategy:
    """Base of the strategies. `chained` is True when a minibatch starts from the previous
    minibatch's weights, and False when it starts from the weights the epoch started with."""

    name: str
    chained: bool

    def close_epoch(self, start: Parameters, outcomes: list[MinibatchOutcome],
                    learning_rate: float) -> tuple[Parameters, float]:
        """Return the weights the next epoch starts from and this epoch's cost."""
        raise NotImplementedError


def weighted_cost(outcomes: list[MinibatchOutcome]) -> float:
    """Mean of the minibatch costs weighted by size: the cost over every example of the epoch."""
    total = sum(outcome.size for outcome in outcomes)
    return sum(outcome.cost * outcome.size for outcome in outcomes) / total


class Sequential(Strategy):
    name = "sequential"
    chained = True

    def close_epoch(self, start, outcomes, learning_rate):
        return outcomes[-1].params, weighted_cost(outcomes)


class Average(Strategy):
    name = "average"
    chained = False

    def close_epoch(self, start, outcomes, learning_rate):
        total = sum(outcome.size for outcome in outcomes)
        share = [outcome.size / total for outcome in outcomes]
        dW = {l: sum(s * o.grads.dW[l] for s, o in zip(share, outcomes, strict=True))
              for l in start.W}
        db = {l: sum(s * o.grads.db[l] for s, o in zip(share, outcomes, strict=True))
              for l in start.b}
        return update(start, Gradients(dW, db), learning_rate), weighted_cost(outcomes)


class BestBatch(Strategy):
    name = "best_batch"
    chained = False

    def close_epoch(self, start, outcomes, learning_rate):
        # Ties go to the earliest minibatch so that every engine picks the same winner.
        best = min(range(len(outcomes)), key=lambda i: (outcomes[i].cost, i))
        return outcomes[best].params, outcomes[best].cost


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (Sequential(), Average(), BestBatch())}
