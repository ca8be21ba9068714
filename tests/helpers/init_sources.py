"""Labeled real image sources written the way users keep theirs: an image folder of digits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from synthgen.inputs.labeled_sources import load_digits_split


def digits_folder(out: Path, classes: tuple[str, ...] = ("0", "1", "2"), per_class: int = 5) -> Path:
    """`out/<class>/<n>.png`: the first `per_class` training digits of each class, 8x8 gray PNG."""
    digits = load_digits_split("train")
    for name in classes:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for n, index in enumerate(np.flatnonzero(digits.labels == int(name))[:per_class]):
            pixels = (digits.images[index] * 255).round().astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{n:03d}.png")
    return out
