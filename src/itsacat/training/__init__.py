"""Engines and the run loop: epochs, early stopping, checkpoints and the run folder."""

from itsacat.training.engine import ENGINES, Engine, EpochResult, create_engine, register_engine
from itsacat.training.run import RunObserver, RunResult, TrainingError, train

__all__ = ["ENGINES", "Engine", "EpochResult", "RunObserver", "RunResult", "TrainingError",
           "create_engine", "register_engine", "train"]
