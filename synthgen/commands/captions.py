"""`synthgen captions`: write a job's captions without making images, or show the committed ones.

Writing them opens the output for the job exactly as `run` does (JobOutput in
engine/lifecycle.py: job.json claimed under its lock, then the captions phase), so a later `run`
of the same spec resumes with these captions.
"""

from __future__ import annotations

import pyarrow as pa

from synthgen.engine.captions import committed_captions, read_captions, wants_captions
from synthgen.engine.job import CheckedJob
from synthgen.engine.lifecycle import JobOutput, RunOptions, holds_job
from synthgen.errors import UserError


def job_captions(prepared: CheckedJob, address: str | None = None) -> pa.Table:
    """The committed captions' table (label, label_name, caption_id, caption, draw, seed)."""
    if not wants_captions(prepared.plan):
        raise UserError("classes.captions", None, "this spec has no captions section; add one")
    store = prepared.store
    if holds_job(prepared):
        found = read_captions(store)
        if found is not None:
            return found[1]
    with JobOutput.open(prepared, RunOptions(address=address)):
        pass  # opening claims the output and writes its captions: nothing runs
    return committed_captions(store)[1]
