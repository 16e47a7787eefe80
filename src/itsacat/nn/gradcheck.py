"""Finite-difference check of the analytic gradients of `backward`."""

from __future__ import annotations

import numpy as np

from itsacat.nn.network import Parameters, backward, cost, forward


def gradient_check(params: Parameters, X: np.ndarray, Y: np.ndarray,
                   activations: tuple[str, ...], epsilon: float = 1e-6) -> float:
    """Return the relative difference between analytic and central-difference gradients.

    Work in float64: in float32 the differences drown in rounding. Values below about 1e-7
    mean the backward pass is right; a wrong derivative gives 1e-2 or more.
    """
    AL, caches = forward(params, X, activations)
    grads = backward(params, caches, AL, Y, activations)

    analytic, numeric = [], []
    for l in range(1, params.layers + 1):
        for array, gradient in ((params.W[l], grads.dW[l]), (params.b[l], grads.db[l])):
            for index in np.ndindex(array.shape):
                original = array[index]
                array[index] = original + epsilon
                cost_plus = cost(forward(params, X, activations)[1][-1].Z, Y)
                array[index] = original - epsilon
                cost_minus = cost(forward(params, X, activations)[1][-1].Z, Y)
                array[index] = original
                numeric.append((cost_plus - cost_minus) / (2 * epsilon))
                analytic.append(gradient[index])

    analytic_vector, numeric_vector = np.array(analytic), np.array(numeric)
    return float(np.linalg.norm(analytic_vector - numeric_vector)
                 / (np.linalg.norm(analytic_vector) + np.linalg.norm(numeric_vector)))
