"""The multi-layer perceptron, from scratch in numpy: spec, activations, forward and backward
passes, cost, strategies and model files. This package imports nothing else from itsacat."""

from itsacat.nn.activations import ACTIVATIONS, Activation
from itsacat.nn.model import Model
from itsacat.nn.network import (
    Gradients,
    LayerCache,
    Parameters,
    backward,
    cost,
    cross_entropy,
    forward,
    hidden_delta,
    initialize,
    layer_backward,
    layer_forward,
    output_delta,
    update,
)
from itsacat.nn.spec import NetworkSpec, SpecError, load_spec, parse_spec
from itsacat.nn.strategies import STRATEGIES, MinibatchOutcome, Strategy, partition

__all__ = [
    "ACTIVATIONS", "Activation", "Gradients", "LayerCache", "MinibatchOutcome", "Model",
    "NetworkSpec", "Parameters", "STRATEGIES", "SpecError", "Strategy", "backward", "cost",
    "cross_entropy", "forward", "hidden_delta", "initialize", "layer_backward", "layer_forward",
    "load_spec", "output_delta", "parse_spec", "partition", "update",
]
