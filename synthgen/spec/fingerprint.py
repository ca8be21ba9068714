"""What job_id fingerprints: the spec minus execution-only fields and minus newer fields that
hold the value which makes the same data as before (each section's SAME_DATA_AS_BEFORE)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from synthgen.spec.job_spec import JobSpec
from synthgen.storage.redact import redact_spec

# Fields that change how a job runs but never the data it produces: left out of job_id.
EXECUTION_ONLY = {
    "compute": None,
    "output": {"uri", "storage_options"},
    "model": {"device", "storage_options", "trusted"},
    "classes": {"storage_options"},
    "prompts": {"storage_options"},
    "filter": {"trusted"},
    "init": {"storage_options"},
    "name": None,
}


def data_fields(spec: JobSpec) -> dict[str, Any]:
    """The spec minus execution-only fields and newer fields at their same-data value, redacted
    as job.json stores it: what job_id fingerprints (a resume from the stored spec finds the
    same id)."""
    data = redact_spec(copy.deepcopy(spec.model_dump(mode="json")))
    for section, keys in EXECUTION_ONLY.items():
        if keys is None:
            data.pop(section, None)
        elif isinstance(data.get(section), dict):
            for key in keys:
                data[section].pop(key, None)
    _drop_same_data(spec, data)
    return data


def _drop_same_data(model: BaseModel, data: dict[str, Any]) -> None:
    """Remove, at every depth, the fields that hold their SAME_DATA_AS_BEFORE value."""
    same = getattr(type(model), "SAME_DATA_AS_BEFORE", {})
    for name in list(data):
        value = getattr(model, name, None)
        if name in same and data[name] == same[name]:
            del data[name]
        elif isinstance(value, BaseModel) and isinstance(data[name], dict):
            _drop_same_data(value, data[name])
        elif isinstance(value, list) and isinstance(data[name], list):
            for item, dumped in zip(value, data[name], strict=True):
                if isinstance(item, BaseModel) and isinstance(dumped, dict):
                    _drop_same_data(item, dumped)
