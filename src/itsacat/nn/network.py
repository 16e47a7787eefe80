"""Forward and backward passes of the multi-layer perceptron, written with numpy alone.

Shapes follow the reference design: examples are columns. `A[0]` is the input `(n_x, m)`,
`W[l]` is `(n_l, n_prev)`, `b[l]` is `(n_l, 1)`, `Z[l]` and `A[l]` are `(n_l, m)`. Layers are
numbered from 1 as in the mathematics, so `W[1]` is the first layer's weights.

`layer_forward` and `layer_backward` hold all the per-layer mathematics; the vectorized
engine calls them with a whole layer, the serverless engine with one neuron's row of `W`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from itsacat.nn.activations import ACTIVATIONS

if TYPE_CHECKING:
    from itsacat.nn.spec import NetworkSpec

Array = np.ndarray


@dataclass
class Parameters:
    """Learned state: `W[l]` and `b[l]` for l = 1…L."""

    W: dict[int, Array]
    b: dict[int, Array]

    @property
    def layers(self) -> int:
        return len(self.W)

    def copy(self) -> Parameters:
        return Parameters({l: W.copy() for l, W in self.W.items()},
                          {l: b.copy() for l, b in self.b.items()})

    def is_finite(self) -> bool:
        return all(np.isfinite(self.W[l]).all() and np.isfinite(self.b[l]).all()
                   for l in self.W)

    def max_abs_difference(self, other: Parameters) -> float:
        """Return the largest absolute difference between any weight or bias of two networks."""
        return max(float(np.max(np.abs(mine - other_array)))
                   for l in self.W
                   for mine, other_array in ((self.W[l], other.W[l]), (self.b[l], other.b[l])))


@dataclass
class Gradients:
    """`dW[l]` and `db[l]`, the cost's gradient with respect to `W[l]` and `b[l]`."""

    dW: dict[int, Array]
    db: dict[int, Array]


@dataclass
class LayerCache:
    """The values of one layer's forward pass that the backward pass needs."""

    A_prev: Array  # (n_prev, m)
    Z: Array  # (n_l, m)


def initialize(spec: NetworkSpec, n_x: int) -> Parameters:
    """Draw the initial weights for `spec` from its seed; biases start at zero.

    Each layer's weights are `randn(n_l, n_prev) * gain / sqrt(n_prev)` with the gain of the
    layer's activation: He initialisation for ReLU layers, 1/sqrt(fan-in) for sigmoid.
    """
    rng = np.random.default_rng(spec.seed)
    sizes = (n_x, *spec.neurons)
    W, b = {}, {}
    for l in range(1, spec.layers + 1):
        gain = ACTIVATIONS[spec.activations[l - 1]].init_gain
        W[l] = (rng.standard_normal((sizes[l], sizes[l - 1])) * gain
                / np.sqrt(sizes[l - 1])).astype(spec.dtype)
        b[l] = np.zeros((sizes[l], 1), dtype=spec.dtype)
    return Parameters(W, b)


def layer_forward(W: Array, b: Array, A_prev: Array, activation: str) -> tuple[Array, Array]:
    """Compute one layer (or one neuron, with W of one row): Z = W·A_prev + b, A = g(Z)."""
    # The same product written as (A_prevᵀ·Wᵀ)ᵀ: A_prev is usually the transposed view of
    # row-ordered examples, and BLAS runs this order about 1.3× faster on the wide first layer.
    Z = (A_prev.T @ W.T).T + b
    return Z, ACTIVATIONS[activation].forward(Z)


def forward(params: Parameters, X: Array, activations: tuple[str, ...]
            ) -> tuple[Array, list[LayerCache]]:
    """Run the network on `X` `(n_x, m)`; return `A[L]` `(1, m)` and every layer's cache."""
    A = X
    caches = []
    for l in range(1, params.layers + 1):
        A_prev = A
        Z, A = layer_forward(params.W[l], params.b[l], A_prev, activations[l - 1])
        caches.append(LayerCache(A_prev, Z))
    return A, caches


def predict_proba(params: Parameters, X: Array, activations: tuple[str, ...]) -> Array:
    """Return the probability of class 1 for each column of `X`, shape `(m,)`."""
    AL, _ = forward(params, X, activations)
    return AL[0]


def cost(ZL: Array, Y: Array) -> float:
    """Binary cross-entropy of the output layer, computed from its pre-activation `Z[L]`.

    Working from Z instead of the sigmoid's output keeps the cost exact and finite when the
    sigmoid rounds to exactly 0 or 1: log(1 + exp(z)) - y·z, with log1p(exp(-|z|)) so that
    exp never overflows.
    """
    with np.errstate(under="ignore"):
        losses = np.maximum(ZL, 0) - ZL * Y + np.log1p(np.exp(-np.abs(ZL)))
    return float(np.mean(losses))


def cross_entropy(AL: Array, Y: Array) -> float:
    """Binary cross-entropy from probabilities, for callers that only have `A[L]`.

    Probabilities are clipped to [eps, 1 - eps] of their dtype, so a saturated 0 or 1 costs
    -log(eps) (about 36 in float64) instead of infinity.
    """
    eps = np.finfo(np.result_type(AL, np.float32)).eps
    A = np.clip(AL, eps, 1.0 - eps)
    return float(-np.mean(Y * np.log(A) + (1.0 - Y) * np.log(1.0 - A)))


def output_delta(AL: Array, Y: Array) -> Array:
    """Return dZ[L] for a sigmoid output under cross-entropy: A[L] - Y.

    The product dA·g′(Z) would divide by A(1 - A), which is 0 once the sigmoid saturates;
    the simplified form is finite everywhere.
    """
    return AL - Y


def layer_backward(dZ: Array, A_prev: Array, W: Array, need_dA_prev: bool = True
                   ) -> tuple[Array, Array, Array | None]:
    """Return dW `(n_l, n_prev)`, db `(n_l, 1)` and dA_prev `(n_prev, m)` from one layer's dZ.

    With W of one row this is one neuron's share: the caller sums dA_prev over the layer.
    The input layer needs no dA_prev, which saves a third of the work on the widest layer.
    """
    m = A_prev.shape[1]
    # Dividing the small dZ before the product saves a pass over the wide dW.
    dW = (dZ / m) @ A_prev.T
    db = np.sum(dZ, axis=1, keepdims=True) / m
    dA_prev = W.T @ dZ if need_dA_prev else None
    return dW, db, dA_prev


def hidden_delta(dA: Array, Z: Array, activation: str) -> Array:
    """Return dZ = dA ⊙ g′(Z) for a hidden layer."""
    return dA * ACTIVATIONS[activation].derivative(Z)


def backward(params: Parameters, caches: list[LayerCache], AL: Array, Y: Array,
             activations: tuple[str, ...]) -> Gradients:
    """Back-propagate the cross-entropy of `AL` against labels `Y` `(1, m)` through every layer."""
    dW, db = {}, {}
    dZ = output_delta(AL, Y)
    for l in range(params.layers, 0, -1):
        cache = caches[l - 1]
        dW[l], db[l], dA_prev = layer_backward(dZ, cache.A_prev, params.W[l],
                                               need_dA_prev=l > 1)
        if l > 1:
            dZ = hidden_delta(dA_prev, caches[l - 2].Z, activations[l - 2])
    return Gradients(dW, db)


def update(params: Parameters, grads: Gradients, learning_rate: float) -> Parameters:
    """Return the parameters after one gradient-descent step; `params` is left unchanged."""
    return Parameters({l: _step(params.W[l], grads.dW[l], learning_rate) for l in params.W},
                      {l: _step(params.b[l], grads.db[l], learning_rate) for l in params.b})


def _step(value: Array, gradient: Array, learning_rate: float) -> Array:
    # One new array instead of two temporaries: on the first layer's 12288×20 weights the
    # allocation costs as much as the arithmetic.
    result = gradient * learning_rate
    np.subtract(value, result, out=result)
    return result
