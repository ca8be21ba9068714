"""The Ray actor around Workers: one model, on one thread, with the cores the actor reserved.

An actor runs the shards of a JobGroup (a sweep's cells, or a single job: a group of one). It
loads the model of the job the executor names when it starts (answering `node_id` says it is
loaded), then makes one Worker per job on first use, all on one ModelCache that holds one model:
a shard of a job on another model drops the Workers of the model held, releases it and loads the
next. The executor hands an actor the shards of the model it holds first, so each model loads
once per actor; each result carries the actor's ActorStats (its loads per model).
"""

from __future__ import annotations

import logging
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

    def __init__(self, group: JobGroup, threads: int, credentials: s3.Credentials, first: str = "") -> None:
        from synthgen.engine.worker import ModelCache, Worker  # torch: in the actor, never in the driver

        credentials.install()
        self.group, self.threads, self.make = group, threads, Worker
        # bare (tests, benchmarks): no Ray to ask, and asking would start one
        context = ray.get_runtime_context() if ray.is_initialized() else None
        self.actor_id = (context.get_actor_id() if context else None) or "local"
        self.node = context.get_node_id() if context else None
        self.models = ModelCache()
        self.workers: dict[str, Worker] = {}
        self.torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="torch")
        self.jobs_run: set[str] = set()
        self.held = ""  # the model key of the Workers in `workers`
        self.worker: Worker | None = None
        self.worker = self.torch_thread.submit(self._worker, first or next(iter(group.jobs))).result()

    def run_shard(self, address: ShardAddress, attempt_no: int) -> ShardResult:
        result = self.torch_thread.submit(self._run, address, attempt_no).result()
        self.jobs_run.add(address.job)
        stats = ActorStats(self.actor_id, self.models.loads, round(self.models.load_s, 3),
                           len(self.jobs_run),
                           {k: dict(v) for k, v in self.models.per_model.items()})
        return replace(result, job=address.job, actor=stats)

    def progress(self) -> int:
        worker = self.worker  # None while the next model loads
        return worker.progress() if worker else 0

    def node_id(self) -> str:
        """Where this actor runs; answering also says its model is loaded."""
        return ray.get_runtime_context().get_node_id()

    def _run(self, address: ShardAddress, attempt_no: int) -> ShardResult:
        self.worker = self._worker(address.job)  # progress() reads the shard in hand
        return self.worker.run_shard(address.index, attempt_no)

    def _worker(self, key: str) -> Worker:
        """The job's Worker, made on the torch thread the first time the job has a shard here;
        a job on another model first lets go of every reference to the one held."""
        job = self.group.jobs[key]
        if key not in self.workers:
            if self.workers and self.held != job.model_key:
                self.worker = None
                self.workers.clear()
                self.models.release()
            self.workers[key] = self.make(job, self.threads, self.models, self.node)
            self.held = job.model_key
        return self.workers[key]

