"""Per-class diversity: the mean distance between two images of a class, and the share of
pairs that are near-duplicates, so that a collapsed class shows.

A distance is the RMS difference of two feature vectors on a 0..1 scale (||a - b|| / sqrt(D)):
0 for the same image. Real digits of one class are 0.21-0.32 apart on average at 8x8, and no
two of the 1,200 training digits are closer than 0.06; pairs closer than NEAR_DUPLICATE (0.05)
count as near-duplicates.

Pair statistics add up: each worker measures the pairs within its shard (written into the
shard's commit marker) and the dataset card sums them without reading images again. Seeds are
hashes, so a shard's pairs are a random sample of the class's pairs and the mean is unbiased.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from synthgen.storage.commit import CommitMarker

NEAR_DUPLICATE = 0.05
MAX_IMAGES = 256  # images per class (and shard) whose pairs are measured


@dataclass(frozen=True)
class PairStats:
    images: int = 0
    pairs: int = 0
    distance_sum: float = 0.0
    near_duplicates: int = 0

    def __add__(self, other: PairStats) -> PairStats:
        return PairStats(self.images + other.images, self.pairs + other.pairs,
                         self.distance_sum + other.distance_sum,
                         self.near_duplicates + other.near_duplicates)

    @property
    def mean_distance(self) -> float | None:
        return self.distance_sum / self.pairs if self.pairs else None

    @property
    def near_duplicate_fraction(self) -> float | None:
        return self.near_duplicates / self.pairs if self.pairs else None

    def to_list(self) -> list[float]:
        """Compact form for commit markers."""
        return [self.images, self.pairs, round(self.distance_sum, 6), self.near_duplicates]

    @classmethod
    def from_list(cls, values: list[Any]) -> PairStats:
        images, pairs, distance_sum, near = values
        return cls(int(images), int(pairs), float(distance_sum), int(near))

    def summary(self) -> dict[str, Any]:
        mean, near = self.mean_distance, self.near_duplicate_fraction
        return {"images": self.images, "pairs": self.pairs,
                "mean_distance": None if mean is None else round(mean, 4),
                "near_duplicate_fraction": None if near is None else round(near, 4)}


def pair_stats(unit_features: np.ndarray, limit: int = MAX_IMAGES) -> PairStats:
    """Pairs among the first `limit` rows of [N, D] features on a 0..1 scale."""
    n = len(unit_features)
    x = np.asarray(unit_features[:limit], dtype=np.float64)
    if len(x) < 2:
        return PairStats(images=n)
    norms = (x * x).sum(axis=1)
    squared = np.maximum(norms[:, None] + norms[None, :] - 2 * x @ x.T, 0.0)  # float64: exact enough
    rows, cols = np.triu_indices(len(x), 1)
    pairs = np.sqrt(squared[rows, cols] / x.shape[1])
    return PairStats(n, len(pairs), float(pairs.sum()), int((pairs < NEAR_DUPLICATE).sum()))


def per_class(unit_features: np.ndarray, labels: Iterable[int],
              limit: int = MAX_IMAGES) -> dict[int, PairStats]:
    """Pair statistics of each label's rows."""
    labels = np.asarray(list(labels))
    return {int(label): pair_stats(unit_features[labels == label], limit) for label in np.unique(labels)}


def to_marker(stats: dict[int, PairStats]) -> dict[str, list[float]]:
    return {str(label): s.to_list() for label, s in sorted(stats.items())}


def from_markers(markers: Iterable[CommitMarker]) -> dict[int, PairStats]:
    """Sum the per-shard statistics the workers wrote into the commit markers."""
    total: dict[int, PairStats] = {}
    for marker in markers:
        for label, values in marker.diversity.items():
            total[int(label)] = total.get(int(label), PairStats()) + PairStats.from_list(values)
    return total
