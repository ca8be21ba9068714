"""uint8 arrays -> encoded image bytes (png, jpeg, webp), with fast encoder settings."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from synthgen.spec.job_spec import OutputSpec


@dataclass(frozen=True)
class Encoder:
    """Encodes one image; PIL releases the GIL while compressing, so threads overlap it."""

    image_format: str
    quality: int
    png_compress_level: int

    @classmethod
    def from_spec(cls, output: OutputSpec) -> Encoder:
        return cls(output.image_format, output.quality, output.png_compress_level)

    def encode(self, pixels: np.ndarray) -> bytes:
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        buf = io.BytesIO()
        if self.image_format == "png":
            image.save(buf, format="PNG", compress_level=self.png_compress_level)
        elif self.image_format == "jpeg":
            image.save(buf, format="JPEG", quality=self.quality)
        else:
            image.save(buf, format="WEBP", quality=self.quality, method=4)
        return buf.getvalue()

    def encode_batch(self, batch: np.ndarray) -> list[bytes]:
        return [self.encode(pixels) for pixels in batch]
