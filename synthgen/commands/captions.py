"""`synthgen captions`: write a job's captions without making images, or show the committed ones.

Writing them claims the output for the job (job.json) under its lock, exactly as `run` does, so
a later `run` of the same spec resumes with these captions.
"""

from __future__ import annotations

import pyarrow as pa

from synthgen.engine.captions import ensure_captions, read_captions, wants_captions
from synthgen.engine.driver import Prepared, claim_output, holds_job
from synthgen.errors import UserError
from synthgen.storage.lock import JobLock


def job_captions(prepared: Prepared, address: str | None = None) -> pa.Table:
    """The committed captions' table (label, label_name, caption_id, caption, draw, seed)."""
    # ray only when captions are to be written
    from synthgen.engine.pool import connect_ray

    if not wants_captions(prepared.plan):
        raise UserError("classes.captions", None, "this spec has no captions section; add one")
    store = prepared.store
    if holds_job(prepared):
        found = read_captions(store)
        if found is not None:
            return found[1]
    store.probe_create_only()
    with JobLock.acquire(store, False):
        claim_output(prepared)
        ensure_captions(prepared.job, store, lambda: connect_ray(address))
    return read_captions(store)[1]
