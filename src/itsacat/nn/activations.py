"""Activation functions and their derivatives, chosen by the name used in `parameters.json`.

Every engine looks activations up in `ACTIVATIONS`, so a neuron computed alone and a layer
computed as a matrix use the same functions. Each function works in the input's dtype and
raises no floating-point warning for any finite input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Activation:
    """An activation g, its derivative g′ (both of Z) and the initialisation gain for its layer.

    A layer's weights start as `randn(n_l, n_prev) * init_gain / sqrt(n_prev)`.
    """

    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array], Array]
    init_gain: float


LEAKY_SLOPE = 0.01


def sigmoid(Z: Array) -> Array:
    # 1/(1+exp(-z)) overflows in exp for z below about -709. Taking exp of -|z| only keeps it
    # in (0, 1]; where it underflows the true sigmoid is below the smallest subnormal anyway.
    with np.errstate(under="ignore"):
        E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1.0 / (1.0 + E), E / (1.0 + E))


def sigmoid_derivative(Z: Array) -> Array:
    A = sigmoid(Z)
    return A * (1.0 - A)


def relu(Z: Array) -> Array:
    return np.maximum(Z, 0)


def relu_derivative(Z: Array) -> Array:
    return (Z > 0).astype(Z.dtype)


def tanh_derivative(Z: Array) -> Array:
    return 1.0 - np.tanh(Z) ** 2


def leaky_relu(Z: Array) -> Array:
    return np.where(Z > 0, Z, LEAKY_SLOPE * Z)


def leaky_relu_derivative(Z: Array) -> Array:
    return np.where(Z > 0, 1.0, LEAKY_SLOPE).astype(Z.dtype)


ACTIVATIONS: dict[str, Activation] = {
    # He initialisation for the rectifiers, 1/sqrt(fan-in) for the saturating functions,
    # as the reference design initialises its layers.
    "relu": Activation("relu", relu, relu_derivative, init_gain=np.sqrt(2.0)),
    "leaky_relu": Activation("leaky_relu", leaky_relu, leaky_relu_derivative,
                             init_gain=np.sqrt(2.0)),
    "tanh": Activation("tanh", np.tanh, tanh_derivative, init_gain=1.0),
    "sigmoid": Activation("sigmoid", sigmoid, sigmoid_derivative, init_gain=1.0),
}
