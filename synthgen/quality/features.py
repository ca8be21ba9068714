"""Images as small pixel features: the space `synthgen eval`, the filter and diversity see.

A feature is the image box-downscaled (area average, `adaptive_avg_pool2d`) to a small square,
grayscale or RGB, times a scale. For the digits the space is that of `load_digits` itself: 8x8
gray on its 0..16 scale (load_digits counted ink in 4x4 blocks of 32x32 bitmaps, so an area
average times 16 is the same resampling); the real digits map onto it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from synthgen.errors import UserError
from synthgen.inputs.labeled_sources import (
    BUILTIN_DIGITS,
    LabeledSource,
    digits_split,
    load_digits_split,
    open_labeled,
)

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")

@dataclass(frozen=True)
class FeatureSpace:
    """Images -> flat features: box-downscaled to `size`x`size`, gray (1) or RGB (3), times `scale`."""

    size: int
    channels: int
    scale: float = 1.0
    standardize: bool = False  # whether the eval classifiers standardize features first

    def describe(self) -> str:
        color = "grayscale (luma)" if self.channels == 1 else "RGB"
        text = (f"{self.size}x{self.size} {color} pixels, box (area-average) resampled, "
                f"on a 0-{self.scale:g} scale")
        return text + (", standardized for the classifiers" if self.standardize else "")

    def features(self, images: np.ndarray) -> np.ndarray:
        """[N, H, W, C] (or [N, H, W]) uint8 0..255 or float 0..1 images -> [N, D] float32."""
        x = np.asarray(images, dtype=np.float32)
        if np.asarray(images).dtype == np.uint8:
            x = x / 255.0
        if x.ndim == 3:
            x = x[..., None]
        x = _to_channels(x[..., :3] if x.shape[-1] == 4 else x, self.channels)
        return (_box(x, self.size) * self.scale).reshape(len(x), -1)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """A PIL image as uint8 [H, W, C] in this space's channels (PIL converts palette, alpha...)."""
        pixels = np.asarray(image.convert("L" if self.channels == 1 else "RGB"))
        return pixels[..., None] if pixels.ndim == 2 else pixels


def pixel_space(shape: tuple[int, ...]) -> FeatureSpace:
    """The space a job's own images are compared in: at most 16x16, their own channels, 0..1."""
    _, height, width, channels = shape
    return FeatureSpace(size=min(16, height, width), channels=1 if channels == 1 else 3)


DIGITS_SPACE = FeatureSpace(size=8, channels=1, scale=16.0)
GENERIC_SPACE = FeatureSpace(size=16, channels=3, scale=1.0, standardize=True)


def _to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    if x.shape[-1] == channels:
        return x
    if channels == 1:
        return (x * np.array(LUMA, dtype=np.float32)).sum(-1, keepdims=True)
    return np.broadcast_to(x, (*x.shape[:-1], 3))


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Area-average NHWC images to size x size: block means when the size divides, else torch's
    adaptive average pooling (the same thing with fractional blocks)."""
    n, h, w, c = x.shape
    if h % size == 0 and w % size == 0:
        return x.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))
    import torch  # only here: the worker's hot path reads this module and needs no torch for it
    import torch.nn.functional as F

    pooled = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2), size)
    return pooled.permute(0, 2, 3, 1).numpy()


def space_for(real: str) -> FeatureSpace:
    """The digits' own space for the built-in digits, else 16x16 RGB standardized."""
    return DIGITS_SPACE if real.startswith(BUILTIN_DIGITS) else GENERIC_SPACE


# Labeled images read into features (quality/features.py): what eval and the built-in judge
# train and test on. Sources are read by inputs/labeled_sources.py, images turned into features
# as they are read, so large images never pile up in memory.
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
