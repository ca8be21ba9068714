"""Labeled images read into features (quality/features.py): what eval and the built-in judge
train and test on. Sources are read by dataset/labeled_sources.py, images turned into features
as they are read, so large images never pile up in memory."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from synthgen.dataset.builtin_digits import load_digits_split
from synthgen.dataset.labeled_sources import BUILTIN_DIGITS, LabeledSource, digits_split, open_labeled
from synthgen.errors import UserError
from synthgen.quality.features import FeatureSpace

Role = Literal["test", "train", "data"]


@dataclass
class Labeled:
    """Features [N, D], labels [N] indexing `class_names`, and where they came from."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, found, strict=True)}

    def relabel(self, real: Labeled) -> Labeled:
        """The same rows with labels indexing `real`'s class names (matched by name)."""
        names = real.class_names
        used = {self.class_names[i] for i in np.unique(self.labels)}
        missing = [n for n in self.class_names if n in used and n not in names]
        if missing:
            raise UserError("--real", real.source, f"the real data has no class {missing[0]!r}, which "
                                                   f"{self.source} holds; give real data of the same classes")
        lookup = np.array([names.index(n) if n in names else -1 for n in self.class_names], dtype=np.int64)
        return Labeled(self.features, lookup[self.labels], names, self.source)


def real_train_source(real: str) -> str | None:
    """The real training set that pairs with a test source by default (digits only)."""
    return f"{BUILTIN_DIGITS}:train" if real.startswith(BUILTIN_DIGITS) else None


def load_labeled(source: str, space: FeatureSpace, role: Role = "data",  # noqa: PLR0913 - keywords
                 max_per_class: int | None = None, storage_options: dict[str, Any] | None = None,
                 split: str | None = None) -> Labeled:
    """Read `source` into features. `builtin:digits` is the test split as `role="test"`, the
    training split as `role="train"`; `builtin:digits:train|test` names a split outright."""
    if source.startswith("builtin:"):
        digits = load_digits_split(digits_split(source, "train" if role == "train" else "test"))
        return Labeled(space.features(digits.images), digits.labels, digits.class_names, digits.source)
    return _collect(open_labeled(source, storage_options, split), space, source, max_per_class)


def _collect(rows: LabeledSource, space: FeatureSpace, source: str, max_per_class: int | None) -> Labeled:
    """Features for every row (or the first `max_per_class` of each class, in reading order),
    computed a batch of same-sized images at a time."""
    features: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    labels: list[int] = []
    taken = np.zeros(len(rows.class_names), dtype=np.int64)
    for image, label in rows.items:
        if not 0 <= label < len(rows.class_names):
            raise UserError("source", source, f"label {label} is outside its {len(rows.class_names)} classes")
        if max_per_class is not None and taken[label] >= max_per_class:
            continue
        taken[label] += 1
        pixels = space.pixels(image)
        if batch and (len(batch) == 256 or pixels.shape != batch[0].shape):
            features.append(space.features(np.stack(batch)))
            batch = []
        batch.append(pixels)
        labels.append(label)
    if not labels:
        raise UserError("source", source, "it holds no labeled images")
    features.append(space.features(np.stack(batch)))
    return Labeled(np.concatenate(features), np.array(labels, dtype=np.int64), rows.class_names, source)
