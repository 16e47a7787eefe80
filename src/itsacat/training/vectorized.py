"""The vectorized engine: each minibatch is a few matrix products in numpy. It is the
reference for the other engines and the fastest on a CPU.

First-layer shortcut. The first layer dominates the work (12288 inputs against 20, 7 and 5
neurons in the reference network), and per minibatch its two skinny products W[1]·X_b and
dZ[1]·X_bᵀ, plus the gather of X_b, are limited by memory traffic, not arithmetic. Within an
epoch, though, W[1] only changes by sums of dZ[1]_j·X_jᵀ/m_j, and the inputs never change. So
for minibatch k

    W[1]_k · X_k = W[1]_0 · X_k - lr · Σ_{j<k} (dZ[1]_j / m_j) · (X_jᵀ · X_k)

where W[1]_0·X covers every example at once and X_jᵀ·X_k is a block of the Gram matrix XᵀX,
computed once per run. The first layer's weights are formed once, when the strategy closes the
epoch, and the next epoch's W[1]·X follows from the same factors and the Gram matrix. An
epoch of the reference network then makes one wide product instead of eight, and no gathers.

The mathematics is the same; the rounding order differs (near 1e-15 in float64). The shortcut
is used while the Gram matrix stays small (`GRAM_MAX_EXAMPLES`); larger data sets take the
plain path, one forward and backward pass per minibatch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from itsacat.nn import (
    ACTIVATIONS,
    STRATEGIES,
    Gradients,
    MinibatchOutcome,
    NetworkSpec,
    Parameters,
    backward,
    cost,
    forward,
    hidden_delta,
    layer_backward,
    layer_forward,
    output_delta,
    partition,
    update,
)
from itsacat.training.engine import EpochResult, register_engine

# Above this many examples the m×m Gram matrix costs more memory and time than it saves.
GRAM_MAX_EXAMPLES = 2048
# W[1]·X is carried from epoch to epoch through the Gram matrix and recomputed at epochs that
# are multiples of this. Checkpoints fall on the same multiples by default, so a run resumed
# from one repeats the uninterrupted run bit for bit. A run resumed from another epoch (after
# Ctrl-C) differs by rounding only.
PRODUCT_REFRESH_EPOCHS = 100


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

    def __init__(self) -> None:
        self._gram: tuple[np.ndarray, np.ndarray] | None = None  # (X, XᵀX) of the last run
        self._product: tuple[np.ndarray, np.ndarray] | None = None  # (W[1], W[1]·X)

    def run_epoch(self, params: Parameters, X: np.ndarray, Y: np.ndarray, spec: NetworkSpec,
                  epoch: int) -> EpochResult:
        strategy = STRATEGIES[spec.strategy]
        batches = partition(Y.shape[1], spec.batch_size, spec.seed, epoch)
        if Y.shape[1] <= GRAM_MAX_EXAMPLES and spec.layers > 1:
            outcomes = self._minibatches_with_gram(params, X, Y, spec, batches, epoch)
        else:
            outcomes = self._minibatches(params, X, Y, spec, batches)
        next_params, epoch_cost = strategy.close_epoch(params, outcomes, spec.learning_rate)
        return EpochResult(_materialized(next_params, spec.layers), epoch_cost)

    def close(self) -> None:
        self._gram = self._product = None

    def _minibatches(self, params, X, Y, spec, batches) -> list[MinibatchOutcome]:
        """Run each minibatch as its own forward and backward pass."""
        chained = STRATEGIES[spec.strategy].chained
        rows = X.T  # (m, n_x), C-ordered: gathering rows copies contiguous examples
        outcomes: list[MinibatchOutcome] = []
        for indices in batches:
            start = outcomes[-1].params if chained and outcomes else params
            outcomes.append(step_minibatch(start, rows[indices].T, Y[:, indices], spec))
        return outcomes

    def _minibatches_with_gram(self, params, X, Y, spec, batches, epoch
                               ) -> list[MinibatchOutcome]:
        """Run the minibatches with the first-layer shortcut of the module docstring."""
        chained = STRATEGIES[spec.strategy].chained
        rows, lr = X.T, spec.learning_rate
        gram = self._gram_matrix(X)
        W1_X = self._first_layer_product(params.W[1], rows, epoch)  # (n_1, m)

        outcomes: list[MinibatchOutcome] = []
        factors: list[np.ndarray] = []  # dZ[1]/m_k of each minibatch so far, (n_1, m_k)
        for k, indices in enumerate(batches):
            start = outcomes[-1].params if chained and outcomes else params
            Z1 = W1_X[:, indices] + start.b[1]
            if chained and k:
                earlier = np.concatenate(batches[:k])
                Z1 -= lr * (np.concatenate(factors, axis=1) @ gram[np.ix_(earlier, indices)])

            minibatch_cost, grads, factor = _step_from_first_layer(start, Z1, Y[:, indices],
                                                                   spec)
            factors.append(factor)
            # W[1]'s gradient and next weights are formed only if the strategy reads them.
            owned = batches[:k + 1] if chained else [indices]
            steps = factors[:k + 1] if chained else [factor]
            grads.dW = _LayerOne(grads.dW, lambda f=factor, i=indices: f @ rows[i])
            next_params = _step_after_first_layer(start, grads, lr, spec.layers)
            next_params.W = _LayerOne(next_params.W, _first_layer_after(
                params.W[1], W1_X, steps, owned, rows, gram, lr, self._remember_product))
            outcomes.append(MinibatchOutcome(len(indices), minibatch_cost, grads, next_params))
        return outcomes

    def _first_layer_product(self, W1: np.ndarray, rows: np.ndarray, epoch: int) -> np.ndarray:
        """Return W[1]·X `(n_1, m)`: carried over from the previous epoch when W1 is the array
        this engine returned, computed afresh every `PRODUCT_REFRESH_EPOCHS` epochs so that
        rounding cannot accumulate."""
        if (epoch % PRODUCT_REFRESH_EPOCHS and self._product is not None
                and self._product[0] is W1):
            return self._product[1]
        return (rows @ W1.T).T

    def _remember_product(self, W1: np.ndarray, W1_X: np.ndarray) -> None:
        self._product = (W1, W1_X)

    def _gram_matrix(self, X: np.ndarray) -> np.ndarray:
        """Return XᵀX `(m, m)`, computed once for the arrays a run passes every epoch."""
        if self._gram is None or self._gram[0] is not X:
            rows = X.T
            self._gram = (X, rows @ rows.T)
        return self._gram[1]


class _LayerOne(dict):
    """Per-layer arrays whose layer 1 is computed on first use.

    A strategy needs the first layer's gradient or weights of only some minibatches (the last
    for sequential, the winner for best_batch), so the others are never formed.
    """

    def __init__(self, others: dict[int, np.ndarray], first: Callable[[], np.ndarray]):
        super().__init__(others)
        self._first = first

    def __missing__(self, l: int) -> np.ndarray:
        if l != 1:
            raise KeyError(l)
        self[1] = value = self._first()
        return value


def _step_from_first_layer(params: Parameters, Z1: np.ndarray, Y: np.ndarray,
                           spec: NetworkSpec) -> tuple[float, Gradients, np.ndarray]:
    """Finish a minibatch from its first-layer pre-activation Z[1] `(n_1, m_k)`.

    Returns the cost, the gradients of every layer but W[1], and dZ[1]/m_k, the factor of
    W[1]'s gradient (dW[1] = dZ[1]/m_k · X_kᵀ).
    """
    activations = spec.activations
    A = {1: ACTIVATIONS[activations[0]].forward(Z1)}
    Z = {1: Z1}
    for l in range(2, spec.layers + 1):
        Z[l], A[l] = layer_forward(params.W[l], params.b[l], A[l - 1], activations[l - 1])

    dW, db = {}, {}
    dZ = output_delta(A[spec.layers], Y)
    for l in range(spec.layers, 1, -1):
        dW[l], db[l], dA_prev = layer_backward(dZ, A[l - 1], params.W[l])
        dZ = hidden_delta(dA_prev, Z[l - 1], activations[l - 2])
    m = Y.shape[1]
    db[1] = np.sum(dZ, axis=1, keepdims=True) / m
    return cost(Z[spec.layers], Y), Gradients(dW, db), dZ / m


def _step_after_first_layer(params: Parameters, grads: Gradients, lr: float, layers: int
                            ) -> Parameters:
    """Take one gradient-descent step on every weight but W[1], and on every bias."""
    W = {l: params.W[l] - lr * grads.dW[l] for l in range(2, layers + 1)}
    b = {l: params.b[l] - lr * grads.db[l] for l in range(1, layers + 1)}
    return Parameters(W, b)


def _first_layer_after(W1: np.ndarray, W1_X: np.ndarray, factors: list[np.ndarray],
                       batches: list[np.ndarray], rows: np.ndarray, gram: np.ndarray,
                       lr: float, remember: Callable[[np.ndarray, np.ndarray], None]
                       ) -> Callable[[], np.ndarray]:
    """Return a function forming W[1] after the steps of `factors` on `batches`.

    The function also hands `remember` the new W[1] with its product on every example,
    W[1]·X - lr·V·XᵀX, which costs a small m×m product instead of a wide one.
    """
    def form() -> np.ndarray:
        scaled = np.zeros((W1.shape[0], rows.shape[0]), dtype=W1.dtype)  # lr·V, (n_1, m)
        for factor, indices in zip(factors, batches, strict=True):
            scaled[:, indices] = factor
        scaled *= lr  # scaling the small factors spares a pass over the wide product
        step = scaled @ rows
        W1_next = np.subtract(W1, step, out=step)
        remember(W1_next, W1_X - scaled @ gram)
        return W1_next
    return form


def _materialized(params: Parameters, layers: int) -> Parameters:
    """Plain dictionaries with every layer formed, in layer order."""
    return Parameters({l: params.W[l] for l in range(1, layers + 1)},
                      {l: params.b[l] for l in range(1, layers + 1)})
