"""What the driver and its actors exchange: the job a worker runs, and what a shard came to.

Small, picklable and free of torch: the driver imports it without paying for torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from synthgen.errors import ModelChanged
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.manifest import Manifest
from synthgen.spec.plan import Plan
from synthgen.storage.commit import CommitMarker


@dataclass(frozen=True)
class JobContext:
    """Everything a worker needs, small and picklable: no filesystem, no model.

    `driver_commits`: the store ignores create-only writes, so workers put data files only and
    the driver, alone under the job lock, writes the markers. `model_bytes`: the size of the
    model's weights where the driver has them (how many CPU actors fit in memory).
    `lock_token`: commits are fenced by it: a driver that lost its lock gets no more commits.
    """

    spec: JobSpec
    manifest: Manifest
    driver_commits: bool = False
    captions: Mapping[int, tuple[str, ...]] | None = None  # the committed captions (classes.captions)
    model_bytes: int | None = None
    lock_token: str | None = None  # the driver's job lock token: every commit checks it (fencing)
    model_revision: str | None = None  # pinned in job.json: a worker resolving another refuses

    def check_model(self, found: str) -> None:
        """A job is one model: refuse a worker whose model resolves to another revision."""
        if self.model_revision is not None and found != self.model_revision:
            raise ModelChanged(self.spec.model.source, self.model_revision, found)

    @property
    def plan(self) -> Plan:
        return Plan(spec=self.spec, manifest=self.manifest, captions=self.captions)


@dataclass(frozen=True)
class ShardResult:
    """What an actor sends back: a few numbers, never image bytes."""

    shard: int
    rows: int
    seconds: float
    committed: bool
    marker: CommitMarker
    batch_size: int
    pending: bool = False  # data file put, marker left to the driver (`driver_commits`)
    job: str = ""  # the job's key in a JobGroup ("" for a single job)
    actor: ActorStats | None = None  # a group actor's model loads so far (GroupActor in engine/actor.py)


@dataclass(frozen=True)
class JobGroup:
    """Several jobs that share one model and one pool of actors (a sweep's cells). Each actor
    loads the model once for all of them; a shard is addressed as (job key, shard index).
    `spec` and `model_bytes` are the lead job's: the pool, the retries and the model come from it."""

    jobs: dict[str, JobContext]

    @property
    def spec(self) -> JobSpec:
        return next(iter(self.jobs.values())).spec

    @property
    def model_bytes(self) -> int | None:
        return next(iter(self.jobs.values())).model_bytes


@dataclass(frozen=True)
class ActorStats:
    """What a group actor did so far: how often it loaded a model, and in how many seconds."""

    actor_id: str
    model_loads: int
    load_s: float
    jobs: int
