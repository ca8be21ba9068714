"""The job spec's schema: typed, validated sections (field names are DESIGN.md's contract).

Unknown fields are errors, and `data_fields` says which fields change the data (job_id).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from synthgen.spec.bounds import MAX_BATCH, MAX_COUNT, MAX_IMAGE_SIDE, MAX_SHARD_SIZE, MAX_STEPS
from synthgen.spec.scheduler_names import SCHEDULERS
from synthgen.storage.redact import redact_spec


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently fall back to a default. So are
    infinities and NaN, and a boolean where a number belongs (`steps: yes` is not 1)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

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


class ModelSpec(Strict):
    source: str = "builtin:digits"
    revision: str | None = None
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    adapter: str | None = None
    trusted: bool = False  # load pickled weights and libraries other than diffusers/transformers
    storage_options: dict[str, Any] = Field(default_factory=dict)


class SamplerSpec(Strict):
    scheduler: str = "ddim"
    steps: int = Field(25, gt=0, le=MAX_STEPS)
    guidance_scale: float = Field(2.0, ge=0.0)
    eta: float = Field(0.0, ge=0.0)
    height: int | None = Field(None, gt=0, le=MAX_IMAGE_SIDE)
    width: int | None = Field(None, gt=0, le=MAX_IMAGE_SIDE)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        if name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler; choose one of {', '.join(SCHEDULERS)}")
        return name


class ClassEntry(Strict):
    name: str = Field(min_length=1)
    count: int | None = Field(None, gt=0, le=MAX_COUNT)
    model_label: int | None = Field(None, ge=0)
    prompts: list[str] | None = None
    negative_prompt: str | None = None


class ClassManifest(Strict):
    count: int = Field(100, gt=0, le=MAX_COUNT)
    names: list[str] | None = None
    entries: list[ClassEntry] | None = None
    source: str | None = None
    templates: list[str] | None = None
    negative_prompt: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("templates")
    @classmethod
    def _templates_name_the_class(cls, templates: list[str] | None) -> list[str] | None:
        """A template without {name} would make the same prompt for every class."""
        for template in templates or ():
            if "{name}" not in template:
                raise ValueError(f"template {template!r} has no {{name}}; write e.g. 'a photo of a {{name}}'")
        if templates is not None and not templates:
            raise ValueError("the template list is empty; give at least one, or leave it out")
        return templates

    @model_validator(mode="after")
    def _one_source(self) -> ClassManifest:
        given = [k for k in ("names", "entries", "source") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of names, entries or source")
        if self.names is not None and not self.names or self.entries is not None and not self.entries:
            raise ValueError("the class list is empty; name at least one class")
        return self


class PromptEntry(Strict):
    prompt: str = Field(min_length=1)
    negative_prompt: str | None = None
    label: str | int | None = None
    count: int | None = Field(None, gt=0, le=MAX_COUNT)


class PromptManifest(Strict):
    items: list[PromptEntry] | None = None
    source: str | None = None
    count: int = Field(1, gt=0, le=MAX_COUNT)
    negative_prompt: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _inline_list(cls, data: Any) -> Any:
        """`prompts: ["a cat", {prompt: "a dog", count: 3}]` is shorthand for `items:`."""
        if isinstance(data, list):
            return {"items": [{"prompt": p} if isinstance(p, str) else p for p in data]}
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            items = [{"prompt": p} if isinstance(p, str) else p for p in data["items"]]
            return {**data, "items": items}
        return data

    @model_validator(mode="after")
    def _one_source(self) -> PromptManifest:
        if (self.items is None) == (self.source is None):
            raise ValueError("give exactly one of items (an inline list) or source (a file)")
        if self.items is not None and not self.items:
            raise ValueError("the prompt list is empty; give at least one prompt")
        return self


class OutputSpec(Strict):
    uri: str = "./out/digits"
    image_format: Literal["png", "jpeg", "webp"] = "png"
    shard_size: int = Field(500, gt=0, le=MAX_SHARD_SIZE)
    quality: int = Field(90, ge=1, le=100)
    png_compress_level: int = Field(1, ge=0, le=9)
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("uri")
    @classmethod
    def _not_empty(cls, uri: str) -> str:
        """'' would be the working folder: say so instead of guessing."""
        if not uri.strip():
            raise ValueError("the output is empty; give a new folder or URL, e.g. ./out/NAME")
        return uri


class ComputeSpec(Strict):
    workers: int | Literal["auto"] = "auto"
    gpus_per_worker: float = Field(1.0, ge=0.0)
    cpus_per_worker: int | Literal["auto"] = "auto"
    batch_size: int = Field(64, gt=0, le=MAX_BATCH)
    max_retries: int = Field(3, gt=0, le=100)

    @field_validator("workers", "cpus_per_worker")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be a positive integer or 'auto'")
        return value


class FilterSpec(Strict):
    """The label-fidelity filter: a classifier judges each image; rejected ones are redrawn
    with new seeds (see quality/filter.py and run/shard_draws.py)."""

    classifier: str = Field(min_length=1)  # builtin:digits | a local file or folder
    kind: Literal["auto", "torch", "timm", "transformers", "clip"] = "auto"
    min_prob: float | None = Field(None, gt=0.0, le=1.0)
    require_match: bool = True
    max_draws: int = Field(10, ge=1, le=1000)
    prompt: str = "a photo of a {name}"  # CLIP only: the text each class is matched against
    trusted: bool = False  # load a classifier that only pickle can load (torch.save, .bin)

    @model_validator(mode="after")
    def _has_rule(self) -> FilterSpec:
        if not self.require_match and self.min_prob is None:
            raise ValueError("the filter needs a rule: require_match: true and/or min_prob (e.g. 0.5)")
        if "{name}" not in self.prompt:
            raise ValueError(f"prompt {self.prompt!r} has no {{name}}; write e.g. 'a photo of a {{name}}'")
        return self


class JobSpec(Strict):
    name: str = Field("job", min_length=1)
    seed: int = Field(0, ge=0)
    model: ModelSpec = Field(default_factory=ModelSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    classes: ClassManifest | None = None
    prompts: PromptManifest | None = None
    output: OutputSpec = Field(default_factory=OutputSpec)
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    filter: FilterSpec | None = None

    @model_validator(mode="after")
    def _one_manifest(self) -> JobSpec:
        if (self.classes is None) == (self.prompts is None):
            raise ValueError("give exactly one of classes (a class manifest) or prompts")
        return self


# Fields that change how a job runs but never the data it produces: left out of job_id.
EXECUTION_ONLY = {
    "compute": None,
    "output": {"uri", "storage_options"},
    "model": {"device", "storage_options", "trusted"},
    "classes": {"storage_options"},
    "prompts": {"storage_options"},
    "filter": {"trusted"},
    "name": None,
}


def data_fields(spec: JobSpec) -> dict[str, Any]:
    """The spec minus execution-only fields, redacted as job.json stores it: what job_id
    fingerprints (so a resume from the stored spec finds the same id)."""
    data = redact_spec(copy.deepcopy(spec.model_dump(mode="json")))
    for section, keys in EXECUTION_ONLY.items():
        if keys is None:
            data.pop(section, None)
        elif isinstance(data.get(section), dict):
            for key in keys:
                data[section].pop(key, None)
    return data
