"""The serverless neural network: `launch`, `trainer` and `neuron`, one invocation per step.

Each function is a plain function of (event, store, runtime). It reads what it needs from the
parameter store, computes with `itsacat.nn`, writes its results back, and starts the next
steps with `runtime.invoke`. Functions share nothing else, so any executor can run them.

One minibatch flows like this, for a network of L layers:

    trainer(forward, layer 0) ─► neuron(forward, layer 1, i) for every i
      … the last neuron of layer l to finish ─► trainer(forward, l): gather A[l] ─► layer l+1
    trainer(forward, L): cost ─► neuron(backward, L, i)
      … the last neuron of layer l to finish ─► trainer(backward, l): sum dA[l-1] ─► layer l-1
    trainer(backward, 1): gather the gradients, update ─► next minibatch (chained strategy)
      or, for the last minibatch to finish, launch(close_epoch)

Keys in a run's namespace (shapes as in `itsacat.nn.network`; i is a neuron, k a minibatch):

    spec                          JSON, `NetworkSpec.to_json()`
    data/X, data/Y                (m, n_x) one example per row, and (1, m)
    weights/e<e>/W<l>/<i>, b<l>/<i>   (1, n_prev) and (1, 1): neuron i's weights at epoch start
    epochs/<e>/result             JSON {"cost": …}, written when the epoch closes
    results                       JSON, how launch left the run
    e<e>/minibatches              JSON, the minibatch sizes of epoch e
    e<e>/mb<k>/A0, Y              (n_x, m_k) in Fortran order, and (1, m_k)
    e<e>/mb<k>/Z<l>/<i>, A<l>/<i>     (1, m_k): neuron i's forward output
    e<e>/mb<k>/A<l>, dA<l>        (n_l, m_k): the layer gathered by the trainer
    e<e>/mb<k>/dA_prev<l>/<i>     (n_prev, m_k): neuron i's share of dA[l-1]
    e<e>/mb<k>/dW<l>/<i>, db<l>/<i>   neuron i's gradients
    e<e>/mb<k>/weights/…          the weights after the minibatch's own step
    e<e>/mb<k>/cost               JSON, the minibatch's cost before its step

Everything an invocation writes is a function of its event and of what it read, so running
an invocation twice writes the same values again; that is what makes retries safe.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any

import numpy as np

from itsacat.nn import (
    STRATEGIES,
    Gradients,
    MinibatchOutcome,
    NetworkSpec,
    Parameters,
    cost,
    hidden_delta,
    initialize,
    layer_backward,
    layer_forward,
    output_delta,
    parse_spec,
    partition,
    update,
)
from itsacat.serverless.store import ParamStore, ParamStoreError

FORWARD, BACKWARD = "forward", "backward"
Event = dict[str, Any]

# Specs are written once per run, so each process decodes a run's spec once.
_SPECS: dict[tuple[str, str], NetworkSpec] = {}


def run_spec(store: ParamStore) -> NetworkSpec:
    """Return the spec stored for the run, decoded once per store namespace and process."""
    key = (store.url, store.namespace)
    spec = _SPECS.get(key)
    if spec is None:
        document = store.get_json("spec")
        if document is None:
            raise ParamStoreError("missing_key", f"network spec not found in parameter store "
                                  f"{store.url}, namespace {store.namespace}; the run was "
                                  "never uploaded there or was already cleaned up")
        spec = _SPECS[key] = parse_spec(document, "parameter store spec")
    return spec


def forget_run(store: ParamStore) -> None:
    _SPECS.pop((store.url, store.namespace), None)


def write_parameters(store: ParamStore, prefix: str, params: Parameters) -> None:
    """Store each neuron's row of `W[l]` and its bias under `prefix`."""
    rows = {}
    for l in params.W:
        for i in range(params.W[l].shape[0]):
            rows[f"{prefix}/W{l}/{i}"] = params.W[l][i:i + 1]
            rows[f"{prefix}/b{l}/{i}"] = params.b[l][i:i + 1]
    store.put_arrays(rows)


def read_parameters(store: ParamStore, prefix: str, spec: NetworkSpec) -> Parameters:
    """Gather every neuron's row stored under `prefix` back into layer matrices."""
    W = {l: _gather_rows(store, f"{prefix}/W{l}", spec.neurons[l - 1])
         for l in range(1, spec.layers + 1)}
    b = {l: _gather_rows(store, f"{prefix}/b{l}", spec.neurons[l - 1])
         for l in range(1, spec.layers + 1)}
    return Parameters(W, b)


def _gather_rows(store: ParamStore, prefix: str, count: int) -> np.ndarray:
    return np.vstack(store.get_arrays([f"{prefix}/{i}" for i in range(count)]))


def minibatch_prefix(event: Event) -> str:
    return f"e{event['epoch']}/mb{event['minibatch']}"


# launch ------------------------------------------------------------------------------------

def launch(event: Event, store: ParamStore, runtime) -> None:
    """Drive epochs by `event["action"]`: `initialise`, `start_epoch` or `close_epoch`.

    The event carries `epoch` and `last_epoch`. Launch keeps chaining epochs until the cost
    reaches the spec's threshold or `last_epoch` has closed.
    """
    LAUNCH_ACTIONS[event["action"]](event, store, runtime)


def initialise(event: Event, store: ParamStore, runtime) -> None:
    """Check the run's spec and data, draw the first weights unless they were stored, and
    start the first epoch."""
    spec = run_spec(store)
    n_x = store.get_array("data/X", cache=True).shape[1]
    epoch = event["epoch"]
    if not store.exists(f"weights/e{epoch}/b{spec.layers}/0"):
        write_parameters(store, f"weights/e{epoch}", initialize(spec, n_x))
    store.put_json("results", {"status": "running", "first_epoch": epoch,
                               "last_epoch": event["last_epoch"]})
    start_epoch(event | {"action": "start_epoch"}, store, runtime)


def start_epoch(event: Event, store: ParamStore, runtime) -> None:
    """Shuffle and cut the epoch's minibatches, store their inputs once, and start one
    trainer chain per minibatch (or only the first one, for a chained strategy)."""
    spec = run_spec(store)
    epoch = event["epoch"]
    rows, Y = store.get_array("data/X", cache=True), store.get_array("data/Y")

    # Epoch e starts only after epoch e-1 closed, and a late copy of that closing reads only
    # epoch e-1's keys, so epoch e-2's keys can no longer be read by anyone.
    # NOTE: a copy of an epoch e-2 invocation delayed past this point would find its keys
    # gone and fail; the runtime waits for every copy before an epoch ends, a real queue may not.
    store.delete_prefix(f"e{epoch - 2}/")
    store.delete_prefix(f"weights/e{epoch - 2}/")

    batches = partition(Y.shape[1], spec.batch_size, spec.seed, epoch)
    for k, indices in enumerate(batches):
        store.put_array(f"e{epoch}/mb{k}/A0", rows[indices].T)
        store.put_array(f"e{epoch}/mb{k}/Y", Y[:, indices])
    store.put_json(f"e{epoch}/minibatches", [len(indices) for indices in batches])

    chains = 1 if STRATEGIES[spec.strategy].chained else len(batches)
    for k in range(chains):
        runtime.invoke("trainer", {"epoch": epoch, "minibatch": k, "layer": 0,
                                   "direction": FORWARD, "weights": f"weights/e{epoch}",
                                   "last_epoch": event["last_epoch"]})


def close_epoch(event: Event, store: ParamStore, runtime) -> None:
    """Combine the minibatches by the run's strategy, store the next epoch's weights, and
    either start the next epoch or write the results."""
    spec = run_spec(store)
    epoch = event["epoch"]
    sizes = store.get_json(f"e{epoch}/minibatches")

    start = StoredParameters(store, f"weights/e{epoch}", spec)
    outcomes = [read_outcome(store, f"e{epoch}/mb{k}", size, spec)
                for k, size in enumerate(sizes)]
    next_params, epoch_cost = STRATEGIES[spec.strategy].close_epoch(start, outcomes,
                                                                    spec.learning_rate)
    write_parameters(store, f"weights/e{epoch + 1}", next_params)
    store.put_json(f"epochs/{epoch}/result", {"cost": epoch_cost})

    reached_threshold = epoch_cost <= spec.threshold
    if reached_threshold or epoch >= event["last_epoch"]:
        store.put_json("results", {"status": "completed", "last_epoch": epoch,
                                   "cost": epoch_cost, "stopped_early": reached_threshold})
        return
    runtime.invoke("launch", {"action": "start_epoch", "epoch": epoch + 1,
                              "last_epoch": event["last_epoch"]})


def read_outcome(store: ParamStore, prefix: str, size: int, spec: NetworkSpec
                 ) -> MinibatchOutcome:
    """Return what one minibatch's trainer chain left: cost, gradients, weights after its
    step. The gradients and weights are read when the strategy first uses them."""
    return StoredOutcome(store, prefix, size, store.get_json(f"{prefix}/cost"), spec)


class StoredOutcome(MinibatchOutcome):
    """A `MinibatchOutcome` whose gradients and weights are read from the store on first use.

    Each strategy needs only part of the outcomes (sequential the last weights, best_batch
    the winner's, average the gradients), and through Redis the rest would be most of an
    epoch's traffic.
    """

    def __init__(self, store: ParamStore, prefix: str, size: int, cost: float,
                 spec: NetworkSpec):
        self.size, self.cost = size, cost
        self._store, self._prefix, self._spec = store, prefix, spec
        self._grads: Gradients | None = None
        self._params: Parameters | None = None

    @property
    def grads(self) -> Gradients:
        if self._grads is None:
            self._grads = read_gradients(self._store, self._prefix, self._spec)
        return self._grads

    @property
    def params(self) -> Parameters:
        if self._params is None:
            self._params = read_parameters(self._store, f"{self._prefix}/weights", self._spec)
        return self._params


class StoredParameters(Parameters):
    """`Parameters` read from the store on first use: only the average strategy uses the
    weights an epoch started from when it closes the epoch."""

    def __init__(self, store: ParamStore, prefix: str, spec: NetworkSpec):
        self._store, self._prefix, self._spec = store, prefix, spec
        self._read: Parameters | None = None

    @property
    def W(self) -> dict[int, np.ndarray]:
        return self._parameters().W

    @property
    def b(self) -> dict[int, np.ndarray]:
        return self._parameters().b

    def _parameters(self) -> Parameters:
        if self._read is None:
            self._read = read_parameters(self._store, self._prefix, self._spec)
        return self._read


def read_gradients(store: ParamStore, prefix: str, spec: NetworkSpec) -> Gradients:
    """Gather every neuron's dW and db rows stored under `prefix` into layer matrices."""
    layers = range(1, spec.layers + 1)
    return Gradients({l: _gather_rows(store, f"{prefix}/dW{l}", spec.neurons[l - 1])
                      for l in layers},
                     {l: _gather_rows(store, f"{prefix}/db{l}", spec.neurons[l - 1])
                      for l in layers})


LAUNCH_ACTIONS: dict[str, Callable[[Event, ParamStore, Any], None]] = {
    "initialise": initialise, "start_epoch": start_epoch, "close_epoch": close_epoch}


# trainer -----------------------------------------------------------------------------------

def trainer(event: Event, store: ParamStore, runtime) -> None:
    """Take one minibatch past one layer: `event["layer"]` has just finished its
    `event["direction"]` pass (layer 0 forward is the start of the minibatch)."""
    TRAINER_STEPS[event["direction"]](event, store, runtime, run_spec(store))


def after_forward(event: Event, store: ParamStore, runtime, spec: NetworkSpec) -> None:
    """Gather the finished layer's activations and run the next layer, or compute the cost
    and start the backward pass after the output layer."""
    l, mb = event["layer"], minibatch_prefix(event)
    if l < spec.layers:
        if l > 0:
            store.put_array(f"{mb}/A{l}", _gather_rows(store, f"{mb}/A{l}", spec.neurons[l - 1]))
        fan_out(runtime, event, l + 1, FORWARD, spec)
        return

    ZL = _gather_rows(store, f"{mb}/Z{l}", spec.neurons[l - 1])  # (1, m_k)
    store.put_json(f"{mb}/cost", cost(ZL, store.get_array(f"{mb}/Y")))
    fan_out(runtime, event, l, BACKWARD, spec)


def after_backward(event: Event, store: ParamStore, runtime, spec: NetworkSpec) -> None:
    """Sum the neurons' shares of dA[l-1] and run layer l-1 backward, or finish the
    minibatch after the first layer."""
    l, mb = event["layer"], minibatch_prefix(event)
    if l > 1:
        # Summed in neuron order, so the result does not depend on which neuron finished
        # first.
        shares = (store.get_array(f"{mb}/dA_prev{l}/{i}") for i in range(spec.neurons[l - 1]))
        store.put_array(f"{mb}/dA{l - 1}", reduce(np.add, shares))
        fan_out(runtime, event, l - 1, BACKWARD, spec)
        return
    finish_minibatch(event, store, runtime, spec)


def finish_minibatch(event: Event, store: ParamStore, runtime, spec: NetworkSpec) -> None:
    """Apply the minibatch's update, then start the next minibatch of a chained strategy and
    close the epoch when this is the last minibatch to finish."""
    epoch, k, mb = event["epoch"], event["minibatch"], minibatch_prefix(event)
    params = read_parameters(store, event["weights"], spec)
    grads = read_gradients(store, mb, spec)
    write_parameters(store, f"{mb}/weights", update(params, grads, spec.learning_rate))

    count = len(store.get_json(f"e{epoch}/minibatches"))
    if STRATEGIES[spec.strategy].chained and k + 1 < count:
        runtime.invoke("trainer", event | {"minibatch": k + 1, "layer": 0,
                                           "direction": FORWARD, "weights": f"{mb}/weights"})
    if store.add_member(f"e{epoch}/finished", str(k)) == count:
        runtime.invoke("launch", {"action": "close_epoch", "epoch": epoch,
                                  "last_epoch": event["last_epoch"]})


def fan_out(runtime, event: Event, layer: int, direction: str, spec: NetworkSpec) -> None:
    """Invoke every neuron of `layer` in `direction` for the event's minibatch."""
    for i in range(spec.neurons[layer - 1]):
        runtime.invoke("neuron", {"epoch": event["epoch"], "minibatch": event["minibatch"],
                                  "layer": layer, "neuron": i, "direction": direction,
                                  "weights": event["weights"],
                                  "last_epoch": event["last_epoch"]})


TRAINER_STEPS = {FORWARD: after_forward, BACKWARD: after_backward}


# neuron ------------------------------------------------------------------------------------

def neuron(event: Event, store: ParamStore, runtime) -> None:
    """Compute one neuron of one layer for one minibatch, forward or backward."""
    NEURON_STEPS[event["direction"]](event, store, runtime, run_spec(store))


def neuron_forward(event: Event, store: ParamStore, runtime, spec: NetworkSpec) -> None:
    """z = w·A_prev + b and a = g(z) for neuron i, each `(1, m_k)`."""
    l, i, mb = event["layer"], event["neuron"], minibatch_prefix(event)
    w = store.get_array(f"{event['weights']}/W{l}/{i}")  # (1, n_prev)
    b = store.get_array(f"{event['weights']}/b{l}/{i}")  # (1, 1)
    Z, A = layer_forward(w, b, _layer_input(store, mb, l), spec.activations[l - 1])
    store.put_array(f"{mb}/Z{l}/{i}", Z)
    store.put_array(f"{mb}/A{l}/{i}", A)
    fan_in(store, runtime, event, spec)


def neuron_backward(event: Event, store: ParamStore, runtime, spec: NetworkSpec) -> None:
    """dZ = dA ⊙ g′(z) (A - Y at the output), then dw, db and this neuron's share of
    dA_prev."""
    l, i, mb = event["layer"], event["neuron"], minibatch_prefix(event)
    if l == spec.layers:
        dZ = output_delta(store.get_array(f"{mb}/A{l}/{i}"), store.get_array(f"{mb}/Y"))
    else:
        dA = store.get_array(f"{mb}/dA{l}")[i:i + 1]  # (1, m_k)
        dZ = hidden_delta(dA, store.get_array(f"{mb}/Z{l}/{i}"), spec.activations[l - 1])

    w = store.get_array(f"{event['weights']}/W{l}/{i}")
    dW, db, dA_prev = layer_backward(dZ, _layer_input(store, mb, l), w,
                                     need_dA_prev=l > 1)
    store.put_array(f"{mb}/dW{l}/{i}", dW)
    store.put_array(f"{mb}/db{l}/{i}", db)
    if dA_prev is not None:
        store.put_array(f"{mb}/dA_prev{l}/{i}", dA_prev)
    fan_in(store, runtime, event, spec)


def _layer_input(store: ParamStore, mb: str, layer: int) -> np.ndarray:
    # The minibatch's input is written once per epoch and read by every first-layer neuron
    # twice, so a store handle may keep it.
    return store.get_array(f"{mb}/A{layer - 1}", cache=layer == 1)


def fan_in(store: ParamStore, runtime, event: Event, spec: NetworkSpec) -> None:
    """Start the trainer's next step if this neuron completed its layer.

    The store adds the neuron to the layer's set and counts it in one atomic step, so
    exactly one neuron gets the full count, whichever finishes last. A neuron that runs again
    after a retry is already in the set and starts nothing.
    """
    l, direction = event["layer"], event["direction"]
    finished = store.add_member(f"{minibatch_prefix(event)}/{direction}{l}/finished",
                                str(event["neuron"]))
    if finished == spec.neurons[l - 1]:
        runtime.invoke("trainer", {"epoch": event["epoch"], "minibatch": event["minibatch"],
                                   "layer": l, "direction": direction,
                                   "weights": event["weights"],
                                   "last_epoch": event["last_epoch"]})


NEURON_STEPS = {FORWARD: neuron_forward, BACKWARD: neuron_backward}

FUNCTIONS: dict[str, Callable[[Event, ParamStore, Any], None]] = {
    "launch": launch, "trainer": trainer, "neuron": neuron}
