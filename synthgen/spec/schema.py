"""The job spec's JSON Schema, from the pydantic models that validate a spec (so it cannot
drift): `synthgen schema` prints it, editors complete and check specs from it, and the docs'
spec reference is generated from it."""

from __future__ import annotations

from typing import Any

SCHEMA_ID = "https://synthgen.dev/schema/job-spec.json"


def job_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a job spec: unknown keys refused, as by synthgen."""
    from synthgen.spec.job_spec import JobSpec

    schema = JobSpec.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
