import numpy as np
import pytest

from itsacat.nn import (
    STRATEGIES,
    backward,
    cost,
    forward,
    initialize,
    parse_spec,
    partition,
    update,
)
from itsacat.training import vectorized
from itsacat.training.vectorized import VectorizedEngine, step_minibatch
from tests.conftest import SMALL_SPEC

REFERENCE = {
    "epochs": 15, "layers": 4,
    "activations": {"layer1": "relu", "layer2": "relu", "layer3": "relu", "layer4": "sigmoid"},
    "neurons": {"layer1": 20, "layer2": 7, "layer3": 5, "layer4": 1},
    "learning_rate": 0.0075, "batch_size": 64, "threshold": 0.0,
}


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(8, 23))
    Y = (X[:1] > 0.5).astype(float)
    return X, Y


def _spec(**changes):
    return parse_spec(SMALL_SPEC | changes)


def test_partition_covers_every_example_once_with_remainder_last():
    batches = partition(23, 5, seed=1, epoch=0)
    assert [len(batch) for batch in batches] == [5, 5, 5, 5, 3]
    assert sorted(np.concatenate(batches).tolist()) == list(range(23))


def test_partition_depends_on_seed_and_epoch_only():
    first = np.concatenate(partition(23, 5, seed=1, epoch=4))
    assert np.array_equal(first, np.concatenate(partition(23, 5, seed=1, epoch=4)))
    assert not np.array_equal(first, np.concatenate(partition(23, 5, seed=1, epoch=5)))
    assert not np.array_equal(first, np.concatenate(partition(23, 5, seed=2, epoch=4)))


def test_average_strategy_equals_full_batch_gradient_descent(problem):
    X, Y = problem
    spec = _spec(strategy="average", batch_size=5)
    params = initialize(spec, 8)

    result = VectorizedEngine().run_epoch(params, X, Y, spec, epoch=0)

    AL, caches = forward(params, X, spec.activations)
    expected = update(params, backward(params, caches, AL, Y, spec.activations),
                      spec.learning_rate)
    assert result.params.max_abs_difference(expected) < 1e-14
    assert result.cost == pytest.approx(cost(caches[-1].Z, Y), rel=1e-12)


def test_sequential_strategy_one_update_per_minibatch_in_order(problem):
    X, Y = problem
    spec = _spec(strategy="sequential", batch_size=5)
    params = initialize(spec, 8)

    result = VectorizedEngine().run_epoch(params, X, Y, spec, epoch=3)

    expected = params
    for indices in partition(23, 5, spec.seed, 3):
        expected = step_minibatch(expected, X[:, indices], Y[:, indices], spec).params
    # The engine forms the first layer's weights once per epoch, so rounding differs.
    assert result.params.max_abs_difference(expected) < 1e-14


def test_best_batch_strategy_keeps_lowest_cost_minibatch_step(problem):
    X, Y = problem
    spec = _spec(strategy="best_batch", batch_size=5)
    params = initialize(spec, 8)

    result = VectorizedEngine().run_epoch(params, X, Y, spec, epoch=1)

    outcomes = [step_minibatch(params, X[:, indices], Y[:, indices], spec)
                for indices in partition(23, 5, spec.seed, 1)]
    best = min(outcomes, key=lambda outcome: outcome.cost)
    assert result.cost == pytest.approx(best.cost, rel=1e-14)
    assert result.params.max_abs_difference(best.params) < 1e-14
    assert sum(outcome.cost != best.cost for outcome in outcomes) >= 1


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_every_strategy_lowers_cost_over_epochs(problem, strategy):
    X, Y = problem
    spec = _spec(strategy=strategy, batch_size=5, learning_rate=0.5, activations={
        "layer1": "tanh", "layer2": "tanh", "layer3": "sigmoid"})
    params = initialize(spec, 8)
    engine = VectorizedEngine()
    costs = []
    for epoch in range(200):
        result = engine.run_epoch(params, X, Y, spec, epoch)
        params = result.params
        costs.append(result.cost)
    assert costs[-1] < 0.5 * costs[0]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_gram_shortcut_equals_plain_minibatches_on_real_data(real_dataset, monkeypatch,
                                                             strategy):
    spec = parse_spec(REFERENCE | {"strategy": strategy})
    X, Y = real_dataset.train.X(), real_dataset.train.Y()

    def train(engine, epochs=15):
        params = initialize(spec, X.shape[0])
        for epoch in range(epochs):
            params = engine.run_epoch(params, X, Y, spec, epoch).params
        return params

    shortcut = train(VectorizedEngine())
    monkeypatch.setattr(vectorized, "GRAM_MAX_EXAMPLES", 0)
    plain = train(VectorizedEngine())
    assert shortcut.max_abs_difference(plain) < 1e-12
