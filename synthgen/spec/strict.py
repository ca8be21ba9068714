"""The base of every spec section: strict about unknown fields, non-finite numbers and booleans.

Its own module so that sections living outside job_spec.py (init_spec.py) share it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

from synthgen.errors import UserError


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently fall back to a default. So are
    infinities and NaN, and a boolean where a number belongs (`steps: yes` is not 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    # Fields added after outputs existed -> the value (as dumped to JSON) that makes the data
    # those outputs have: left out of job_id while they hold it (data_fields), so a spec that
    # does not use a newer field keeps its job_id, and an older output resumes with it set.
    SAME_DATA_AS_BEFORE: ClassVar[dict[str, Any]] = {}

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name and not _takes_bool(
                cls.model_fields[info.field_name].annotation):
            raise ValueError("a boolean where a number or text belongs; write the value itself")
        return value


def _takes_bool(annotation: Any) -> bool:
    """Whether a field's annotation admits a bool (bool itself, Any, or a union holding one)."""
    if annotation in (bool, Any):
        return True
    return any(_takes_bool(arg) for arg in getattr(annotation, "__args__", ()))


# Upper bounds on what a job may ask for: a mistake (an extra zero, 1e20) fails fast with the
# field, instead of hanging the plan or filling a disk. Generous: a real job is far below them.
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
