"""Images as small pixel features: the space `synthgen eval`, the filter and diversity see.

A feature is the image box-downscaled (area average, `adaptive_avg_pool2d`) to a small square,
grayscale or RGB, times a scale. For the digits the space is that of `load_digits` itself: 8x8
gray on its 0..16 scale (load_digits counted ink in 4x4 blocks of 32x32 bitmaps, so an area
average times 16 is the same resampling); the real digits map onto it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from synthgen.dataset.labeled_sources import BUILTIN_DIGITS

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
