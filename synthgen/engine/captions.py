"""The captions phase: before any image, the job's captions are written once and committed.

Caption actors (as many as image actors, reserving the same GPU each) write the classes' captions
in parallel, one class per call. The driver builds `captions/captions.parquet` whole, puts it,
then creates its marker only if absent: from then on the captions are part of the job, and a
retry or resume reads them, never regenerates them. The actors are killed (after releasing their
model) before the image pool starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
from rich.progress import Progress

from synthgen.engine.job import JobContext
from synthgen.errors import JobFailed
from synthgen.spec.captions import ClassCaptions, caption_seed, instruction
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.manifest_spec import CaptionsSpec
from synthgen.spec.plan import Plan
from synthgen.storage import s3
from synthgen.storage.layout import CAPTIONS_FILE, CAPTIONS_MARKER
from synthgen.storage.store import Store, json_bytes, read_parquet, table_bytes

log = logging.getLogger("synthgen")

Captions = dict[int, tuple[str, ...]]

SCHEMA = pa.schema([("label", pa.int64()), ("label_name", pa.string()), ("caption_id", pa.int64()),
                    ("caption", pa.string()), ("draw", pa.int64()), ("seed", pa.int64())])


def wants_captions(plan: Plan) -> bool:
    return plan.spec.classes is not None and plan.spec.classes.captions is not None


def read_captions(store: Store) -> tuple[Captions, pa.Table] | None:
    """The committed captions (label -> texts by caption_id) and their table; None before the
    marker exists. A file that does not match its marker is an error, never silently redone."""
    if not store.exists(CAPTIONS_MARKER):
        return None
    marker = store.read_json(CAPTIONS_MARKER)
    data = store.read_bytes(marker["file"])
    if hashlib.sha256(data).hexdigest() != marker["sha256"]:
        raise JobFailed(f"{marker['file']} does not match its marker {CAPTIONS_MARKER} (sha256); "
                        "the committed captions were changed or damaged")
    table = read_parquet(data).sort_by([("label", "ascending"), ("caption_id", "ascending")])
    captions: dict[int, list[str]] = {}
    for row in table.select(["label", "caption"]).to_pylist():
        captions.setdefault(row["label"], []).append(row["caption"])
    return {label: tuple(texts) for label, texts in captions.items()}, table


def ensure_captions(job: JobContext, store: Store, connect: Callable[[], None]) -> Captions:
    """The job's captions: committed ones, or written now on caption actors (`connect` first
    connects to Ray) and committed."""
    found = read_captions(store)
    if found is not None:
        return found[0]
    connect()
    plan = job.plan
    rows = _write_on_actors(job, [e.label for e in plan.manifest.entries])
    table = pa.Table.from_pylist(sorted(rows, key=lambda r: (r["label"], r["caption_id"])), schema=SCHEMA)
    data = table_bytes(table)
    store.put_bytes(CAPTIONS_FILE, data)  # not yet part of the job: only the marker makes it so
    marker = {"file": CAPTIONS_FILE, "rows": len(table), "sha256": hashlib.sha256(data).hexdigest(),
              "job_id": plan.job_id, "committed_at": time.time()}
    if not store.create_only(CAPTIONS_MARKER, json_bytes(marker)):
        log.info("captions were committed by another run first; using those")
    return committed_captions(store)[0]


def committed_captions(store: Store) -> tuple[Captions, pa.Table]:
    """The captions once their marker is written (read_captions, which cannot be None then)."""
    found = read_captions(store)
    if found is None:
        raise JobFailed(f"{CAPTIONS_MARKER} vanished right after it was committed")
    return found


def captions_of(spec: JobSpec) -> CaptionsSpec:
    """The `classes.captions` section: everything here runs only for a job that has one."""
    assert spec.classes is not None and spec.classes.captions is not None, "a job without captions"
    return spec.classes.captions


def _write_on_actors(job: JobContext, labels: list[int]) -> list[dict[str, Any]]:
    import ray  # ray only when captions are written

    from synthgen.engine.captions import CaptionActor  # the actor's module: with ray only
    from synthgen.engine.pool import actor_runtime_env, pool_plan  # ray: likewise

    pool = pool_plan(job, ray.cluster_resources())
    options = {"num_cpus": pool.cpus, "num_gpus": pool.gpus, "runtime_env": actor_runtime_env()}
    actor_class: Any = ray.remote(CaptionActor)  # Ray's typing of remote classes is partial
    actors = [actor_class.options(**options).remote(job, max(1, int(pool.cpus)), s3.Credentials.from_env())
              for _ in range(min(pool.workers, len(labels)))]
    per_class = captions_of(job.spec).per_class
    started, rows = time.monotonic(), []
    try:
        pending = {actors[i % len(actors)].write.remote(label): label for i, label in enumerate(labels)}
        with _bar(len(labels) * per_class) as advance:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                label = pending.pop(done[0])
                try:
                    rows += ray.get(done[0])
                except ray.exceptions.RayError as exc:
                    cause = getattr(exc, "cause", None) or exc
                    raise JobFailed(f"captions: {str(cause).strip().splitlines()[-1]}") from None
                advance(per_class)
                log.debug("captions of class %d written", label)
        ray.get([a.release.remote() for a in actors])
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
    seconds = time.monotonic() - started
    log.info("captions: %d written in %.1f s (%.1f captions/s)", len(rows), seconds,
             len(rows) / max(seconds, 1e-9))
    return rows


@contextlib.contextmanager
def _bar(total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over captions (log lines when stderr is no terminal)."""
    if not sys.stderr.isatty():
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            log.info("captions: %d/%d", done[0], total)

        yield advance
        return
    with Progress(transient=False) as progress:
        task = progress.add_task("captions", total=total)
        yield lambda n: progress.advance(task, n)


# The caption phase's Ray actor: one language model, the captions of one class per call.
#
# It runs before the image actors start, reserving what an image actor reserves (its GPU where
# there is one), and releases its model before the driver starts the image pool: an accelerator
# holds one model at a time.
class CaptionActor:
    """Loads the job's captions model once; `write(label)` returns that class's captions."""

    def __init__(self, job: JobContext, threads: int, credentials: s3.Credentials) -> None:
        import torch  # torch and transformers: in the actor, never in the driver

        from synthgen.models.captioner import Captioner  # transformers: in the actor only
        from synthgen.models.sources import caption_model_folder  # the actor's own path

        credentials.install()
        torch.set_num_threads(threads)
        self.plan = job.plan
        spec = job.spec
        self.captioner = Captioner(caption_model_folder(spec, "all"), captions_of(spec),
                                   spec.model.device, spec.model.dtype)
        self.batch_size = spec.compute.batch_size

    def write(self, label: int) -> list[dict[str, Any]]:
        """The class's kept captions as rows; raises when it cannot find enough (spec/captions.py)."""
        entry = self.plan.manifest.entries[label]
        spec, name = captions_of(self.plan.spec), entry.label_name or ""  # a class job's entries are named
        chosen = ClassCaptions(spec)
        while chosen.needed:
            count = chosen.needed
            seeds = [caption_seed(self.plan.spec.seed, name, chosen.tried + i)
                     for i in range(count)]
            texts: list[str] = []
            for start in range(0, count, self.batch_size):
                part = seeds[start : start + self.batch_size]
                texts += self.captioner.generate([instruction(spec, entry, s) for s in part], part)
            for seed, text in zip(seeds, texts, strict=True):
                chosen.offer(seed, text)
        if not chosen.complete():
            raise CaptionsFailed(chosen.shortfall(name))
        return [{"label": entry.label, "label_name": entry.label_name, "caption_id": j, "caption": text,
                 "draw": index, "seed": seed} for j, (index, seed, text) in enumerate(chosen.kept)]

    def release(self) -> bool:
        """Free the language model before the image model loads."""
        self.captioner.release()
        return True


class CaptionsFailed(RuntimeError):
    """A class found too few usable captions within its draws."""
