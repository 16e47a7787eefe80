"""The serverless engine against the vectorized engine on the real data: same seed, same
strategy, float64, 10 epochs, the reference network 12288-20-7-5-1 with minibatches of 64."""

import pytest

from itsacat.nn import STRATEGIES, initialize, load_spec
from itsacat.serverless.engine import ServerlessEngine
from itsacat.serverless.runtime import Faults

from .conftest import train_epochs, vectorized_run

EPOCHS = 10
TOLERANCE = 1e-9


@pytest.fixture(scope="module")
def real_problem(shared_data, real_dataset):
    spec = load_spec(shared_data / "datasets" / "reference_parameters.json")
    train = real_dataset.train
    return spec, train.X(spec.dtype), train.Y(spec.dtype)


@pytest.fixture(scope="module")
def reference_runs(real_problem):
    """The vectorized engine's weights and costs after 10 epochs, per strategy."""
    spec, X, Y = real_problem
    return {name: vectorized_run(X, Y, spec.with_overrides(strategy=name), EPOCHS)
            for name in STRATEGIES}


def check_against_reference(real_problem, reference_runs, strategy, disturbed=False,
                            **options):
    spec, X, Y = real_problem
    spec = spec.with_overrides(strategy=strategy)
    engine = ServerlessEngine(**options)
    try:
        params, results = train_epochs(engine, initialize(spec, X.shape[0]), X, Y, spec,
                                       EPOCHS)
    finally:
        engine.close()

    reference, reference_costs = reference_runs[strategy]
    assert params.max_abs_difference(reference) < TOLERANCE
    for result, reference_cost in zip(results, reference_costs, strict=True):
        assert abs(result.cost - reference_cost) < TOLERANCE
        # 4 minibatches × (trainer start, 8 trainer steps, 66 neuron steps) + launch twice
        assert result.stats["invocations"] == 302
        if disturbed:
            assert result.stats["retries"] > 0
            assert result.stats["duplicates"] > 0
        else:
            assert result.stats["retries"] == 0
            assert result.stats["duplicates"] == 0


@pytest.mark.parametrize("executor", ["inline", "threads"])
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_serverless_memory_store_matches_vectorized(real_problem, reference_runs, strategy,
                                                    executor):
    check_against_reference(real_problem, reference_runs, strategy, executor=executor)


def test_serverless_redis_store_matches_vectorized(real_problem, reference_runs, redis_url):
    check_against_reference(real_problem, reference_runs, "average", executor="threads",
                            param_store=redis_url)


def test_serverless_ray_matches_vectorized(real_problem, reference_runs, redis_url,
                                           ray_cluster):
    check_against_reference(real_problem, reference_runs, "best_batch", executor="ray",
                            param_store=redis_url)


def test_serverless_launch_chaining_epochs_matches_vectorized(real_problem, reference_runs):
    spec, X, Y = real_problem
    engine = ServerlessEngine()
    try:
        params, costs, stats = engine.run_chain(initialize(spec, X.shape[0]), X, Y, spec, 0,
                                                EPOCHS - 1)
    finally:
        engine.close()

    reference, reference_costs = reference_runs["sequential"]
    assert params.max_abs_difference(reference) < TOLERANCE
    assert max(abs(a - b) for a, b in zip(costs, reference_costs, strict=True)) < TOLERANCE
    assert stats.invocations == EPOCHS * 302


def test_serverless_disturbed_delivery_matches_vectorized(real_problem, reference_runs):
    check_against_reference(real_problem, reference_runs, "sequential", executor="threads",
                            faults=Faults(duplicate=0.5, lose=0.1, seed=11),
                            disturbed=True)
