"""The base of every spec section: strict about unknown fields, non-finite numbers and booleans.

Its own module so that sections living outside job_spec.py (init_spec.py) share it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


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
