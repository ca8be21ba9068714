"""The job spec's JSON Schema, from the pydantic models that validate a spec (so it cannot
drift): `synthgen schema` prints it, editors complete and check specs from it, and the docs
publish it (docs/reference/job-spec.schema.json, a test holds it equal to this).

It has no `$id`: the project publishes no URL of its own, and a spec names the schema by the
path of its copy (`# yaml-language-server: $schema=...` in pipelines/*.yaml)."""

from __future__ import annotations

import json
from typing import Any

DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the standard's own identifier


def job_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a job spec: unknown keys refused, as by synthgen, and
    the shorthands synthgen reads (an inline prompt list, `jpg`) accepted."""
    from synthgen.spec.job_spec import JobSpec  # pydantic: when asked for (help stays light)

    schema = JobSpec.model_json_schema()
    return {"$schema": DIALECT, **schema, "title": "synthgen job spec"}


def job_schema_text() -> str:
    """The schema as `synthgen schema` prints it and the docs hold it: indented, keys in the
    models' order, one newline at the end."""
    return json.dumps(job_schema(), indent=2, ensure_ascii=False) + "\n"
