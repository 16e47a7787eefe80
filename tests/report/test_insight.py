"""Per-layer insight: the measurements against hand computation and finite differences, the
sampling schedule, and insight.json across interrupted and resumed runs."""

import json

import numpy as np
import pytest

from itsacat.data import load_dataset
from itsacat.nn import Parameters, cost, forward, parse_spec
from itsacat.nn.insight import INSIGHT_FILE, PERCENTILES, inspect_layers, is_snapshot_epoch
from itsacat.training import create_engine, train, vectorized
from tests.conftest import SMALL_SPEC


class StopAt:
    """Observer that raises `error` when `epoch` finishes: KeyboardInterrupt for Ctrl-C, any
    other exception for a crash that leaves only the last periodic checkpoint."""

    def __init__(self, epoch, error):
        self.epoch, self.error = epoch, error

    def run_started(self, *args):
        pass

    def epoch_finished(self, run_id, epoch, cost, stats, elapsed):
        if epoch == self.epoch:
            raise self.error

    def run_finished(self, result):
        pass

    def run_stopped(self, run_id, status, message):
        pass


def hand_network():
    """A 3-input, 2-2-1 network where hidden neuron 2 has a bias so low it never fires."""
    W1 = np.array([[0.5, -0.2, 0.1], [0.3, 0.4, -0.6]])
    b1 = np.array([[0.1], [-50.0]])
    W2 = np.array([[1.0, -0.5], [-0.7, 0.2]])
    b2 = np.array([[0.0], [0.2]])
    W3 = np.array([[0.8, -1.1]])
    b3 = np.array([[0.05]])
    params = Parameters({1: W1, 2: W2, 3: W3}, {1: b1, 2: b2, 3: b3})
    X = np.array([[0.2, 0.9, 0.4, 0.7], [0.5, 0.1, 0.8, 0.3], [0.9, 0.6, 0.2, 0.1]])
    Y = np.array([[1.0, 0.0, 1.0, 0.0]])
    return params, X, Y, ("relu", "relu", "sigmoid")


def test_inspect_layers_hand_network_matches_independent_numbers():
    params, X, Y, activations = hand_network()

    batch_cost, layers = inspect_layers(params, X, Y, activations)

    Z1 = params.W[1] @ X + params.b[1]
    A1 = np.maximum(Z1, 0)
    Z2 = params.W[2] @ A1 + params.b[2]
    A2 = np.maximum(Z2, 0)
    A3 = 1 / (1 + np.exp(-(params.W[3] @ A2 + params.b[3])))
    expected_cost = -np.mean(Y * np.log(A3) + (1 - Y) * np.log(1 - A3))
    assert batch_cost == pytest.approx(expected_cost, rel=1e-12)
    assert [layer.neurons for layer in layers] == [2, 2, 1]
    for layer, A in zip(layers, (A1, A2, A3), strict=True):
        assert layer.weight_norm == pytest.approx(np.sqrt(np.sum(params.W[layer.layer] ** 2)))
        assert layer.activation_percentiles == pytest.approx(
            [np.percentile(A.ravel(), q) for q in PERCENTILES])
    assert layers[0].dead_fraction == 0.5
    assert layers[1].dead_fraction == (np.all(Z2 <= 0, axis=1)).mean()
    assert layers[2].dead_fraction is None


def test_inspect_layers_gradient_norm_matches_finite_differences():
    params, X, Y, activations = hand_network()
    _, layers = inspect_layers(params, X, Y, activations)

    epsilon = 1e-6
    for layer in layers:
        W = params.W[layer.layer]
        numeric = np.zeros_like(W)
        for index in np.ndindex(W.shape):
            original = W[index]
            W[index] = original + epsilon
            plus = cost(forward(params, X, activations)[1][-1].Z, Y)
            W[index] = original - epsilon
            minus = cost(forward(params, X, activations)[1][-1].Z, Y)
            W[index] = original
            numeric[index] = (plus - minus) / (2 * epsilon)
        assert layer.gradient_norm == pytest.approx(np.linalg.norm(numeric), rel=1e-6)


def test_snapshot_epochs_include_first_and_last():
    epochs = [epoch for epoch in range(200) if is_snapshot_epoch(epoch, 200)]
    assert epochs[:4] == [0, 3, 7, 11]
    assert epochs[-1] == 199
    assert len(epochs) == 51
    assert [epoch for epoch in range(7) if is_snapshot_epoch(epoch, 7)] == list(range(7))


def train_small(dataset_path, folder, epochs=60, observers=(), resume=False, threshold=0.0):
    spec = parse_spec(SMALL_SPEC | {"epochs": epochs, "threshold": threshold}, "small spec")
    return train(load_dataset(dataset_path), spec, create_engine("vectorized"), folder,
                 observers=list(observers), checkpoint_every=10, resume=resume)


def read_snapshots(folder):
    return json.loads((folder / INSIGHT_FILE).read_text())["snapshots"]


@pytest.fixture
def product_refresh_every_4(monkeypatch):
    """Make the vectorized engine recompute W[1]·X at every epoch where these tests resume
    (20 and 28), so that resumed runs can match uninterrupted ones bit for bit."""
    monkeypatch.setattr(vectorized, "PRODUCT_REFRESH_EPOCHS", 4)


def test_insight_after_crash_and_resume_equals_uninterrupted(small_dataset_path, tmp_path,
                                                             product_refresh_every_4):
    train_small(small_dataset_path, tmp_path / "whole", epochs=100)
    crashed = tmp_path / "crashed"

    with pytest.raises(RuntimeError):
        train_small(small_dataset_path, crashed, epochs=100,
                    observers=[StopAt(27, RuntimeError("worker lost"))])
    # The crash left snapshots up to epoch 25, past the checkpoint at epoch 20.
    assert read_snapshots(crashed)[-1]["epoch"] == 25
    train_small(small_dataset_path, crashed, epochs=100, resume=True)

    assert read_snapshots(crashed) == read_snapshots(tmp_path / "whole")


def test_insight_after_interrupt_before_snapshot_equals_uninterrupted(
        small_dataset_path, tmp_path, product_refresh_every_4):
    train_small(small_dataset_path, tmp_path / "whole", epochs=100)
    interrupted = tmp_path / "interrupted"

    # Epoch 27 is sampled; Ctrl-C after it ends but before its snapshot is taken.
    with pytest.raises(KeyboardInterrupt):
        train_small(small_dataset_path, interrupted, epochs=100,
                    observers=[StopAt(27, KeyboardInterrupt())])
    assert read_snapshots(interrupted)[-1]["epoch"] == 25
    train_small(small_dataset_path, interrupted, epochs=100, resume=True)

    assert read_snapshots(interrupted) == read_snapshots(tmp_path / "whole")


def test_insight_early_stop_records_final_epoch(small_dataset_path, tmp_path):
    costs = train_small(small_dataset_path, tmp_path / "probe", epochs=200).costs
    stop = next(epoch for epoch in range(1, 200)
                if costs[epoch] < min(costs[:epoch]) and not is_snapshot_epoch(epoch, 200))

    result = train_small(small_dataset_path, tmp_path / "run", epochs=200,
                         threshold=costs[stop])

    assert result.stopped_early
    assert len(result.costs) == stop + 1
    assert read_snapshots(tmp_path / "run")[-1]["epoch"] == stop
