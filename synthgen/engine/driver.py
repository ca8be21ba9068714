"""The driver: check everything, claim the output, dispatch what is missing, finish the job.

All user mistakes surface before the first write; the first write is job.json, created only
if absent. A job already on the output is resumed when its job_id matches, refused otherwise.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from synthgen import __version__
from synthgen.engine import ctrl_c
from synthgen.engine.captions import ensure_captions, wants_captions
from synthgen.engine.job import JobContext, ShardResult
from synthgen.engine.plan_checks import check_plan_against_model, label_table
from synthgen.engine.progress import Progress, run_log
from synthgen.errors import JobFailed, ModelChanged, UserError
from synthgen.inputs.labeled_keys import job_manifest
from synthgen.models.configs import ModelInfo
from synthgen.models.registry import inspect_model
from synthgen.models.runtime import resolve_dtype, weights_bytes
from synthgen.models.sources import Fetch, NotCached, check_caption_model
from synthgen.output.catalog import Catalog, job_status, read_markers
from synthgen.output.finalize import finalize
from synthgen.output.job_record import JobRecord, ModelRecord, find_job_record, read_job_record
from synthgen.output.verify import repair as repair_shards
from synthgen.quality.classifiers import check_filter
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.load import Override, apply_overrides, validate_spec
from synthgen.spec.manifest import Manifest
from synthgen.spec.plan import Plan, plan_diff
from synthgen.storage.commit import commit_marker
from synthgen.storage.layout import JOB_FILE, SUCCESS_FILE, failure_path
from synthgen.storage.lock import JobLock, lost_lock, read_lock
from synthgen.storage.store import DISK_ERRNOS, Store, check_unclaimed, check_writable, json_bytes

log = logging.getLogger("synthgen")


@dataclass(frozen=True)
class Prepared:
    """A checked job: its plan, its model's info and its output store."""

    plan: Plan
    info: ModelInfo | None  # None: a hub or remote model not on this machine (plan only)
    store: Store

    @property
    def job(self) -> JobContext:
        return JobContext(spec=self.plan.spec, manifest=self.plan.manifest,
                          model_bytes=weights_bytes(self.info.path) if self.info else None)


@dataclass(frozen=True)
class RunOptions:
    """How to run a prepared job. `takeover`: take the lock from a driver believed dead.
    `repair`: first un-commit shards whose data is missing or corrupt, so they are regenerated.
    `per_worker`: show each worker's throughput."""

    address: str | None = None
    takeover: bool = False
    repair: bool = False
    per_worker: bool = False


def prepare(spec: JobSpec, manifest: Manifest | None = None, fetch: Fetch = "configs") -> Prepared:
    """Every check that needs no model weights and writes nothing to the output.

    The driver fetches a remote model's configs (never its weights); `synthgen plan` passes
    fetch="cached" and then checks what it can when the model is not on this machine.
    """
    plan = Plan.build(pin_dtype(spec), manifest or job_manifest(spec))
    try:
        info: ModelInfo | None = inspect_model(spec.model, fetch)
    except NotCached:
        info = None
    check_plan_against_model(plan, info)
    check_caption_model(spec, fetch)
    check_filter(plan)
    store = Store(spec.output.uri, spec.output.storage_options)
    check_writable(store)
    return Prepared(plan, info, store)


def pin_dtype(spec: JobSpec) -> JobSpec:
    """`model.dtype: auto` as the dtype it resolves to here: the resolved dtype is what changes
    the data, so it is what job.json, job_id and the card hold (a resume reads it back)."""
    dtype = resolve_dtype(spec.model.dtype, spec.model.device)
    if dtype == spec.model.dtype:
        return spec
    return spec.model_copy(update={"model": spec.model.model_copy(update={"dtype": dtype})})


def load_job(uri: str, overrides: Iterable[Override] = (), storage_options: dict | None = None
             ) -> tuple[JobSpec, Manifest]:
    """The spec and manifest a job stored in its output, with execution-only overrides."""
    plan = read_job_record(Store(uri, storage_options or {})).plan
    data = plan.spec.model_dump(mode="json")
    data["output"]["uri"] = uri
    data["output"]["storage_options"] = {**data["output"].get("storage_options", {}),
                                         **(storage_options or {})}
    apply_overrides(data, overrides)
    return validate_spec(data), plan.manifest


def run_job(prepared: Prepared, options: RunOptions | None = None) -> dict[str, Any]:
    """Run the job to completion on Ray, holding the output's job lock; returns the final status.
    The run's log is kept in the output's `_logs/`."""
    options = options or RunOptions()
    holds_job(prepared)
    try:
        prepared.store.probe_create_only()
    except (FileNotFoundError, PermissionError) as exc:
        raise UserError("output.uri", prepared.plan.spec.output.uri,
                        f"cannot write there ({type(exc).__name__}: {exc}); check that the bucket "
                        "exists and that these credentials may write to it") from None
    with (JobLock.acquire(prepared.store, options.takeover) as lock,
          run_log(prepared.store, prepared.plan.job_id)):
        return _run_locked(prepared, options, lock)


def _run_locked(prepared: Prepared, options: RunOptions, lock: JobLock) -> dict[str, Any]:
    # ray only once there is something to run: `synthgen plan` never pays for it
    from synthgen.engine.executor import Events, Executor
    from synthgen.engine.pool import connect_ray, stopping_ray

    store, plan = prepared.store, prepared.plan
    resumed = claim_output(prepared)
    if resumed and options.repair:
        repair_shards(Catalog.read(store))
    if resumed and store.exists(SUCCESS_FILE):
        log.info("job %s is already complete in %s: nothing to do", plan.job_id, plan.spec.output.uri)
        return job_status(Catalog.read(store))
    markers = read_markers(store)
    pending = [i for i in range(plan.num_shards) if i not in markers]
    captions = None
    if wants_captions(plan):  # the first phase: written once, then read by every run
        captions = ensure_captions(prepared.job, store, lambda: connect_ray(options.address))
    log.info("job %s: %d samples in %d shards, %d committed, %d to run", plan.job_id,
             plan.total, plan.num_shards, len(markers), len(pending))
    failed: dict[int, str] = {}
    started_ray = False
    if pending:
        started_ray = connect_ray(options.address)
        done = sum(m.rows for m in markers.values())
        with Progress(total=plan.total, done=done, shards_total=plan.num_shards,
                      shards_done=len(markers), per_worker=options.per_worker) as progress:

            def on_failed(index: int, error: str, attempts: int) -> None:
                lock.check()  # a worker refused by the fence: the lock is lost, record nothing
                progress.failed(index)
                _record_failure(store, index, error, attempts)

            events = Events(on_progress=progress.in_flight, on_done=progress.shard_done,
                            on_failed=on_failed, on_retry=progress.retried,
                            on_worker_done=progress.worker_done,
                            commit=lambda result: commit_by_driver(store, result, lock.token),
                            fenced=lambda: ctrl_c.pressed() or (lost_lock(store, read_lock(store))
                                                                if lock.lost.is_set() else None))
            job = replace(prepared.job, driver_commits=not store.conditional, captions=captions,
                          lock_token=lock.token,
                          model_revision=prepared.info.revision if prepared.info else None)
            failed = Executor(job, events).run(pending).failed
    with stopping_ray(started_ray):
        if failed:
            lines = "; ".join(f"shard {i}: {e}" for i, e in sorted(failed.items()))
            raise JobFailed(f"{len(failed)} shard(s) failed: {lines}. "
                            f"Run `synthgen resume {plan.spec.output.uri}` to retry them.")
        lock.check()
        catalog = Catalog.read(store)  # every shard committed: finalize and the status read it once
        finalize(catalog)
        return job_status(catalog)


def commit_by_driver(store: Store, result: ShardResult, fence: str | None = None) -> ShardResult:
    """The driver's half of `driver_commits`: the same commit as a worker's, made here."""
    if not result.pending:
        return result
    marker, won = commit_marker(store, replace(result.marker, committed_by="driver"), fence)
    return replace(result, committed=won, marker=marker, pending=False)


def claim_output(prepared: Prepared) -> bool:
    """Write job.json, or check the one there; True when the output already held this job."""
    if holds_job(prepared):
        return True
    store, plan = prepared.store, prepared.plan
    try:
        created = store.create_only(JOB_FILE, json_bytes(new_job_record(prepared).to_json()))
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


def holds_job(prepared: Prepared) -> bool:
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


def new_job_record(prepared: Prepared) -> JobRecord:
    plan, info = prepared.plan, prepared.info
    labels = label_table(plan, info) if info and info.class_conditional else None
    model = ModelRecord(info.source, info.revision, info.family, info.license, labels) if info else \
        ModelRecord(plan.spec.model.source, None, None)
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


def _record_failure(store: Store, index: int, error: str, attempts: int) -> None:
    """Best effort: on a full disk or a failing store the record may not be writable either."""
    log.error("shard %d failed after %d attempts: %s", index, attempts, error)
    try:
        store.put_json(failure_path(index), {"shard": index, "error": error, "attempts": attempts,
                                             "failed_at": time.time()})
    except OSError as exc:
        log.warning("could not record the failure of shard %d: %s", index, exc)
