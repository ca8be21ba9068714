"""The Ray actor around a Worker: one model, on one thread, with the cores the actor reserved."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import ray

from synthgen.run.job import JobContext, ShardResult
from synthgen.storage import s3

log = logging.getLogger("synthgen.worker")


class WorkerActor:
    """The Ray-side wrapper: a Worker, with torch given the cores the actor reserved.

    The model lives on one thread of its own. Ray runs a threaded actor's calls on whichever
    thread of its pool is free, and OpenMP gives each calling thread its own team: with two
    teams on two cores its threads stopped spinning and slept between ops (a quarter of the
    CPU idle, 23,000 context switches a second). One thread keeps one team.
    """

    def __init__(self, job: JobContext, threads: int, credentials: s3.Credentials) -> None:
        from synthgen.run.worker import Worker  # torch: in the actor, never in the driver

        credentials.install()
        _warn_if_niced()
        self.torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch")
        self.worker = self.torch_thread.submit(Worker, job, threads).result()

    def run_shard(self, index: int, attempt_no: int) -> ShardResult:
        return self.torch_thread.submit(self.worker.run_shard, index, attempt_no).result()

    def progress(self) -> int:
        return self.worker.progress()

    def node_id(self) -> str:
        """Where this actor runs; answering also says its model is loaded."""
        return ray.get_runtime_context().get_node_id()


def _warn_if_niced() -> None:
    """A Ray started without synthgen's settings runs its workers at niceness 15 (see
    run/pool.py): say so, since every other process on the node then slows the model down."""
    niceness = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > 0:
        log.warning("this Ray worker runs at niceness %d, below every other process on its node; "
                    "start Ray with RAY_worker_niceness=0 (cluster/Dockerfile does)", niceness)
