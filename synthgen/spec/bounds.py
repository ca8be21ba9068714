"""Upper bounds on what a job may ask for: a mistake (an extra zero, 1e20) fails fast with the
field, instead of hanging the plan or filling a disk. Generous: a real job is far below them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthgen.errors import UserError

if TYPE_CHECKING:  # the plan imports this module; the type is for annotations only
    from synthgen.spec.plan import Plan

MAX_COUNT = 1_000_000_000  # images of one class or prompt
MAX_SAMPLES = 10_000_000_000  # images of one job
MAX_SHARDS = 10_000_000  # shards of one job (each has a marker to list)
MAX_SHARD_SIZE = 100_000  # images in one shard (built in memory, then put whole)
MAX_IMAGE_SIDE = 8192  # pixels
MAX_STEPS = 10_000
MAX_BATCH = 4096


def check_bounds(plan: Plan) -> None:
    """The plan's totals, which no single field bounds."""
    section = "classes" if plan.spec.classes else "prompts"
    if plan.total > MAX_SAMPLES:
        raise UserError(f"{section}.count", plan.total, f"the job would make {plan.total:,} images, "
                        f"more than {MAX_SAMPLES:,}; split it into several jobs")
    if plan.num_shards > MAX_SHARDS:
        raise UserError("output.shard_size", plan.spec.output.shard_size,
                        f"{plan.num_shards:,} shards is more than {MAX_SHARDS:,}; use larger shards")
