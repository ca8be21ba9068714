"""The life of a job's output over one run, in one place, shaped like Ray Data's Datasink.

`JobOutput.open` (on_write_start): refuse another job's output, probe create-only writes, take
the job lock, claim the output (write job.json, or check the one there), repair when asked, and
write the captions (a first phase). Then the pending shards run on actors (engine/driver.py),
and each result comes back here: `commit` is the one commit of a result, whoever makes it (the
worker where the store honours create-only writes, this driver alone under the lock where it
does not: decided once, here, at open); `failed` records a shard given up; `fenced` says when to
stop (the lock lost). `finish` (on_write_complete) finalizes the output. `run`, `resume` (and
its `--repair`), `sweep` (one JobOutput per cell) and `captions` all go through it.

All user mistakes surface before the first write; the first write is job.json, created only if
absent. A job already on the output is resumed when its job_id matches, refused otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version

from synthgen import __version__
from synthgen.engine.captions import ensure_captions, wants_captions
from synthgen.engine.interrupts import pressed
from synthgen.engine.job import CheckedJob, JobContext, JobGroup, ShardAddress, ShardResult
from synthgen.engine.plan_checks import label_table
from synthgen.engine.progress import run_log
from synthgen.errors import ModelChanged, UserError
from synthgen.output.catalog import Catalog, read_markers
from synthgen.output.finalize import finalize
from synthgen.output.job_record import JobRecord, ModelRecord, find_job_record, write_job_record
from synthgen.output.verify import repair
from synthgen.spec.plan import plan_diff
from synthgen.storage.commit import commit_marker
from synthgen.storage.filesystem import user_errors
from synthgen.storage.layout import SUCCESS_FILE, failure_path
from synthgen.storage.lock import JobLock, lost_lock, read_lock
from synthgen.storage.records import FailureRecord
from synthgen.storage.store import DISK_ERRNOS, check_unclaimed

log = logging.getLogger("synthgen")


@dataclass(frozen=True)
class RunOptions:
    """How to run a prepared job. `takeover`: take the lock from a driver believed dead.
    `repair`: first un-commit shards whose data is missing or corrupt, so they are regenerated.
    `per_worker`: show each worker's throughput."""

    address: str | None = None
    takeover: bool = False
    repair: bool = False
    per_worker: bool = False


class JobOutput:
    """One job's output, open under its lock: the shards still to run, and what becomes of each.

    `key` names the job in its JobGroup ("" for a single job). `job` is what its actors get: the
    captions, the lock's token (every commit is fenced by it), the pinned model revision and who
    commits. `complete`: the output was finished already (nothing pending, nothing to finish).
    """

    def __init__(self, prepared: CheckedJob, lock: JobLock, key: str) -> None:
        self.prepared, self.lock, self.key = prepared, lock, key
        self.store, self.plan = prepared.store, prepared.plan
        self.complete = False
        self.pending: list[int] = []
        self.job = prepared.job

    @classmethod
    @contextlib.contextmanager
    def open(cls, prepared: CheckedJob, options: RunOptions, key: str = "",
             logged: bool = False) -> Iterator[JobOutput]:
        """Hold the output for the body. `logged`: keep this run's log in the output's `_logs/`,
        unless the output is finished and nothing is asked of it (a no-op leaves it as it was)."""
        holds_job(prepared)
        from synthgen.engine.pool import refuse_unplaceable  # imports ray: `synthgen plan` never pays

        refuse_unplaceable(prepared.job, options.address)
        _probe(prepared)
        with JobLock.acquire(prepared.store, options.takeover) as lock:
            kept = logged and not _finished(prepared, options)
            with run_log(prepared.store, prepared.plan.job_id) if kept else contextlib.nullcontext():
                output = cls(prepared, lock, key)
                output._claim(options)
                yield output

    def _claim(self, options: RunOptions) -> None:
        store, plan = self.store, self.plan
        resumed = claim_output(self.prepared)
        if resumed and options.repair:
            repair(Catalog.read(store))
        self.complete = resumed and store.exists(SUCCESS_FILE)
        if self.complete:
            return
        markers = read_markers(store)
        self.pending = [i for i in range(plan.num_shards) if i not in markers]
        captions = None
        if wants_captions(plan):  # the first phase: written once, then read by every run

            def connect() -> None:
                from synthgen.engine.pool import connect_ray  # ray: only when captions are written

                connect_ray(options.address)

            captions = ensure_captions(self.job, store, connect)
        info = self.prepared.info
        self.job = replace(_absolute_output(self.job), driver_commits=not store.conditional,
                           captions=captions, lock_token=self.lock.token,
                           model_revision=info.revision if info else None)

    def commit(self, result: ShardResult) -> ShardResult:
        """The one commit of a shard's result. Where the store ignores create-only writes the
        worker only put its data file, and the marker is written here, by the one driver under
        the lock; elsewhere the worker raced for it already (the same `commit_marker`). A result
        for a shard found committed carries the marker found: committing it again changes nothing."""
        if not self.job.driver_commits:
            return result
        marker, won = commit_marker(self.store, result.marker.model_copy(update={"committed_by": "driver"}),
                                    self.lock.token)
        return replace(result, committed=won, marker=marker)

    def failed(self, index: int, error: str, attempts: int) -> None:
        """A shard given up: recorded under `_failed/` (`synthgen status` shows it, resume retries
        it). Best effort: on a full disk or a failing store the record may not be writable either."""
        self.lock.check()  # a worker refused by the fence: the lock is lost, record nothing
        log.error("shard %d failed after %d attempts: %s", index, attempts, error)
        try:
            self.store.put_json(failure_path(index), FailureRecord(
                shard=index, error=error, attempts=attempts, failed_at=time.time()).to_json())
        except OSError as exc:
            log.warning("could not record the failure of shard %d: %s", index, exc)

    def fenced(self) -> BaseException | None:
        """Why this driver may no longer write to the output (its lock lost), or None."""
        return lost_lock(self.store, read_lock(self.store)) if self.lock.lost.is_set() else None

    def finish(self) -> Catalog:
        """Remove orphans, write the index, the card and `_SUCCESS` (once every shard is
        committed); the catalog it read once, for the job's status too."""
        if self.complete:
            return Catalog.read(self.store)
        self.lock.check()
        catalog = Catalog.read(self.store)
        finalize(catalog)
        return catalog


class Outputs:
    """The outputs of one run, by job key: the executor's Sink (engine/executor.py)."""

    def __init__(self, outputs: list[JobOutput]) -> None:
        self.by_key = {output.key: output for output in outputs}

    def group(self) -> JobGroup:
        return JobGroup({key: output.job for key, output in self.by_key.items()})

    def commit(self, result: ShardResult) -> ShardResult:
        return self.by_key[result.job].commit(result)

    def failed(self, address: ShardAddress, error: str, attempts: int) -> None:
        self.by_key[address.job].failed(address.index, error, attempts)

    def fenced(self) -> BaseException | None:
        lost = (output.fenced() for output in self.by_key.values())
        return pressed() or next((exc for exc in lost if exc is not None), None)


def claim_output(prepared: CheckedJob) -> bool:
    """Write job.json, or check the one there; True when the output already held this job."""
    if holds_job(prepared):
        return True
    store, plan = prepared.store, prepared.plan
    try:
        created = write_job_record(store, new_job_record(prepared))
    except PermissionError:
        raise UserError("output.uri", plan.spec.output.uri,
                        "permission denied; choose an output you can write to") from None
    except OSError as exc:
        if exc.errno not in DISK_ERRNOS:
            raise
        raise UserError("output.uri", plan.spec.output.uri,
                        f"cannot write there ({exc.strerror}); free space or choose another "
                        "output") from None
    return not created and holds_job(prepared)


def holds_job(prepared: CheckedJob) -> bool:
    """True when the output holds this job; refuses another job's output before any write."""
    existing = find_job_record(prepared.store)
    if existing is None:
        check_unclaimed(prepared.store)
        return False
    plan = prepared.plan
    if existing.job_id != plan.job_id:
        raise UserError("output.uri", plan.spec.output.uri,
                        f"holds another job ({existing.job_id}, this one is {plan.job_id}; "
                        f"{plan_diff(existing.plan, plan)}); choose a new output, or `synthgen resume` "
                        "that URI")
    pinned, info = existing.model.revision, prepared.info
    if pinned is not None and info is not None and info.revision != pinned:
        raise ModelChanged(plan.spec.model.source, pinned, info.revision)
    return True


def new_job_record(prepared: CheckedJob) -> JobRecord:
    plan, info = prepared.plan, prepared.info
    labels = label_table(plan, info) if info and info.class_conditional else None
    model = ModelRecord(source=info.source, revision=info.revision, family=info.family,
                        license=info.license, labels=labels) if info else \
        ModelRecord(source=plan.spec.model.source)
    return JobRecord(job_id=plan.job_id, plan=plan, model=model, versions=versions())


def versions() -> dict[str, str]:
    """From the installed packages' metadata: importing diffusers here would cost the driver
    seconds of CPU (it pulls in torch._dynamo) that the actors need while they start. A driver
    that drives a cluster may lack torch itself: then it says so rather than failing."""
    return {"synthgen": __version__, **{name: _installed(name) for name in ("torch", "diffusers")}}


def _installed(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed on the driver"


def _finished(prepared: CheckedJob, options: RunOptions) -> bool:
    """Under the lock: the output holds this job finished, and no repair is asked."""
    return not options.repair and holds_job(prepared) and prepared.store.exists(SUCCESS_FILE)


def _probe(prepared: CheckedJob) -> None:
    """Does the store honour create-only writes (who commits depends on it)? It is the output's
    first write: access denied shows here, as one line."""
    with user_errors(prepared.plan.spec.output.uri, "output.uri"):
        prepared.store.probe_create_only()


def _absolute_output(job: JobContext) -> JobContext:
    """Actors run in another working directory (on a cluster, on other machines): a relative
    local output path is made absolute here, where the user meant it."""
    output = job.spec.output
    if "://" in output.uri:
        return job
    absolute = output.model_copy(update={"uri": os.path.abspath(os.path.expanduser(output.uri))})
    return replace(job, spec=job.spec.model_copy(update={"output": absolute}))
