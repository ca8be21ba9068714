"""The worker: one loaded model, the reverse loop, and the shard writer.

A plain class: Ray wraps it in an actor, while tests and benchmarks use it bare. Each shard
is generated batch by batch (encoding overlaps the next batch), built whole in memory, put
in one call, then committed by a create-only marker: the first marker for a shard wins. Where
the store ignores create-only writes (`driver_commits`), the driver commits it instead
(JobOutput.commit in engine/lifecycle.py), through the same `commit_marker`.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from synthgen.engine.job import JobContext, ShardResult, model_key, model_label
from synthgen.engine.pool import PoolPlan, pool_plan
from synthgen.engine.shard_draws import ShardDraws
from synthgen.inputs.labeled_keys import decode_init_pixels, read_init_images
from synthgen.models.adapter import Adapter
from synthgen.models.configs import ModelInfo
from synthgen.models.registry import inspect_model, load_adapter
from synthgen.models.runtime import keep_freed_memory
from synthgen.output import diversity
from synthgen.output.formats import shard_format
from synthgen.output.formats.base import Encoder
from synthgen.output.shard_schema import DesignColumns, Provenance, shard_table
from synthgen.quality.filter import LabelFilter
from synthgen.spec.job_spec import ModelSpec
from synthgen.spec.plan import Sample, Shard
from synthgen.storage.commit import CommitMarker, commit_marker, read_marker
from synthgen.storage.layout import attempt_id, data_path, marker_path
from synthgen.storage.store import Store

log = logging.getLogger("synthgen.worker")


class ModelCache:
    """The one loaded adapter of an actor, keyed by `model_key` (engine/job.py), so that the jobs
    of a group that share a model load it once: an actor (WorkerActor in engine/actor.py) hands
    one cache to the Worker of each job it runs. It holds one model at most, so that a sweep over
    generators peaks at one model's memory: another key releases the one held before it loads.
    Counts the loads, in all and per model."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.loaded: Adapter | None = None
        self.loads = 0
        self.load_s = 0.0
        self.per_model: dict[str, dict[str, float]] = {}  # model label -> loads, load_s

    def adapter(self, info: ModelInfo, model: ModelSpec) -> Adapter:
        key = model_key(model, info.revision)
        if key != self.key or self.loaded is None:
            self.release()
            started = time.perf_counter()
            self.loaded, self.key = load_adapter(info, model), key
            seconds = time.perf_counter() - started
            self.loads += 1
            self.load_s += seconds
            mine = self.per_model.setdefault(model_label(key), {"loads": 0, "load_s": 0.0})
            mine["loads"] += 1
            mine["load_s"] = round(mine["load_s"] + seconds, 3)
        return self.loaded

    def release(self) -> None:
        """Drop the model held, and give its memory back (the caller drops its own references,
        the Workers using it, first)."""
        if self.loaded is None:
            return
        self.loaded = self.key = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class Worker:
    def __init__(self, job: JobContext, threads: int | None = None,
                 models: ModelCache | None = None, node_id: str | None = None) -> None:
        """`node_id`: the Ray node it runs on, recorded in its markers (None outside Ray)."""
        if threads:
            torch.set_num_threads(threads)
        self.spec = job.spec
        self.plan = job.plan
        self.info = inspect_model(job.spec.model)
        job.check_model(self.info.revision)
        # an actor's Workers share one loaded model (WorkerActor in engine/actor.py)
        self.adapter = (models.adapter(self.info, job.spec.model) if models
                        else load_adapter(self.info, job.spec.model))
        keep_freed_memory(self.adapter.device)
        self.store = Store(job.spec.output.uri, job.spec.output.storage_options)
        self.node_id = node_id
        self.driver_commits = job.driver_commits
        self.lock_token = job.lock_token
        self.encoder = Encoder.from_spec(job.spec.output)
        self.format = shard_format(job.spec.output.format)
        self.batch_size = job.spec.compute.batch_size
        self.filter = (LabelFilter.load(job.spec.filter, self.plan.manifest.class_names, self.adapter.device)
                       if job.spec.filter else None)
        self.max_draws = job.spec.filter.max_draws if job.spec.filter else 1
        self.init_images: dict[str, bytes] = {}  # img2img: the shard in hand's, encoded
        self.done = 0
        self.provenance = Provenance(
            job_id=self.plan.job_id, model=job.spec.model.source, model_revision=self.info.revision,
            scheduler=job.spec.sampler.scheduler, image_format=job.spec.output.image_format,
        )

    def progress(self) -> int:
        """Images finished in the shard in hand (polled by the driver's progress bar)."""
        return self.done

    def run_shard(self, index: int, attempt_no: int = 0) -> ShardResult:
        """Generate, write and commit one shard (put only, with `driver_commits`); a shard
        committed already is left alone, and its result carries the marker found."""
        start = time.perf_counter()
        shard = self.plan.shard(index)
        if self.store.exists(marker_path(index)):
            marker = read_marker(self.store, index)
            return ShardResult(shard=index, rows=marker.rows, seconds=0.0, committed=False,
                               marker=marker, batch_size=self.batch_size)
        drawn = self._generate_shard(self.plan.samples(shard), index)
        data = self.format.encode(shard_table(drawn.rows(), self.provenance, self.plan.manifest.class_names,
                                              DesignColumns.of(self.plan)))
        marker = self._put_data(shard, data, attempt_no, drawn, start)
        won = False
        if not self.driver_commits:
            marker, won = self._commit(marker)
        return ShardResult(shard=index, rows=shard.size, seconds=time.perf_counter() - start,
                           committed=won, marker=marker, batch_size=self.batch_size)

    def _generate_shard(self, samples: list[Sample], index: int) -> ShardDraws:
        """Sample batch after batch while a thread encodes the previous one. With a filter, the
        samples it rejects are drawn again with the seeds of draw 1, 2, ... (see shard_draws.py)."""
        self.done = 0
        self.init_images = read_init_images(self.spec.init, [s.init_id for s in samples])
        drawn = ShardDraws(samples, self.spec.seed, self.filter)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as pool:
            for draw in range(self.max_draws):
                todo, pos = drawn.todo(draw), 0
                while pos < len(todo):
                    batch = todo[pos : pos + self.batch_size]
                    pixels = self._generate_batch([s for _, s in batch], index)
                    keep = drawn.record(batch, pixels, draw)
                    drawn.encoding(batch, keep, pool.submit(self.encoder.encode_batch, pixels[keep]))
                    pos += len(batch)
                    self.done = drawn.accepted
                drawn.end_draw()
                if not drawn.pending:
                    break
            drawn.collect()
        if drawn.pending:
            raise drawn.failure(index, self.max_draws)
        return drawn

    def _generate_batch(self, batch: list[Sample], index: int) -> np.ndarray:
        """Run the loop; on an accelerator out-of-memory error halve the batch and keep it."""
        while True:
            try:
                chunks = range(0, len(batch), self.batch_size)
                return np.concatenate([self._generate_chunk(batch[i : i + self.batch_size]) for i in chunks])
            except torch.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                log.warning("shard %d: out of memory, batch size now %d", index, self.batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def _generate_chunk(self, chunk: list[Sample]) -> np.ndarray:
        """One model call's worth of samples (at most the batch size)."""
        return self.adapter.generate(chunk, self.spec.sampler, self._init_pixels(chunk))

    def _init_pixels(self, chunk: list[Sample]) -> np.ndarray | None:
        """img2img: the chunk's init images decoded at the model's size, or None without init."""
        if self.spec.init is None:
            return None
        keys = [s.init_id or "" for s in chunk]  # every sample of an init job has one (spec/plan.py)
        missing = [key for key in keys if key not in self.init_images]
        if missing:  # a batch run outside a shard (synthgen sample, plan --calibrate)
            self.init_images.update(read_init_images(self.spec.init, missing))
        sampler, size = self.spec.sampler, self.info.sample_size
        encoded = [(key, self.init_images[key]) for key in keys]
        return decode_init_pixels(self.spec.init, encoded, (sampler.width or size, sampler.height or size),
                                  self.info.image_channels)

    def _put_data(self, shard: Shard, data: bytes, attempt_no: int, drawn: ShardDraws,
                  started: float) -> CommitMarker:
        """Put the data file whole, under a name of its own; the marker that will name it."""
        seconds = round(time.perf_counter() - started, 3)
        attempt = attempt_id(attempt_no)
        file = data_path(shard.index, attempt, self.format.suffix)
        self.store.put_bytes(file, data)
        return CommitMarker(
            shard=shard.index, file=file, rows=shard.size, bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), first_sample_id=shard.start,
            last_sample_id=shard.stop - 1, attempt=attempt, attempt_no=attempt_no,
            job_id=self.plan.job_id, host=socket.gethostname(), node_id=self.node_id, seconds=seconds,
            batch_size=self.batch_size, committed_at=time.time(),
            diversity=diversity.to_marker(drawn.pair_stats()))

    def _commit(self, marker: CommitMarker) -> tuple[CommitMarker, bool]:
        """Race for the shard's marker; the loser removes its data file."""
        return commit_marker(self.store, marker, self.lock_token)


# A Worker in this process, shaped like one of the job's actors on this machine.
#
# For `synthgen plan --calibrate` (time a batch) and `synthgen sample` (regenerate one): no Ray,
# the same Worker class, with the torch threads that the embedded local Ray's pool would give each
# actor here (engine/pool.py). Worker side: torch; the commands import this module only when they run.
def local_pool(job: JobContext) -> PoolPlan:
    """The pool `synthgen run` would start on this machine with the embedded local Ray."""
    cluster = {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}
    return pool_plan(job, cluster)


@dataclass(frozen=True)
class LocalWorker:
    worker: Worker
    pool: PoolPlan  # the local pool it stands for
    threads: int  # its torch threads


def start_local(job: JobContext, threads: int | None = None) -> LocalWorker:
    """A loaded Worker with `threads` torch threads (default: what each local actor gets)."""
    pool = local_pool(job)
    threads = threads or max(1, int(pool.cpus))
    return LocalWorker(Worker(job, threads=threads), pool, threads)
