import json

import h5py
import numpy as np
import pytest

from itsacat.data import load_dataset
from itsacat.nn import load_spec
from itsacat.nn.io import load_model
from itsacat.training import TrainingError, create_engine, train, vectorized
from itsacat.training.run import CHECKPOINT_FILE


class EpochCounter:
    """Observer that stops the run after `stop_after` epochs, as Ctrl-C would."""

    def __init__(self, stop_after=None):
        self.stop_after = stop_after
        self.epochs = []
        self.stopped = []

    def run_started(self, *args):
        pass

    def epoch_finished(self, run_id, epoch, cost, stats, elapsed):
        self.epochs.append(epoch)
        if self.stop_after is not None and len(self.epochs) == self.stop_after:
            raise KeyboardInterrupt

    def run_finished(self, result):
        pass

    def run_stopped(self, run_id, status, message):
        self.stopped.append((status, message))


def test_train_writes_reference_results_layout(small_dataset_path, small_spec, tmp_path):
    dataset = load_dataset(small_dataset_path)
    result = train(dataset, small_spec, create_engine("vectorized"), tmp_path / "run")

    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert list(results)[:3] == ["Start", "End", "epoch0"]
    assert [key for key in results if key.startswith("epoch")] == [
        f"epoch{n}" for n in range(20)]
    assert results["epoch19"]["cost"] == result.costs[-1]
    assert results["run"]["dataset_digest"] == dataset.digest
    assert results["metrics"]["test"]["accuracy"] == result.test_metrics.accuracy
    with h5py.File(tmp_path / "run" / "params.h5") as h5:
        assert sorted(h5) == ["W1", "W2", "W3", "b1", "b2", "b3"]
        assert h5["W1"].shape == (5, 12288)
    assert load_model(tmp_path / "run").spec == small_spec
    assert not (tmp_path / "run" / CHECKPOINT_FILE).exists()


def test_train_stops_early_at_threshold(small_dataset_path, small_spec, tmp_path):
    spec = small_spec.with_overrides(threshold=0.6, epochs=500)
    result = train(load_dataset(small_dataset_path), spec, create_engine("vectorized"),
                   tmp_path / "run")
    assert result.stopped_early
    assert result.costs[-1] <= 0.6
    assert all(cost > 0.6 for cost in result.costs[:-1])
    assert len(result.costs) < 500


def _interrupt_and_resume(dataset, spec, folder):
    interrupter = EpochCounter(stop_after=7)
    with pytest.raises(KeyboardInterrupt):
        train(dataset, spec, create_engine("vectorized"), folder, observers=[interrupter],
              checkpoint_every=5)
    assert interrupter.stopped[0][0] == "interrupted"
    assert (folder / CHECKPOINT_FILE).exists()
    return train(dataset, spec, create_engine("vectorized"), folder, resume=True)


def test_train_resumed_at_refresh_epoch_equals_uninterrupted(small_dataset_path, small_spec,
                                                             tmp_path, monkeypatch):
    # Resuming where the engine recomputes W[1]·X anyway repeats the run bit for bit.
    monkeypatch.setattr(vectorized, "PRODUCT_REFRESH_EPOCHS", 7)
    dataset = load_dataset(small_dataset_path)
    whole = train(dataset, small_spec, create_engine("vectorized"), tmp_path / "whole")

    resumed = _interrupt_and_resume(dataset, small_spec, tmp_path / "cut")

    assert resumed.model.params.max_abs_difference(whole.model.params) == 0.0
    assert resumed.costs == whole.costs
    assert resumed.run_id == json.loads((tmp_path / "cut" / "results.json").read_text()
                                        )["run"]["id"]


def test_train_resumed_elsewhere_matches_to_rounding(small_dataset_path, small_spec, tmp_path):
    dataset = load_dataset(small_dataset_path)
    whole = train(dataset, small_spec, create_engine("vectorized"), tmp_path / "whole")

    resumed = _interrupt_and_resume(dataset, small_spec, tmp_path / "cut")

    assert resumed.model.params.max_abs_difference(whole.model.params) < 1e-12
    assert resumed.costs == pytest.approx(whole.costs, rel=1e-12)


def test_resume_with_other_dataset_is_refused(small_dataset_path, small_spec, tmp_path):
    from tests.conftest import write_h5_dataset
    with pytest.raises(KeyboardInterrupt):
        train(load_dataset(small_dataset_path), small_spec, create_engine("vectorized"),
              tmp_path / "run", observers=[EpochCounter(stop_after=2)])
    other = load_dataset(write_h5_dataset(tmp_path / "other.h5", seed=9))
    with pytest.raises(TrainingError, match=r"cannot resume .*: it was trained on a data set "
                                            r"with digest \w{12}, not .*other.h5"):
        train(other, small_spec, create_engine("vectorized"), tmp_path / "run", resume=True)


def test_resume_without_checkpoint_says_so(small_dataset_path, small_spec, tmp_path):
    with pytest.raises(TrainingError) as caught:
        train(load_dataset(small_dataset_path), small_spec, create_engine("vectorized"),
              tmp_path / "none", resume=True)
    assert str(caught.value) == (f"cannot resume {tmp_path / 'none'}: no checkpoint.npz; "
                                 "no run was started there")


def test_train_into_existing_run_folder_is_refused(small_dataset_path, small_spec, tmp_path):
    dataset = load_dataset(small_dataset_path)
    train(dataset, small_spec, create_engine("vectorized"), tmp_path / "run")
    with pytest.raises(TrainingError, match="already contains a run; pass --resume"):
        train(dataset, small_spec, create_engine("vectorized"), tmp_path / "run")


def test_huge_learning_rate_diverges_with_clear_error(cases, tmp_path):
    spec = load_spec(cases / "params_huge_learning_rate.json")
    dataset = load_dataset(cases / "dataset_valid_small.h5")
    with np.errstate(all="raise"), pytest.raises(TrainingError) as caught:
        # float overflow inside numpy is what divergence looks like; it must surface as
        # the run's error, not as NaN weights.
        try:
            train(dataset, spec, create_engine("vectorized"), tmp_path / "run")
        except FloatingPointError:
            pytest.fail("a floating-point warning escaped from training")
    assert "training diverged at epoch" in str(caught.value)
    assert "learning_rate 1000.0; lower the learning rate" in str(caught.value)
    assert not (tmp_path / "run" / "params.h5").exists()


def test_separable_saturating_dataset_keeps_cost_finite(cases, shared_data, tmp_path):
    spec = load_spec(shared_data / "datasets" / "reference_parameters.json").with_overrides(
        epochs=300)
    with np.errstate(all="raise"):
        result = train(load_dataset(cases / "dataset_separable_saturating.h5"), spec,
                       create_engine("vectorized"), tmp_path / "run")
    assert np.isfinite(result.costs).all()
    assert result.model.params.is_finite()
    assert result.train_metrics.accuracy == 1.0


def test_float32_and_float64_runs_agree(small_dataset_path, small_spec, tmp_path):
    dataset = load_dataset(small_dataset_path)
    double = train(dataset, small_spec, create_engine("vectorized"), tmp_path / "f64")
    single = train(dataset, small_spec.with_overrides(dtype="float32"),
                   create_engine("vectorized"), tmp_path / "f32")
    assert single.model.params.W[1].dtype == np.float32
    assert single.model.params.max_abs_difference(double.model.params) < 1e-4
    assert single.costs[-1] == pytest.approx(double.costs[-1], rel=1e-4)


def test_reference_network_on_real_data_fits_training_set(real_dataset, shared_data, tmp_path):
    spec = load_spec(shared_data / "datasets" / "reference_parameters.json")
    result = train(real_dataset, spec, create_engine("vectorized"), tmp_path / "run")
    # Seed 1 reaches the reference threshold near epoch 790.
    assert result.stopped_early
    assert result.train_metrics.accuracy >= 0.98
    assert result.test_metrics.accuracy >= 0.70
    assert result.test_metrics.examples == 50
