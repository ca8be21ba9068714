"""The job as the driver checked it (CheckedJob), and what the driver and its actors exchange: the
jobs an actor runs (a JobGroup: a single job is a group of one), a shard's address, and what a
shard came to.

Free of torch: the driver imports it without paying for torch; all but CheckedJob travel to actors.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from synthgen.errors import ModelChanged
from synthgen.models.configs import ModelInfo
from synthgen.models.runtime import weights_bytes
from synthgen.spec.job_spec import JobSpec, ModelSpec
from synthgen.spec.manifest import Manifest
from synthgen.spec.plan import Plan
from synthgen.storage.commit import CommitMarker
from synthgen.storage.store import Store


@dataclass(frozen=True)
class CheckedJob:
    """A checked job: its plan, its model's info and its output store."""

    plan: Plan
    info: ModelInfo | None  # None: a hub or remote model not on this machine (plan only)
    store: Store

    @property
    def job(self) -> JobContext:
        return JobContext(spec=self.plan.spec, manifest=self.plan.manifest,
                          model_bytes=weights_bytes(self.info.path) if self.info else None)


@dataclass(frozen=True)
class JobContext:
    """Everything a worker needs, small and picklable: no filesystem, no model.

    `driver_commits`: the store ignores create-only writes, so workers put data files only and
    the driver, alone under the job lock, writes the markers (decided once, when the output
    opens: JobOutput in engine/lifecycle.py). `model_bytes`: the size of the
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

    @property
    def model_key(self) -> str:
        """What an actor loads for this job: jobs with the same key share one loaded model."""
        return model_key(self.spec.model, self.model_revision)


def model_key(model: ModelSpec, revision: str | None) -> str:
    """A loaded model's identity: its spec (minus storage options, which change no weight) and
    the revision it resolved to. Readable, since the run log and `actors` name models by it."""
    dtype = "" if model.dtype == "float32" else f" {model.dtype}"
    extras = model.model_dump_json(exclude={"source", "revision", "dtype", "storage_options"})
    return f"{model.source}@{(revision or '?')[:12]}{dtype} {extras}"


def model_label(key: str) -> str:
    """A model key without its settings blob: what the table and the log show."""
    return key.split(" {", 1)[0]


@dataclass(frozen=True)
class ShardResult:
    """What an actor sends back: a few numbers, never image bytes."""

    shard: int
    rows: int
    seconds: float
    committed: bool
    marker: CommitMarker
    batch_size: int
    job: str = ""  # the job's key in its JobGroup ("" for a single job)
    actor: ActorStats | None = None  # the actor's model loads so far (WorkerActor in engine/actor.py)


@dataclass(frozen=True, order=True)
class ShardAddress:
    """A shard of one job of a JobGroup: what travels to an actor, and what a failure names."""

    job: str  # the job's key in its group ("" for a single job)
    index: int

    def __str__(self) -> str:
        return str(self.index) if not self.job else f"{self.index} of job {self.job}"


@dataclass(frozen=True)
class JobGroup:
    """The jobs that share one pool of actors: a sweep's cells, or a single job (a group of one,
    keyed ""). Each actor loads each model once, one at a time (the executor hands it the shards
    of the model it holds first). `spec` is the lead job's: the pool and the retries come from
    it; `model_bytes` is the largest model's, the most an actor holds at once."""

    jobs: dict[str, JobContext]

    @property
    def spec(self) -> JobSpec:
        return next(iter(self.jobs.values())).spec

    @property
    def model_bytes(self) -> int | None:
        sizes = [job.model_bytes for job in self.jobs.values()]
        return None if None in sizes else max(sizes)  # type: ignore[type-var]


@dataclass(frozen=True)
class ActorStats:
    """What an actor did so far: how often it loaded a model (in all, and per model key), in how
    many seconds, for how many jobs."""

    actor_id: str
    model_loads: int
    load_s: float
    jobs: int
    loads: Mapping[str, Mapping[str, float]] | None = None  # model label -> {loads, load_s}
