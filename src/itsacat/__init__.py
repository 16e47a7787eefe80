"""itsacat: a machine-learning pipeline inside a DevOps delivery pipeline."""

__version__ = "0.1.0"
