"""Init images brought to the model's size and channels: center-crop, pad or stretch.

The result is what a model's encoder takes: float32 (N, C, H, W) in [-1, 1], the pixel scaling
diffusers' image processors use (x / 255 * 2 - 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from synthgen.inputs.labeled_keys import read_keyed
from synthgen.output.readers import load_image
from synthgen.spec.job_spec import InitSpec

RESAMPLE = Image.Resampling.BICUBIC


def fit(image: Image.Image, size: tuple[int, int], resize: str) -> Image.Image:
    """The image at (width, height): cropped to the aspect ratio and scaled, scaled into it with
    black borders, or scaled to it ignoring the aspect ratio."""
    if image.size == size:
        return image
    if resize == "center-crop":
        return ImageOps.fit(image, size, RESAMPLE)
    if resize == "pad":
        return ImageOps.pad(image, size, RESAMPLE, color=0)
    return image.resize(size, RESAMPLE)


def init_pixels(images: Sequence[Image.Image], size: tuple[int, int], channels: int,
                resize: str) -> np.ndarray:
    """Images -> float32 (N, C, H, W) in [-1, 1]: gray for one channel, else RGB."""
    mode = "L" if channels == 1 else "RGB"
    arrays = [np.asarray(fit(im.convert(mode), size, resize), dtype=np.float32) for im in images]
    batch = np.stack([a[..., None] if a.ndim == 2 else a for a in arrays]).transpose(0, 3, 1, 2)
    return batch / 127.5 - 1.0


def decode_init_pixels(init: InitSpec, encoded: Sequence[tuple[str, bytes]], size: tuple[int, int],
                       channels: int) -> np.ndarray:
    """(key, encoded image) pairs -> the model's input; a file that cannot be decoded is named."""
    images = []
    for key, data in encoded:
        try:
            images.append(load_image(data))
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"init image {key} of {init.source} cannot be decoded: {exc}") from None
    return init_pixels(images, size, channels, init.resize)


def read_init_images(init: InitSpec | None, keys: Sequence[str | None]) -> dict[str, bytes]:
    """A shard's init images, encoded, read from the source by key (never via the driver);
    none for a job without init."""
    if init is None:
        return {}
    return read_keyed(init.source, init.storage_options, [k for k in keys if k is not None])
