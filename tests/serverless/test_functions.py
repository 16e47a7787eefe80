import numpy as np
import pytest

from itsacat.nn import initialize, parse_spec
from itsacat.serverless.functions import (
    BACKWARD,
    FORWARD,
    launch,
    neuron,
    read_parameters,
    trainer,
    write_parameters,
)
from itsacat.serverless.runtime import Invocation, InvocationContext, invocation_id
from itsacat.serverless.store import open_store
from tests.conftest import SMALL_SPEC

from .conftest import small_problem


def call(function, event, store):
    """Run one function directly and return the invocations it started."""
    context = InvocationContext(Invocation(invocation_id("x", {"epoch": 0}), "x", event))
    function(event, store, context)
    return context.follow_ups


@pytest.fixture
def uploaded():
    spec = parse_spec(SMALL_SPEC)
    X, Y = small_problem(m=12)
    store = open_store("memory")
    store.put_json("spec", spec.to_json())
    store.put_array("data/X", X.T)
    store.put_array("data/Y", Y)
    return store, spec, X


def test_launch_initialise_draws_weights_and_starts_first_minibatch(uploaded):
    store, spec, X = uploaded

    follow_ups = call(launch, {"action": "initialise", "epoch": 0, "last_epoch": 0}, store)

    assert follow_ups == [("trainer", {"epoch": 0, "minibatch": 0, "layer": 0,
                                       "direction": FORWARD, "weights": "weights/e0",
                                       "last_epoch": 0})]
    expected = initialize(spec, X.shape[0])
    assert read_parameters(store, "weights/e0", spec).max_abs_difference(expected) == 0.0
    assert store.get_json("e0/minibatches") == [5, 5, 2]
    assert store.get_array("e0/mb0/A0").shape == (12, 5)


def test_launch_start_epoch_unchained_starts_every_minibatch(uploaded):
    store, spec, X = uploaded
    store.put_json("spec", spec.to_json() | {"strategy": "average"})
    write_parameters(store, "weights/e0", initialize(spec, X.shape[0]))

    follow_ups = call(launch, {"action": "start_epoch", "epoch": 0, "last_epoch": 0}, store)

    assert [event["minibatch"] for _, event in follow_ups] == [0, 1, 2]


def test_fan_in_last_finisher_starts_trainer_once(uploaded):
    store, spec, X = uploaded
    start = call(launch, {"action": "initialise", "epoch": 0, "last_epoch": 0}, store)
    neurons = call(trainer, start[0][1], store)
    assert [event["neuron"] for _, event in neurons] == [0, 1, 2, 3, 4]

    # The highest-numbered neuron finishes first and the lowest last.
    started = [call(neuron, event, store) for _, event in reversed(neurons)]

    assert started[:-1] == [[], [], [], []]
    assert started[-1] == [("trainer", {"epoch": 0, "minibatch": 0, "layer": 1,
                                        "direction": FORWARD, "weights": "weights/e0",
                                        "last_epoch": 0})]
    assert call(neuron, neurons[0][1], store) == []


def test_trainer_after_forward_gathers_layer_in_neuron_order(uploaded):
    store, spec, X = uploaded
    start = call(launch, {"action": "initialise", "epoch": 0, "last_epoch": 0}, store)
    neurons = call(trainer, start[0][1], store)
    gather = [call(neuron, event, store) for _, event in neurons][-1][0][1]

    next_layer = call(trainer, gather, store)

    params = read_parameters(store, "weights/e0", spec)
    A0 = store.get_array("e0/mb0/A0")
    expected = np.maximum(params.W[1] @ A0 + params.b[1], 0)
    assert np.allclose(store.get_array("e0/mb0/A1"), expected, rtol=0, atol=1e-12)
    assert [(event["layer"], event["neuron"]) for _, event in next_layer] == [
        (2, 0), (2, 1), (2, 2)]


def test_trainer_after_output_layer_starts_backward(uploaded):
    store, spec, X = uploaded
    pending = call(launch, {"action": "initialise", "epoch": 0, "last_epoch": 0}, store)
    # Follow the chain inline until the backward pass of the output layer is invoked.
    while not any(event.get("direction") == BACKWARD for _, event in pending):
        function, event = pending.pop(0)
        pending += call({"trainer": trainer, "neuron": neuron}[function], event, store)

    assert isinstance(store.get_json("e0/mb0/cost"), float)
    assert [(event["layer"], event["direction"]) for _, event in pending] == [(3, BACKWARD)]
