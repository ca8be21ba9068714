"""`synthgen sample`: regenerate one stored sample and compare it with the stored image.

Bit for bit on CPU needs the sample's original batch (docs/guides/precision-devices.md): the
batch of its shard it was generated in, at that shard's batch size (its marker), with the job's
torch threads per worker. A worker forms a shard's batches in the shard's sample order, draw by
draw (engine/worker.py, engine/shard_draws.py): draw 0 takes every sample, draw d the samples the
filter rejected d times, each seeded with `sample_seed(job seed, sample_id, d)`. A row's
`filter_draws` says at which draw it was accepted, so the shard's rows rebuild every batch
without running the filter again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import UnidentifiedImageError

from synthgen.engine.job import JobContext
from synthgen.errors import UserError
from synthgen.output.catalog import Catalog
from synthgen.output.readers import RowReader, iter_rows, load_image
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.plan import Sample, sample_seed
from synthgen.storage.commit import CommitMarker


@dataclass(frozen=True)
class OriginalBatch:
    """The batch a stored sample was generated in, rebuilt from its shard's rows."""

    marker: CommitMarker
    draw: int  # 0: the first draw; d: redrawn d times by the label filter
    samples: list[Sample]  # the batch, in order, with the seeds of that draw
    index: int  # the sample's place in `samples`
    stored: bytes  # its stored image bytes


@dataclass(frozen=True)
class Regenerated:
    sample_id: int
    batch: OriginalBatch
    device: str
    threads: int
    image: bytes  # the regenerated image, encoded as the job encodes
    max_diff: int | None  # largest pixel difference; None when the stored bytes are no image
    differing: int  # pixel values that differ

    @property
    def match(self) -> bool:
        return self.image == self.batch.stored


def original_batch(catalog: Catalog, sample_id: int) -> OriginalBatch:
    """Which samples shared the batch of `sample_id`, with which seeds (no model needed)."""
    plan = catalog.plan
    if not 0 <= sample_id < plan.total:
        raise UserError("SAMPLE_ID", sample_id,
                        f"no such sample; this job has sample_ids 0..{plan.total - 1}")
    shard = plan.shard_of(sample_id)
    marker = catalog.markers.get(shard.index)
    if marker is None:
        raise UserError("SAMPLE_ID", sample_id, f"its shard {shard.index} is not committed yet; "
                        f"finish the job with `synthgen resume {catalog.store.uri}`")
    ids = [s.sample_id for s in plan.samples(shard)]
    rows = list(iter_rows(catalog.store, marker, ["sample_id", "seed", "filter_draws"]))
    if [r["sample_id"] for r in rows] != ids:
        raise RuntimeError(f"shard {shard.index}'s rows ({marker.file}) are not the plan's samples")
    position = ids.index(sample_id)
    draws = [(r["filter_draws"] or 1) - 1 for r in rows]
    draw = draws[position]
    todo = [p for p, d in enumerate(draws) if d >= draw]  # the samples still pending at that draw
    first = todo.index(position) // marker.batch_size * marker.batch_size
    members = todo[first : first + marker.batch_size]
    samples = [replace(plan.sample(ids[p]), seed=sample_seed(plan.spec.seed, ids[p], draw)) for p in members]
    index = members.index(position)
    if samples[index].seed != rows[position]["seed"]:
        raise RuntimeError(f"sample {sample_id}: its stored seed {rows[position]['seed']} is not the "
                           f"plan's seed {samples[index].seed} for draw {draw}")
    stored = RowReader(catalog.store, ["image"]).row(marker, position)["image"]["bytes"]
    return OriginalBatch(marker, draw, samples, index, stored)


def regenerate(catalog: Catalog, sample_id: int, threads: int | None = None) -> Regenerated:
    """Load the job's model here, run the sample's original batch, compare with the stored image."""
    from synthgen.engine.worker import start_local  # torch: only when `synthgen sample` runs

    batch = original_batch(catalog, sample_id)
    local = start_local(JobContext(spec=_batch_spec(catalog, batch), manifest=catalog.plan.manifest), threads)
    worker, pinned = local.worker, catalog.record.model.revision
    if pinned and worker.info.revision != pinned:
        raise UserError("model.source", worker.info.source, f"resolves to revision {worker.info.revision} "
                        f"here, but the job was made with {pinned}; make that revision available")
    pixels = worker._generate_batch(batch.samples, batch.marker.shard)  # the worker's own step
    image = worker.encoder.encode(pixels[batch.index])
    max_diff, differing = compare(image, batch.stored)
    return Regenerated(sample_id, batch, worker.adapter.device.type, local.threads, image, max_diff,
                       differing)


def compare(image: bytes, stored: bytes) -> tuple[int | None, int]:
    """(largest pixel difference, pixel values that differ) between two encoded images;
    (None, 0) when the stored bytes are not a readable image of the same size."""
    try:
        ours, theirs = np.asarray(load_image(image)), np.asarray(load_image(stored))
    except (UnidentifiedImageError, OSError):
        return None, 0
    if ours.shape != theirs.shape:
        return None, 0
    diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
    return int(diff.max()), int((diff > 0).sum())


def _batch_spec(catalog: Catalog, batch: OriginalBatch) -> JobSpec:
    """The job's spec as its worker ran that shard: the shard's batch size, no filter (the draws
    come from the rows), and the output as opened here (job.json keeps no credentials)."""
    spec = catalog.plan.spec
    output = spec.output.model_copy(update={"uri": catalog.store.uri,
                                            "storage_options": catalog.store.storage_options})
    compute = spec.compute.model_copy(update={"batch_size": batch.marker.batch_size})
    return spec.model_copy(update={"filter": None, "output": output, "compute": compute})
