"""Training data for `synthgen train`: every source becomes one in-memory tensor in [-1, 1].

The models trained here are small (digits, icons, tiny folders), so holding the whole dataset in
memory keeps the training loop simple, fast on CPU and exactly resumable. Sources are read by
inputs/labeled_sources.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from synthgen.errors import UserError
from synthgen.inputs.labeled_sources import digits_split, load_digits_split, open_labeled

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


@dataclass
class LabeledImages:
    """Images as float32 [N, C, H, W] in [-1, 1], int64 labels [N], and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    description: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_source(
    source: str, image_size: int | None, channels: int | None, limit: int | None = None
) -> LabeledImages:
    """Load `builtin:digits` (its training split only), a Parquet dataset, a synthgen output or
    an image folder (one sub-folder per class); the first `limit` images when given."""
    if source.startswith("builtin:"):
        if digits_split(source, "train") != "train":
            raise UserError("source", source, "train on builtin:digits (its training split) only")
        data = _digits(limit)
        return _resize(data, image_size) if image_size else data
    opened = open_labeled(source)
    rows = list(islice(opened.items, limit))
    if not rows:
        raise UserError("source", source, "it holds no images")
    pils, labels = [p for p, _ in rows], [label for _, label in rows]
    return _from_pils(pils, labels, list(opened.class_names), image_size, channels, description=source)


def _digits(limit: int | None) -> LabeledImages:
    """sklearn digits with index < 1200 (0..16 ink levels mapped to [-1, 1], kept unquantized)."""
    digits = load_digits_split("train", limit)
    images = torch.from_numpy(digits.images).unsqueeze(1)
    return LabeledImages(
        images=images * 2 - 1,
        labels=torch.from_numpy(digits.labels),
        class_names=list(digits.class_names),
        description=f"sklearn load_digits index < {len(digits.labels)}",
    )


def _resize(data: LabeledImages, size: int) -> LabeledImages:
    if data.images.shape[-1] == size:
        return data
    images = F.interpolate(data.images, size=(size, size), mode="bilinear", antialias=True)
    data.images = images.clamp(-1, 1)
    return data


def _from_pils(  # noqa: PLR0913 - the images and how to shape them
    pils: list[Image.Image],
    labels: list[int],
    names: list[str],
    image_size: int | None,
    channels: int | None,
    description: str,
) -> LabeledImages:
    """Convert to one channel when every image is grayscale (or when asked), else RGB."""
    if channels is None:
        channels = 1 if all(p.mode in GRAY_MODES for p in pils) else 3
    size = image_size or pils[0].size[0]
    mode = "L" if channels == 1 else "RGB"
    arrays = [_to_array(p, mode, size) for p in pils]
    images = torch.from_numpy(np.stack(arrays)).float() / 127.5 - 1
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    bad = [x for x in labels if not 0 <= x < len(names)]
    if bad:
        raise UserError("source", description, f"label {bad[0]} is outside the {len(names)} names")
    return LabeledImages(images.contiguous(), torch.tensor(labels), names, description)


def _to_array(image: Image.Image, mode: str, size: int) -> np.ndarray:
    image = image.convert(mode)
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)
