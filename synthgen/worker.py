"""The worker: one loaded model, the reverse loop, and the shard writer.

A plain class: Ray wraps it in an actor, while tests and benchmarks use it bare. Each shard
is generated batch by batch (encoding overlaps the next batch), built whole in memory, put
in one call, then committed by a create-only marker: the first marker for a shard wins.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from synthgen import diversity, faults
from synthgen.dataset import Provenance, shard_table, table_bytes
from synthgen.filter import LabelFilter, ShardDraws
from synthgen.imaging import Encoder
from synthgen.job import JobContext, ShardResult
from synthgen.malloc import keep_freed_memory
from synthgen.models import inspect_model, load_adapter
from synthgen.plan import Sample, Shard
from synthgen.storage import Store, data_path, json_bytes, marker_path

log = logging.getLogger("synthgen.worker")


class Worker:
    def __init__(self, job: JobContext, threads: int | None = None) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.spec = job.spec
        self.plan = job.plan
        self.info = inspect_model(job.spec.model)
        self.adapter = load_adapter(self.info, job.spec.model)
        keep_freed_memory(self.adapter.device)
        self.store = Store(job.spec.output.uri, job.spec.output.storage_options)
        self.driver_commits = job.driver_commits
        self.encoder = Encoder.from_spec(job.spec.output)
        self.batch_size = job.spec.compute.batch_size
        self.filter = (LabelFilter.load(job.spec.filter, self.plan.manifest.class_names, self.adapter.device)
                       if job.spec.filter else None)
        self.max_draws = job.spec.filter.max_draws if job.spec.filter else 1
        self.done = 0
        self.provenance = Provenance(
            job_id=self.plan.job_id, model=job.spec.model.source, model_revision=self.info.revision,
            scheduler=job.spec.sampler.scheduler, steps=job.spec.sampler.steps,
            guidance_scale=job.spec.sampler.guidance_scale,
            image_format=job.spec.output.image_format,
        )

    def progress(self) -> int:
        """Images finished in the shard in hand (polled by the driver's progress bar)."""
        return self.done

    def run_shard(self, index: int, attempt_no: int = 0) -> ShardResult:
        """Generate, write and commit one shard; a shard committed already is left alone."""
        start = time.perf_counter()
        shard = self.plan.shard(index)
        if self.store.exists(marker_path(index)):
            marker = self.store.read_json(marker_path(index))
            return ShardResult(index, marker["rows"], 0.0, False, marker, self.batch_size)
        drawn = self._generate_shard(self.plan.samples(shard), index, attempt_no)
        table = shard_table(drawn.chosen, drawn.images, drawn.sizes, self.provenance,
                            self.plan.manifest.class_names, scores=drawn.scores, draws=drawn.counts)
        data = table_bytes(table)
        marker, won = self._commit(shard, data, attempt_no, time.perf_counter() - start,
                                   {"diversity": diversity.to_marker(drawn.pair_stats())})
        return ShardResult(index, shard.size, time.perf_counter() - start, won, marker,
                           self.batch_size, pending=self.driver_commits)

    def _generate_shard(self, samples: list[Sample], index: int, attempt_no: int) -> ShardDraws:
        """Sample batch after batch while a thread encodes the previous one. With a filter, the
        samples it rejects are drawn again with the seeds of draw 1, 2, ... (see filter.py)."""
        self.done = 0
        drawn = ShardDraws(samples, self.spec.seed, self.filter)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode") as pool:
            for draw in range(self.max_draws):
                todo, pos = drawn.todo(draw), 0
                while pos < len(todo):
                    faults.fire("raise", index, attempt_no)
                    faults.fire("hold", index, attempt_no)
                    batch = todo[pos : pos + self.batch_size]
                    pixels = self._generate_batch([s for _, s in batch], index, attempt_no)
                    keep = drawn.record(batch, pixels, draw)
                    drawn.encoding(batch, keep, pool.submit(self.encoder.encode_batch, pixels[keep]))
                    pos += len(batch)
                    self.done = drawn.accepted
                    faults.fire("crash", index, attempt_no)
                drawn.end_draw()
                if not drawn.pending:
                    break
            drawn.collect()
        if drawn.pending:
            raise drawn.failure(index, self.max_draws)
        return drawn

    def _generate_batch(self, batch: list[Sample], index: int, attempt_no: int) -> np.ndarray:
        """Run the loop; on an accelerator out-of-memory error halve the batch and keep it."""
        while True:
            try:
                return self._generate_chunks(batch, index, attempt_no)
            except torch.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                log.warning("shard %d: out of memory, batch size now %d", index, self.batch_size)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    def _generate_chunks(self, batch: list[Sample], index: int, attempt_no: int) -> np.ndarray:
        parts = []
        for i in range(0, len(batch), self.batch_size):
            chunk = batch[i : i + self.batch_size]
            if len(chunk) > 1 and faults.armed("oom", index, attempt_no):
                raise torch.OutOfMemoryError("injected out of memory")
            parts.append(self.adapter.generate(chunk, self.spec.sampler))
        return np.concatenate(parts)

    def _commit(
        self, shard: Shard, data: bytes, attempt_no: int, seconds: float,
        extra: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Put the data file whole, then race for the marker; the loser removes its file."""
        attempt = f"{attempt_no:02d}{uuid.uuid4().hex[:10]}"
        file = data_path(shard.index, attempt)
        self.store.put_bytes(file, data)
        faults.fire("crash_after_upload", shard.index, attempt_no)
        marker = {
            "shard": shard.index, "file": file, "rows": shard.size, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(), "first_sample_id": shard.start,
            "last_sample_id": shard.stop - 1, "attempt": attempt, "attempt_no": attempt_no,
            "job_id": self.plan.job_id, "host": socket.gethostname(),
            "seconds": round(seconds, 3), "batch_size": self.batch_size,
            "committed_at": time.time(), **(extra or {}),
        }
        if self.driver_commits:
            return marker, False
        if not self.store.create_only(marker_path(shard.index), json_bytes(marker)):
            winner = self.store.read_json(marker_path(shard.index))
            if winner.get("attempt") != attempt:
                self.store.delete(file)
                return winner, False
            # Our own marker: the store applied the put, its reply was lost, the retry got 412.
        faults.fire("crash_after_marker", shard.index, attempt_no)
        return marker, True
