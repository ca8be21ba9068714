"""The executor: dispatch uncommitted shards to a pool of Ray actors, replace dead ones, retry.

One actor holds one model (one GPU each where there are GPUs, CPU actors otherwise) and runs the
shards of every job of a JobGroup (a single job is a group of one). Only a shard's address
travels to an actor and a small result travels back: images never pass through the driver or
the object store. Outcomes go to the Sink (commit, failure, when to stop); Events are progress.

On a cluster, GPU actors fill one node's GPUs before the next node's (fewer nodes hold a copy
of the model, and idle ones can be scaled down); a shard goes only to an actor that has loaded
its model, so a lost node's shards move to the actors still alive while replacements start;
with `workers: auto` the pool grows as GPUs join the cluster.

A group's jobs may use several models (a sweep over generators): shards queue grouped by model,
and an actor takes those of the model it holds first, so it loads each model once (dispatch.py).
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from synthgen.engine.actor import WorkerActor
from synthgen.engine.dispatch import by_model, next_shard
from synthgen.engine.job import JobGroup, ShardAddress, ShardResult
from synthgen.engine.pool import StallWatch, actor_runtime_env, pool_plan
from synthgen.errors import user_error_in
from synthgen.storage import s3

log = logging.getLogger("synthgen.executor")

PROGRESS_EVERY_S = 0.5
RESIZE_EVERY_S = 5.0  # how often `workers: auto` re-reads the cluster's GPUs
SUSPECT_S = 60.0  # after an actor died on a node, new actors avoid it this long (it may be going)


@dataclass
class Outcome:
    committed: list[ShardResult] = field(default_factory=list)
    failed: dict[ShardAddress, str] = field(default_factory=dict)


@dataclass
class Actors:
    """The driver's view of its pool: actors loading their model, ready ones, busy ones."""

    starting: dict[Any, Any] = field(default_factory=dict)  # node_id() ref -> actor
    idle: list[Any] = field(default_factory=list)
    busy: dict[Any, tuple[Any, ShardAddress]] = field(default_factory=dict)  # run_shard ref -> (actor, shard)
    node: dict[Any, str | None] = field(default_factory=dict)  # actor -> node (planned, then actual)
    holds: dict[Any, str] = field(default_factory=dict)  # actor -> the model key it holds

    def __len__(self) -> int:
        return len(self.starting) + len(self.idle) + len(self.busy)


class Sink(Protocol):
    """Where each shard's outcome goes: the outputs of the jobs (Outputs in engine/lifecycle.py)."""

    def commit(self, result: ShardResult) -> ShardResult: ...

    def failed(self, address: ShardAddress, error: str, attempts: int) -> None: ...

    def fenced(self) -> BaseException | None: ...  # what to stop with (the lock lost, Ctrl-C)


@dataclass
class Events:
    """Progress, for the driver's bar and log: images in flight, a shard done, retried or failed."""

    on_progress: Callable[[int], None] = lambda images: None
    on_done: Callable[[ShardResult], None] = lambda result: None
    on_failed: Callable[[ShardAddress], None] = lambda shard: None
    on_retry: Callable[[ShardAddress, str], None] = lambda shard, error: None
    on_worker_done: Callable[[Any, ShardResult], None] = lambda actor, result: None  # per-worker rates


class Executor:
    """Runs shards on a pool of actors until each is committed or out of attempts."""

    def __init__(self, group: JobGroup, sink: Sink, events: Events) -> None:
        self.job, self.sink, self.events = group, sink, events
        self.pool = pool_plan(group, ray.cluster_resources())
        self.target = self.pool.workers
        self.actor_class: Any = ray.remote(WorkerActor)  # Ray's typing of remote classes is partial
        self.actor_options: dict[str, Any] = {
            "num_cpus": self.pool.cpus, "num_gpus": self.pool.gpus, "max_concurrency": 2,
            "runtime_env": actor_runtime_env(),
        }
        self.max_attempts = group.spec.compute.max_retries
        self.resized_at = self.hold_until = time.monotonic()
        self.stall = StallWatch(self.pool, group.spec.compute.placement_timeout_s)
        self.suspect: dict[str, float] = {}  # node -> when an actor of this pool died there
        self.init_failures = 0  # models that failed to load in a row, while no actor worked
        self.polled_at = 0.0  # progress is polled at most every PROGRESS_EVERY_S, not per result
        self.models = {key: job.model_key for key, job in group.jobs.items()}  # job key -> model key

    def run(self, shards: list[ShardAddress]) -> Outcome:
        outcome = Outcome()
        queue = by_model(shards, self.models)
        attempts: dict[ShardAddress, int] = dict.fromkeys(shards, 0)
        actors = Actors()
        log.info("%d shards on %d actors (%.0f CPU, %.2g GPU each; %s)", len(shards),
                 min(self.target, len(shards)), self.pool.cpus, self.pool.gpus, self.pool.why)
        try:
            while queue or actors.busy:
                if (lost := self.sink.fenced()) is not None:
                    raise lost  # the finally below stops every actor of this driver
                self._top_up(actors, queue)
                while queue and actors.idle:
                    actor = actors.idle.pop()
                    address = next_shard(queue, self.models, actors.holds, actor) or queue[0]
                    queue.remove(address)
                    actors.holds[actor] = self.models[address.job]
                    actors.busy[actor.run_shard.remote(address, attempts[address])] = (actor, address)
                ready = _ready([*actors.busy, *actors.starting])
                for ref in ready:
                    if ref in actors.starting:
                        self._started(ref, actors, queue, outcome)
                        continue
                    actor, address = actors.busy.pop(ref)
                    error, kept = self._collect(ref, actor, outcome)
                    if kept is None:
                        self._lost(actor, actors)
                    else:
                        actors.idle.append(kept)
                    if error is not None:
                        self._retry(address, error, attempts, queue, outcome)
                if time.monotonic() - self.polled_at >= PROGRESS_EVERY_S:
                    self._poll_progress([actor for actor, _ in actors.busy.values()])
                self.stall.check(0 if actors.idle or actors.busy else len(actors.starting))
        finally:
            for actor in actors.node:  # free their GPUs now, and cancel pending ones
                ray.kill(actor, no_restart=True)
        return outcome

    def _top_up(self, actors: Actors, queue: deque[ShardAddress]) -> None:
        """Start actors up to the pool's size, never more than there are shards left: this
        replaces dead ones and, with `workers: auto` on GPUs, adds one per GPU that joined."""
        outstanding = len(queue) + len(actors.busy)
        now = time.monotonic()
        if now < self.hold_until:
            return
        if (self.job.spec.compute.workers == "auto" and self.pool.gpus
                and now - self.resized_at >= RESIZE_EVERY_S):
            self.resized_at = now
            target = max(1, int(ray.cluster_resources().get("GPU", 0.0) // self.pool.gpus))
            if target != self.target:
                log.info("the cluster has GPUs for %d actors now (was %d)", target, self.target)
            self.target = target
        for _ in range(min(self.target, outstanding) - len(actors)):
            self._start_actor(actors, queue)

    def _start_actor(self, actors: Actors, queue: deque[ShardAddress]) -> None:
        """Start an actor on the model of the shard `next_shard` would hand it first."""
        options = dict(self.actor_options)
        node = self._fill_node(actors)
        if node is not None:
            # soft, and spill when that node is busy after all: Ray then places it elsewhere.
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                node, soft=True, _spill_on_unavailable=True)
        first = next_shard(queue, self.models, actors.holds)
        actor = self.actor_class.options(**options).remote(self.job, max(1, int(self.pool.cpus)),
                                                           s3.Credentials.from_env(),
                                                           first.job if first else "")
        actors.node[actor] = node
        if first is not None:
            actors.holds[actor] = self.models[first.job]
        actors.starting[actor.node_id.remote()] = actor

    def _fill_node(self, actors: Actors) -> str | None:
        """The alive node with a free GPU that already runs most of this pool's actors, so that a
        node's GPUs fill before the next node gets one. None (Ray decides) for CPU actors, or
        when no node has room: the actor then waits for the autoscaler."""
        if not self.pool.gpus:
            return None
        ours = Counter(actors.node.values())
        room: dict[str, float] = {}
        now = time.monotonic()
        for node in ray.nodes():
            free = node["Resources"].get("GPU", 0.0) - ours[node["NodeID"]] * self.pool.gpus
            suspect = now - self.suspect.get(node["NodeID"], -SUSPECT_S) < SUSPECT_S
            if node["Alive"] and free >= self.pool.gpus and not suspect:
                room[node["NodeID"]] = free
        return max(room, key=lambda n: (ours[n], room[n], n), default=None)

    def _started(self, ref: Any, actors: Actors, queue: deque[ShardAddress], outcome: Outcome) -> None:
        """An actor answered (its model is loaded: it takes shards from now on) or died starting.

        When the model fails to load max_retries times in a row while no actor works, it loads
        nowhere: the queued shards fail with that cause. Other start failures (its node died,
        say) only delay the next start a little.
        """
        actor = actors.starting.pop(ref)
        try:
            actors.node[actor] = ray.get(ref)
        except ray.exceptions.RayError as exc:
            self._lost(actor, actors)
            if (mistake := user_error_in(exc)) is not None:
                raise mistake from None  # e.g. the model changed on that node: exit 2, no retry
            error = f"actor failed to start: {_cause(exc)}"
            log.warning(error)
            if not getattr(exc, "actor_init_failed", False) or actors.idle or actors.busy:
                self.hold_until = time.monotonic() + RESIZE_EVERY_S
                return
            self.init_failures += 1
            if self.init_failures >= self.max_attempts:
                for address in queue:
                    self._give_up(address, error, self.init_failures, outcome)
                queue.clear()
            return
        self.init_failures = 0
        actors.idle.append(actor)

    def _lost(self, actor: Any, actors: Actors) -> None:
        """Forget a dead actor; its node gets no new actor on purpose for a while."""
        node = actors.node.pop(actor, None)
        actors.holds.pop(actor, None)
        if node is not None:
            self.suspect[node] = time.monotonic()

    def _collect(self, ref: Any, actor: Any, outcome: Outcome) -> tuple[str | None, Any]:
        """(error or None, the actor to reuse: None when it died)."""
        try:
            result: ShardResult = ray.get(ref)
        except ray.exceptions.RayActorError as exc:
            ray.kill(actor, no_restart=True)
            return f"actor died: {_cause(exc)}", None
        except ray.exceptions.RayTaskError as exc:
            return _cause(exc), actor
        try:
            result = self.sink.commit(result)
        except OSError as exc:
            return f"commit failed: {type(exc).__name__}: {exc}", actor
        outcome.committed.append(result)
        self.events.on_done(result)
        self.events.on_worker_done(actor, result)
        return None, actor

    def _retry(self, address: ShardAddress, error: str, attempts: dict[ShardAddress, int],
               queue: deque[ShardAddress], outcome: Outcome) -> None:
        attempts[address] += 1
        if attempts[address] < self.max_attempts:
            log.warning("shard %s failed (attempt %d of %d), retrying: %s", address,
                        attempts[address], self.max_attempts, error)
            self.events.on_retry(address, error)
            queue.append(address)
        else:
            self._give_up(address, error, attempts[address], outcome)

    def _give_up(self, address: ShardAddress, error: str, attempts: int, outcome: Outcome) -> None:
        outcome.failed[address] = error
        self.sink.failed(address, error, attempts)
        self.events.on_failed(address)

    def _poll_progress(self, actors: list[Any]) -> None:
        refs = [actor.progress.remote() for actor in actors]
        if not refs:
            return
        self.polled_at = time.monotonic()
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=PROGRESS_EVERY_S)
        done = 0
        for ref in ready:
            try:
                done += ray.get(ref)
            except ray.exceptions.RayError:
                continue
        self.events.on_progress(done)


def _ready(refs: list[Any]) -> list[Any]:
    """The first ref to finish (waiting at most PROGRESS_EVERY_S), with every other one finished
    by then: one round handles them all, so the dispatch rate does not fall with the pool's size."""
    if not refs:  # no actor at all for now: waiting to start more (see Executor._started)
        time.sleep(PROGRESS_EVERY_S)
        return []
    ready, rest = ray.wait(refs, num_returns=1, timeout=PROGRESS_EVERY_S)
    if ready and rest:
        ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
    return ready


def _cause(exc: Exception) -> str:
    """The innermost error message, one line, without Ray's traceback dressing."""
    cause = getattr(exc, "cause", None) or exc
    text = f"{type(cause).__name__}: {cause}".strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if len(lines) > 3 else " ".join(lines)
