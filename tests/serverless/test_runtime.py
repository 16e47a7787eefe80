import json
import logging

import pytest

from itsacat.nn import initialize, parse_spec
from itsacat.serverless.engine import ServerlessEngine
from itsacat.serverless.runtime import Faults, InvocationError, Runtime
from itsacat.serverless.store import open_store
from tests.conftest import SMALL_SPEC

from .conftest import small_problem, train_epochs, vectorized_run

EPOCHS = 4


@pytest.fixture(scope="module")
def problem():
    spec = parse_spec(SMALL_SPEC | {"batch_size": 8})
    X, Y = small_problem(m=30)
    reference, _ = vectorized_run(X, Y, spec, EPOCHS)
    return spec, X, Y, reference


def run_engine(problem, **options):
    spec, X, Y, _ = problem
    engine = ServerlessEngine(**options)
    try:
        return train_epochs(engine, initialize(spec, X.shape[0]), X, Y, spec, EPOCHS)
    finally:
        engine.close()


def invocations_per_epoch(spec, minibatches):
    # Per minibatch: the trainer's start, one trainer step after each layer in each direction,
    # and every neuron forward and backward. Per epoch: launch's start and close.
    per_minibatch = 1 + 2 * spec.layers + 2 * sum(spec.neurons)
    return minibatches * per_minibatch + 2


def test_runtime_inline_epoch_counts_each_step_once(problem):
    spec, X, Y, reference = problem

    params, results = run_engine(problem)

    assert params.max_abs_difference(reference) < 1e-12
    for result in results:
        assert set(result.stats) == {"invocations", "retries", "duplicates", "bytes", "seconds"}
        assert result.stats["invocations"] == invocations_per_epoch(spec, 4)
        assert result.stats["retries"] == 0
        assert result.stats["duplicates"] == 0
        assert result.stats["bytes"] > 0


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_runtime_every_invocation_delivered_twice_drops_copies(problem, executor):
    spec, X, Y, reference = problem
    undisturbed, _ = run_engine(problem, executor=executor)

    params, results = run_engine(problem, executor=executor, faults=Faults(duplicate=1.0))

    assert params.max_abs_difference(undisturbed) == 0.0
    assert params.max_abs_difference(reference) < 1e-12
    for result in results:
        assert result.stats["invocations"] == invocations_per_epoch(spec, 4)
        assert result.stats["duplicates"] == result.stats["invocations"]


@pytest.mark.parametrize("executor", ["inline", "threads"])
def test_runtime_lost_invocations_are_retried(problem, executor):
    spec, X, Y, reference = problem
    undisturbed, _ = run_engine(problem, executor=executor)

    params, results = run_engine(problem, executor=executor, faults=Faults(lose=0.1, seed=5))

    assert params.max_abs_difference(undisturbed) == 0.0
    assert all(result.stats["retries"] > 0 for result in results)
    assert all(result.stats["invocations"] == invocations_per_epoch(spec, 4)
               for result in results)


def test_runtime_slow_invocations_time_out_and_retry(problem):
    spec, X, Y, reference = problem

    params, results = run_engine(problem, executor="threads", timeout=0.05,
                                 faults=Faults(slow=0.05, delay=0.2, seed=2))

    assert params.max_abs_difference(reference) < 1e-12
    assert sum(result.stats["retries"] for result in results) > 0
    # The slow first attempt finishes after its retry and is dropped, or the other way round.
    assert sum(result.stats["duplicates"] for result in results) > 0


def test_runtime_failing_invocation_raises_with_event():
    store = open_store("memory")
    runtime = Runtime(store, "inline", max_attempts=2)
    event = {"epoch": 0, "minibatch": 0, "layer": 1, "neuron": 0, "direction": "forward",
             "weights": "weights/e0", "last_epoch": 0}
    invocation = runtime.invoke("neuron", event)

    with pytest.raises(InvocationError) as raised:
        runtime.run_until_idle()

    reason = (f"network spec not found in parameter store memory, namespace "
              f"{store.namespace}; the run was never uploaded there or was already cleaned up")
    assert invocation == "e0/neuron/mb0/forward/l1/n0"
    assert raised.value.message == (
        f"invocation {invocation} (neuron) failed after 2 attempts: {reason}; event "
        f"{json.dumps(event, sort_keys=True)}")
    assert not raised.value.resumable
    assert runtime.ledger.failure(invocation) == {
        "state": "failed", "function": "neuron", "event": event, "error": reason,
        "attempts": 2}


def test_runtime_unknown_executor_raises():
    with pytest.raises(InvocationError) as raised:
        Runtime(open_store("memory"), "lambda")

    assert raised.value.message == ("executor 'lambda' is not available; choose one of "
                                    "inline, threads, ray")


def test_runtime_ray_with_memory_store_raises():
    with pytest.raises(InvocationError) as raised:
        Runtime(open_store("memory"), "ray")

    assert raised.value.message == (
        "the memory parameter store lives inside one process, so Ray workers cannot reach "
        "it; use --param-store redis://127.0.0.1:6379/0 with --executor ray")


def test_runtime_debug_log_has_one_line_per_invocation(problem, caplog):
    spec, X, Y, _ = problem
    engine = ServerlessEngine()
    caplog.set_level(logging.DEBUG, logger="itsacat.serverless.runtime")
    try:
        result = engine.run_epoch(initialize(spec, X.shape[0]), X, Y, spec, 0)
    finally:
        engine.close()

    lines = [record.getMessage() for record in caplog.records
             if record.name == "itsacat.serverless.runtime"]
    assert len(lines) == result.stats["invocations"]
    assert lines[0].startswith("invocation e0/launch/initialise: launch minibatch - layer - "
                               "neuron - initialise ")
    neuron_lines = [line for line in lines if line.startswith("invocation e0/neuron/mb1/")]
    assert neuron_lines[0].startswith("invocation e0/neuron/mb1/forward/l1/n0: neuron "
                                      "minibatch 1 layer 1 neuron 0 forward ")
    assert all(line.endswith(" ms") for line in lines)


def test_engine_close_deletes_redis_namespace(problem, redis_url):
    import redis

    spec, X, Y, _ = problem
    engine = ServerlessEngine(param_store=redis_url)
    engine.run_epoch(initialize(spec, X.shape[0]), X, Y, spec, 0)
    client = redis.Redis.from_url(redis_url)
    pattern = f"itsacat:{engine.store.namespace}:*"
    assert any(client.scan_iter(match=pattern))

    engine.close()

    assert not any(client.scan_iter(match=pattern))
