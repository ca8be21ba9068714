"""The Ray actor of a JobGroup: one model for the shards of several jobs (a sweep's cells).

It loads the model of the group's lead job when it starts (answering `node_id` says it is
loaded, as for WorkerActor), then makes one Worker per job on first use, every one on the same
ModelCache: the jobs share the model, so it is loaded once per actor for the whole group.
Each result carries the actor's ActorStats, so the driver can show the loads per actor.
"""

from __future__ import annotations

from dataclasses import replace

import ray

from synthgen.run.actor import WorkerActor
from synthgen.run.job import ActorStats, JobGroup, ShardResult
from synthgen.run.model_cache import ModelCache
from synthgen.storage import s3


class GroupActor(WorkerActor):
    """WorkerActor's thread discipline, with a Worker per job of the group."""

    def __init__(self, group: JobGroup, threads: int, credentials: s3.Credentials) -> None:
        from synthgen.run.worker import Worker  # torch: in the actor, never in the driver

        self.group, self.threads, self.make = group, threads, Worker
        # bare (tests, benchmarks): no Ray to ask, and asking would start one
        inside = ray.get_runtime_context().get_actor_id() if ray.is_initialized() else None
        self.actor_id = inside or "local"
        self.models = ModelCache()
        self.workers: dict[str, Worker] = {}
        super().__init__(next(iter(group.jobs.values())), threads, credentials, models=self.models)
        self.workers[next(iter(group.jobs))] = self.worker

    def run_shard(self, address: tuple[str, int], attempt_no: int) -> ShardResult:  # type: ignore[override]
        key, index = address
        result = self.torch_thread.submit(self._run, key, index, attempt_no).result()
        stats = ActorStats(self.actor_id, self.models.loads, round(self.models.load_s, 3), len(self.workers))
        return replace(result, job=key, actor=stats)

    def _run(self, key: str, index: int, attempt_no: int) -> ShardResult:
        if key not in self.workers:
            self.workers[key] = self.make(self.group.jobs[key], self.threads, self.models)
        self.worker = self.workers[key]  # progress() reads the shard in hand
        return self.worker.run_shard(index, attempt_no)
