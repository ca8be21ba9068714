"""The output's size on disk, estimated at plan time from the image format, size and sample count.

No model runs at plan time. An image's bytes on disk are OVERHEAD + (bytes per RGB pixel) x
pixels x channels / 3, from measurements with the project's encoder (dataset/image_encoding.py),
read back from Parquet as written (zstd also squeezes the headers small images repeat):
- bytes per RGB pixel (QUALITY_CURVES): two photographs, scikit-learn's china.jpg and flower.jpg
  centre-cropped to 512x512, at several quality settings: the closest stand-in for a
  photographic model that needs no download. Flat or sparse images (drawings, digits) take
  less; noise takes far more.
- OVERHEAD: the built-in digits job (pipelines/digits.yaml, 1,000 images of 8x8 gray) at the
  defaults (quality 90, PNG level 1), less its pixels at the photographs' rate.
On that digits job the estimate is within 1% per format; on a variant it was not fitted to
(seed 7, guidance 3.0, 200 images) it came 7-9% under (png 8%, jpeg 9%, webp 7%).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from synthgen.dataset.card import human_bytes
from synthgen.models.info import ModelInfo
from synthgen.spec.plan import Plan

# format -> bytes on disk per image besides its pixels
OVERHEAD = {"png": 46, "jpeg": 55, "webp": 90}
# format -> (setting, bytes per RGB pixel of the photographs): quality for jpeg and webp,
# compress level for png; linear in between.
QUALITY_CURVES = {
    "jpeg": ((50, 0.103), (75, 0.152), (90, 0.259), (95, 0.375), (100, 0.752)),
    "webp": ((50, 0.084), (75, 0.112), (90, 0.211), (95, 0.289), (100, 0.408)),
    "png": ((0, 3.003), (1, 1.625), (6, 1.467), (9, 1.444)),
}
# Measured on the digits job: a row's other columns in a shard (zstd), a row of index.parquet,
# and what a Parquet file costs besides its rows (schema, Hugging Face features, footer).
ROW_METADATA_BYTES = 22
INDEX_ROW_BYTES = 14
SHARD_FILE_BYTES = 5_000
INDEX_FILE_BYTES = 4_700


@dataclass(frozen=True)
class SizeEstimate:
    """The estimate and what it rests on; `bytes` covers the shards and index.parquet (job.json,
    the card, the preview and the logs add some tens of KB)."""

    bytes: int
    bytes_per_image: int
    image_format: str
    width: int
    height: int
    channels: int

    def to_json(self) -> dict[str, int | str]:
        return asdict(self)

    def describe(self) -> str:
        return (f"~{human_bytes(self.bytes)} ({self.image_format} {self.width}x{self.height}x"
                f"{self.channels}, ~{human_bytes(self.bytes_per_image)} per image; measured table)")


def estimate_size(plan: Plan, info: ModelInfo | None) -> SizeEstimate | None:
    """The estimate, or None when the image size is unknown here (a model not on this machine
    and no sampler.height/width in the spec)."""
    sampler, output = plan.spec.sampler, plan.spec.output
    width = sampler.width or (info.sample_size * info.vae_scale_factor if info else None)
    height = sampler.height or (info.sample_size * info.vae_scale_factor if info else None)
    if width is None or height is None:
        return None
    channels = 1 if info and info.channels == 1 and info.vae_scale_factor == 1 else 3
    fmt = output.image_format
    setting = output.png_compress_level if fmt == "png" else output.quality
    pixels = _curve(fmt, setting) * width * height * channels / 3
    per_image = round(OVERHEAD[fmt] + pixels) + ROW_METADATA_BYTES
    total = (plan.num_shards * SHARD_FILE_BYTES + INDEX_FILE_BYTES
             + plan.total * (per_image + INDEX_ROW_BYTES))
    return SizeEstimate(total, per_image, fmt, width, height, channels)


def _curve(fmt: str, setting: int) -> float:
    """The photographs' bytes per RGB pixel at this setting, linear between measured points."""
    points = QUALITY_CURVES[fmt]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        if setting <= x1:
            return y0 + (y1 - y0) * (max(setting, x0) - x0) / (x1 - x0)
    return points[-1][1]
