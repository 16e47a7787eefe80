"""Evaluation metrics of a binary classifier: accuracy, the confusion matrix and the rates
derived from it, and which examples it got wrong."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    """Metrics on one split. Rates whose denominator is zero are reported as 0.0."""

    examples: int
    accuracy: float
    tn: int
    fp: int
    fn: int
    tp: int
    sensitivity: float  # true positive rate, recall: TP / (TP + FN)
    specificity: float  # TN / (TN + FP)
    false_positive_rate: float  # FP / (FP + TN)
    precision: float  # TP / (TP + FP)
    f1: float
    mislabeled: tuple[int, ...]  # indices of the examples predicted wrongly

    @property
    def error(self) -> float:
        return 1.0 - self.accuracy

    def to_json(self) -> dict:
        document = asdict(self)
        document["mislabeled"] = list(self.mislabeled)
        document["error"] = self.error
        return document


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def evaluate_predictions(predicted: np.ndarray, labels: np.ndarray) -> Metrics:
    """Compare predicted classes `(m,)` with true labels `(m,)`, both in {0, 1}."""
    predicted = np.asarray(predicted).reshape(-1).astype(np.int64)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    tp = int(np.sum((predicted == 1) & (labels == 1)))
    tn = int(np.sum((predicted == 0) & (labels == 0)))
    fp = int(np.sum((predicted == 1) & (labels == 0)))
    fn = int(np.sum((predicted == 0) & (labels == 1)))
    precision = _ratio(tp, tp + fp)
    sensitivity = _ratio(tp, tp + fn)
    return Metrics(
        examples=len(labels),
        accuracy=_ratio(tp + tn, len(labels)),
        tn=tn, fp=fp, fn=fn, tp=tp,
        sensitivity=sensitivity,
        specificity=_ratio(tn, tn + fp),
        false_positive_rate=_ratio(fp, fp + tn),
        precision=precision,
        f1=0.0 if precision + sensitivity == 0
        else 2 * precision * sensitivity / (precision + sensitivity),
        mislabeled=tuple(int(i) for i in np.flatnonzero(predicted != labels)),
    )
