"""The built-in digits classifier: an RBF SVM on the real training digits (see quality/filter.py)."""

from __future__ import annotations

import functools

import numpy as np
from sklearn.model_selection import cross_val_predict
from sklearn.svm import SVC

from synthgen.dataset.labeled_sources import BUILTIN_DIGITS
from synthgen.quality.features import DIGITS_SPACE
from synthgen.quality.labeled_features import load_labeled


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class DigitsJudge:
    """The built-in digits classifier (see the module docstring)."""

    def __init__(self) -> None:
        train = load_labeled(f"{BUILTIN_DIGITS}:train", DIGITS_SPACE)
        self.space = DIGITS_SPACE
        self.svc = SVC().fit(train.features, train.labels)
        held_out = cross_val_predict(SVC(), train.features, train.labels, cv=3, method="decision_function")
        self.temperature = _fit_temperature(held_out, train.labels)

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        decision = self.svc.decision_function(self.space.features(pixels))
        return softmax(self.temperature * decision)


def _fit_temperature(decision: np.ndarray, labels: np.ndarray) -> float:
    """The softmax temperature with the least held-out negative log-likelihood."""
    grid = np.geomspace(0.05, 50.0, 200)
    rows = np.arange(len(labels))
    nll = [-np.log(softmax(t * decision)[rows, labels] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


@functools.cache
def digits_judge() -> DigitsJudge:
    return DigitsJudge()
