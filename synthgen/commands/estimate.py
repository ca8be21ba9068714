"""The output's size on disk, estimated at plan time from the image format, size and sample count.

No model runs at plan time. An image's bytes on disk are OVERHEAD + (bytes per RGB pixel) x
pixels x channels / 3, from measurements with the project's encoder (output/formats/base.py),
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

import heapq
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from synthgen.engine.job import JobContext
from synthgen.engine.progress import format_duration
from synthgen.models.configs import ModelInfo
from synthgen.output.card import human_bytes
from synthgen.spec.plan import Plan, Sample

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


# `synthgen plan --calibrate`: time one batch on this machine and project the job's wall time.
#
# A Worker loads the model here, as an actor would. Its first batch warms up (kernels, allocator,
# caches) and is timed apart; the second batch is the figure. A batch is the worker's own
# sampling step plus the encoding of its images (the worker overlaps encoding with the next batch,
# so on a GPU the figure is an upper bound). The projection hands the shards in order to the
# first free actor, as the executor does: each actor first loads its model (all at once), and a
# shard costs ceil(size / batch_size) batches. Not counted: Ray's start, uploads, the label
# filter's judging and redraws, and actors on one machine slowing each other down.
if TYPE_CHECKING:
    from synthgen.engine.worker import Worker


@dataclass(frozen=True)
class Calibration:
    device: str
    workers: int
    threads: int
    batch_size: int
    load_s: float
    warmup_s: float
    batch_s: float
    projected_s: float

    @property
    def images_per_s(self) -> float:
        return self.batch_size / self.batch_s

    def to_json(self) -> dict[str, float | int | str]:
        return {**asdict(self), "images_per_s": round(self.images_per_s, 2)}

    def describe(self, samples: int) -> list[str]:
        return [f"{self.device}, {self.threads} torch thread(s) per worker: model loaded in "
                f"{self.load_s:.1f} s, warm-up batch of {self.batch_size} in {self.warmup_s:.2f} s, "
                f"then {self.batch_s:.2f} s ({self.images_per_s:.1f} images/s per worker)",
                f"~{format_duration(self.projected_s)} for {samples} samples on {self.workers} "
                "worker(s) (Ray's start, uploads and filter redraws not counted)"]


def calibrate(plan: Plan) -> Calibration:
    """Load the model here, time a warm-up batch and a second batch, project the job."""
    from synthgen.engine.worker import start_local  # torch: only when --calibrate asks

    started = time.perf_counter()
    local = start_local(JobContext(spec=plan.spec, manifest=plan.manifest))
    worker = local.worker
    load_s = time.perf_counter() - started
    size = plan.spec.compute.batch_size
    ids = [i % plan.total for i in range(2 * size)]  # a job smaller than two batches repeats
    warmup_s = _time_batch(worker, [plan.sample(i) for i in ids[:size]])
    batch_s = _time_batch(worker, [plan.sample(i) for i in ids[size:]])
    workers = min(local.pool.workers, plan.num_shards)
    return Calibration(device=worker.adapter.device.type, workers=workers, threads=local.threads,
                       batch_size=size,
                       load_s=round(load_s, 3), warmup_s=round(warmup_s, 3), batch_s=round(batch_s, 3),
                       projected_s=round(project(plan, workers, load_s, batch_s), 1))


def project(plan: Plan, workers: int, load_s: float, batch_s: float) -> float:
    """Wall seconds for every shard, each to the actor that frees first (the executor's order)."""
    free = [load_s] * workers
    size = plan.spec.compute.batch_size
    for shard in plan.shards():
        heapq.heapreplace(free, free[0] + math.ceil(shard.size / size) * batch_s)
    return max(free)


def _time_batch(worker: Worker, batch: list[Sample]) -> float:
    started = time.perf_counter()
    pixels = worker._generate_batch(batch, 0)  # the worker's own step: OOM backoff included
    worker.encoder.encode_batch(pixels)
    return time.perf_counter() - started
