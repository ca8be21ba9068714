"""The Ray actor pool: dispatch uncommitted shards, replace dead actors, retry, report.

One actor holds one model (one GPU each where there are GPUs, CPU actors otherwise). Only a
shard index travels to an actor and a small result travels back: images never pass through
the driver or the object store.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthgen.faults import ENV as FAULTS_ENV
from synthgen.worker import JobContext, ShardResult, Worker

log = logging.getLogger("synthgen.executor")

PROGRESS_EVERY_S = 0.5


@dataclass
class PoolPlan:
    """How many actors, and what each reserves."""

    workers: int
    cpus: float
    gpus: float


@dataclass
class Outcome:
    committed: list[ShardResult] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


@dataclass
class Events:
    """Callbacks to the driver: progress (images in flight), a shard done, a shard failed."""

    on_progress: Callable[[int], None] = lambda images: None
    on_done: Callable[[ShardResult], None] = lambda result: None
    on_failed: Callable[[int, str, int], None] = lambda shard, error, attempts: None


class WorkerActor:
    """The Ray-side wrapper: a Worker, with torch given the cores the actor reserved."""

    def __init__(self, job: JobContext, threads: int) -> None:
        self.worker = Worker(job, threads=threads)

    def run_shard(self, index: int, attempt_no: int) -> ShardResult:
        return self.worker.run_shard(index, attempt_no)

    def progress(self) -> int:
        return self.worker.progress()


def connect(address: str | None) -> None:
    """Embedded local Ray by default; an existing cluster with an address or RAY_ADDRESS."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": True}
    if address is None:
        # A private single-machine cluster: no dashboard, and all traffic on loopback.
        kwargs.update(include_dashboard=False, _node_ip_address="127.0.0.1")
    ray.init(address=address, **kwargs)


def pool_plan(job: JobContext, cluster: dict[str, float]) -> PoolPlan:
    """workers=auto: one actor per GPU (gpus_per_worker each), or one CPU actor without GPUs."""
    compute = job.spec.compute
    gpus = cluster.get("GPU", 0.0) if job.spec.model.device != "cpu" else 0.0
    per_gpu = compute.gpus_per_worker if gpus else 0.0
    if compute.workers == "auto":
        workers = max(1, int(gpus // per_gpu)) if per_gpu else 1
    else:
        workers = compute.workers
    if compute.cpus_per_worker != "auto":
        cpus = float(compute.cpus_per_worker)
    elif per_gpu:
        cpus = 1.0
    else:
        cpus = float(max(1, int(cluster.get("CPU", 1.0)) // workers))
    return PoolPlan(workers=workers, cpus=cpus, gpus=per_gpu)


class Executor:
    """Runs shards on a pool of actors until each is committed or out of attempts."""

    def __init__(self, job: JobContext, events: Events) -> None:
        import ray

        self.job, self.events = job, events
        self.pool = pool_plan(job, ray.cluster_resources())
        env = {k: v for k, v in os.environ.items() if k == FAULTS_ENV}
        self.actor_class = ray.remote(WorkerActor).options(
            num_cpus=self.pool.cpus, num_gpus=self.pool.gpus, max_concurrency=2,
            runtime_env={"env_vars": env} if env else None,
        )
        self.max_attempts = job.spec.compute.max_retries

    def run(self, shards: list[int]) -> Outcome:
        import ray

        outcome = Outcome()
        queue: deque[int] = deque(shards)
        attempts: dict[int, int] = dict.fromkeys(shards, 0)
        idle = [self._new_actor() for _ in range(min(self.pool.workers, len(shards)))]
        busy: dict[Any, tuple[Any, int]] = {}
        log.info("%d shards on %d actors (%.0f CPU, %.2g GPU each)", len(shards),
                 len(idle), self.pool.cpus, self.pool.gpus)
        while queue or busy:
            while queue and idle:
                actor, index = idle.pop(), queue.popleft()
                busy[actor.run_shard.remote(index, attempts[index])] = (actor, index)
            ready, _ = ray.wait(list(busy), num_returns=1, timeout=PROGRESS_EVERY_S)
            for ref in ready:
                actor, index = busy.pop(ref)
                error, actor = self._collect(ref, actor, outcome)
                if actor is not None:
                    idle.append(actor)
                if error is not None:
                    self._retry(index, error, attempts, queue, outcome)
            self._poll_progress([actor for actor, _ in busy.values()])
        return outcome

    def _collect(self, ref: Any, actor: Any, outcome: Outcome) -> tuple[str | None, Any]:
        """(error or None, the actor to reuse: a fresh one when the old one died)."""
        import ray

        try:
            result: ShardResult = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            ray.kill(actor, no_restart=True)
            return f"actor died: {_cause(exc)}", self._new_actor()
        except ray.exceptions.RayTaskError as exc:
            return _cause(exc), actor
        outcome.committed.append(result)
        self.events.on_done(result)
        return None, actor

    def _retry(self, index: int, error: str, attempts: dict[int, int], queue: deque[int],
               outcome: Outcome) -> None:
        attempts[index] += 1
        if attempts[index] < self.max_attempts:
            log.warning("shard %d failed (attempt %d of %d), retrying: %s", index,
                        attempts[index], self.max_attempts, error)
            queue.append(index)
        else:
            outcome.failed[index] = error
            self.events.on_failed(index, error, attempts[index])

    def _poll_progress(self, actors: list[Any]) -> None:
        import ray

        refs = [actor.progress.remote() for actor in actors]
        if not refs:
            return
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=PROGRESS_EVERY_S)
        done = 0
        for ref in ready:
            try:
                done += ray.get(ref)
            except ray.exceptions.RayError:
                continue
        self.events.on_progress(done)

    def _new_actor(self) -> Any:
        return self.actor_class.remote(self.job, max(1, int(self.pool.cpus)))


def _cause(exc: Exception) -> str:
    """The innermost error message, one line, without Ray's traceback dressing."""
    cause = getattr(exc, "cause", None) or exc
    text = f"{type(cause).__name__}: {cause}".strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if len(lines) > 3 else " ".join(lines)
