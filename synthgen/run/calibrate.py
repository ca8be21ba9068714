"""`synthgen plan --calibrate`: time one batch on this machine and project the job's wall time.

A Worker loads the model here, as an actor would. Its first batch warms up (kernels, allocator,
caches) and is timed apart; the second batch is the figure. A batch is the worker's own
sampling step plus the encoding of its images (the worker overlaps encoding with the next batch,
so on a GPU the figure is an upper bound). The projection hands the shards in order to the
first free actor, as the executor does: each actor first loads its model (all at once), and a
shard costs ceil(size / batch_size) batches. Not counted: Ray's start, uploads, the label
filter's judging and redraws, and actors on one machine slowing each other down.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from synthgen.run.job import JobContext
from synthgen.run.progress import format_duration
from synthgen.spec.plan import Plan, Sample

if TYPE_CHECKING:
    from synthgen.run.worker import Worker


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
    from synthgen.run.local_worker import start_local  # torch: only when --calibrate asks

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
