"""The Ray actor around Workers: one model, on one thread, with the cores the actor reserved.

An actor runs the shards of a JobGroup (a sweep's cells, or a single job: a group of one). It
loads the model of the group's lead job when it starts (answering `node_id` says it is loaded),
then makes one Worker per job on first use, all on one ModelCache: the model is loaded once per
actor for the whole group, and each result carries the actor's ActorStats (its model loads).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING

import ray

from synthgen.engine.job import ActorStats, JobGroup, ShardAddress, ShardResult
from synthgen.storage import s3

if TYPE_CHECKING:
    from synthgen.engine.worker import Worker

log = logging.getLogger("synthgen.worker")


class WorkerActor:
    """The Ray-side wrapper: a Worker per job of the group, with torch given the cores the actor
    reserved.

    The model lives on one thread of its own. Ray runs a threaded actor's calls on whichever
    thread of its pool is free, and OpenMP gives each calling thread its own team: with two
    teams on two cores its threads stopped spinning and slept between ops (a quarter of the
    CPU idle, 23,000 context switches a second). One thread keeps one team.
    """

    def __init__(self, group: JobGroup, threads: int, credentials: s3.Credentials) -> None:
        from synthgen.engine.worker import ModelCache, Worker  # torch: in the actor, never in the driver

        credentials.install()
        _warn_if_niced()
        self.group, self.threads, self.make = group, threads, Worker
        # bare (tests, benchmarks): no Ray to ask, and asking would start one
        inside = ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None
        self.actor_id = inside or "local"
        self.models = ModelCache()
        self.workers: dict[str, Worker] = {}
        self.torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch")
        self.worker = self.torch_thread.submit(self._worker, next(iter(group.jobs))).result()

    def run_shard(self, address: ShardAddress, attempt_no: int) -> ShardResult:
        result = self.torch_thread.submit(self._run, address, attempt_no).result()
        stats = ActorStats(self.actor_id, self.models.loads, round(self.models.load_s, 3), len(self.workers))
        return replace(result, job=address.job, actor=stats)

    def progress(self) -> int:
        return self.worker.progress()

    def node_id(self) -> str:
        """Where this actor runs; answering also says its model is loaded."""
        return ray.get_runtime_context().get_node_id()

    def _run(self, address: ShardAddress, attempt_no: int) -> ShardResult:
        self.worker = self._worker(address.job)  # progress() reads the shard in hand
        return self.worker.run_shard(address.index, attempt_no)

    def _worker(self, key: str) -> Worker:
        """The job's Worker, made on the torch thread the first time the job has a shard here."""
        if key not in self.workers:
            self.workers[key] = self.make(self.group.jobs[key], self.threads, self.models)
        return self.workers[key]


def _warn_if_niced() -> None:
    """A Ray started without synthgen's settings runs its workers at niceness 15 (see
    engine/pool.py): say so, since every other process on the node then slows the model down."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > 0:
        log.warning("this Ray worker runs at niceness %d, below every other process on its node; "
                    "start Ray with RAY_worker_niceness=0 (cluster/Dockerfile does)", niceness)
