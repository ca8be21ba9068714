"""The job spec: typed, validated configuration loaded from YAML with dotted-path overrides.

Field names are the contract of ../shared/DESIGN.md. Every validation error becomes a
`UserError` that names the field, the value and the fix, so the CLI can print one line.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from synthgen.errors import UserError
from synthgen.schedulers import SCHEDULERS


class Strict(BaseModel):
    """Unknown fields are errors: a typo must not silently fall back to a default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(Strict):
    source: str = "builtin:digits"
    revision: str | None = None
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    adapter: str | None = None
    storage_options: dict[str, Any] = Field(default_factory=dict)


class SamplerSpec(Strict):
    scheduler: str = "ddim"
    steps: int = Field(25, gt=0, le=10_000)
    guidance_scale: float = Field(2.0, ge=0.0)
    eta: float = Field(0.0, ge=0.0)
    height: int | None = Field(None, gt=0)
    width: int | None = Field(None, gt=0)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        if name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler; choose one of {', '.join(SCHEDULERS)}")
        return name


class ClassEntry(Strict):
    name: str = Field(min_length=1)
    count: int | None = Field(None, gt=0)
    model_label: int | None = Field(None, ge=0)
    prompts: list[str] | None = None
    negative_prompt: str | None = None


class ClassManifest(Strict):
    count: int = Field(100, gt=0)
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
    count: int | None = Field(None, gt=0)


class PromptManifest(Strict):
    items: list[PromptEntry] | None = None
    source: str | None = None
    count: int = Field(1, gt=0)
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
    shard_size: int = Field(500, gt=0)
    quality: int = Field(90, ge=1, le=100)
    png_compress_level: int = Field(1, ge=0, le=9)
    storage_options: dict[str, Any] = Field(default_factory=dict)


class ComputeSpec(Strict):
    workers: int | Literal["auto"] = "auto"
    gpus_per_worker: float = Field(1.0, ge=0.0)
    cpus_per_worker: int | Literal["auto"] = "auto"
    batch_size: int = Field(64, gt=0)
    max_retries: int = Field(3, gt=0)

    @field_validator("workers", "cpus_per_worker")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be a positive integer or 'auto'")
        return value


class FilterSpec(Strict):
    """The label-fidelity filter: a classifier judges each image; rejected ones are redrawn
    with new seeds (see synthgen/filter.py)."""

    classifier: str = Field(min_length=1)  # builtin:digits | a local file or folder
    kind: Literal["auto", "torch", "timm", "transformers", "clip"] = "auto"
    min_prob: float | None = Field(None, gt=0.0, le=1.0)
    require_match: bool = True
    max_draws: int = Field(10, ge=1, le=1000)
    prompt: str = "a photo of a {name}"  # CLIP only: the text each class is matched against

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
    "model": {"device", "storage_options"},
    "classes": {"storage_options"},
    "prompts": {"storage_options"},
    "name": None,
}


def load_spec(path: str | Path, overrides: tuple[str, ...] = (), output: str | None = None) -> JobSpec:
    """Read a YAML spec, apply `--set` overrides and `--output`, and validate it."""
    path = Path(path)
    data = _read_yaml(path)
    for item in overrides:
        key, value = _parse_override(item)
        _set_dotted(data, key, value)
    if output is not None:
        _set_dotted(data, "output.uri", output)
    _anchor_paths(data, path.parent)
    return validate_spec(data)


def validate_spec(data: dict[str, Any]) -> JobSpec:
    """Validate a spec dict; the first error becomes one `UserError` line."""
    try:
        return JobSpec.model_validate(data)
    except ValidationError as exc:
        raise _user_error(exc, data) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError("spec", str(path), "no such file; give the path of a YAML job spec")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown place"
        raise UserError("spec", str(path), f"malformed YAML at {where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError("spec", str(path), "the top level must be a mapping of fields")
    return data


def _parse_override(item: str) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UserError("--set", item, "write it as dotted.key=value, e.g. sampler.steps=10")
    try:
        return key.strip(), yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return key.strip(), raw


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UserError("--set", key, f"'{part}' is not a section; override a leaf field")
        node = child
    node[parts[-1]] = value


def _anchor_paths(data: dict[str, Any], base: Path) -> None:
    """Local manifest and model paths are relative to the spec's folder, like an include."""
    for section, key in (("classes", "source"), ("prompts", "source"), ("model", "source"),
                         ("filter", "classifier")):
        node = data.get(section)
        if not isinstance(node, dict) or not isinstance(node.get(key), str):
            continue
        value = node[key]
        if "://" in value or value.startswith("builtin:") or Path(value).is_absolute():
            continue
        candidate = base / value
        if candidate.exists() or section not in ("model", "filter"):
            node[key] = str(candidate.resolve())


def _user_error(exc: ValidationError, data: dict[str, Any]) -> UserError:
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    field = ".".join(loc) or "spec"
    message = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return UserError(field, err["input"], f"unknown field; {_known_fields(loc)}")
    value = err["input"] if loc else None
    if err["type"] in ("model_type", "dict_type") or isinstance(value, dict):
        value = _lookup(data, loc)
    return UserError(field, _short(value), message)


def _known_fields(loc: list[str]) -> str:
    model: type[BaseModel] = JobSpec
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation
        inner = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        model = next((a for a in inner if issubclass(a, BaseModel)), model)
    return "valid fields here: " + ", ".join(model.model_fields)


def _lookup(data: Any, loc: list[str]) -> Any:
    for part in loc:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
    return data


def _short(value: Any) -> Any:
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."


def data_fields(spec: JobSpec) -> dict[str, Any]:
    """The spec minus execution-only fields: what job_id fingerprints."""
    data = copy.deepcopy(spec.model_dump(mode="json"))
    for section, keys in EXECUTION_ONLY.items():
        if keys is None:
            data.pop(section, None)
        elif isinstance(data.get(section), dict):
            for key in keys:
                data[section].pop(key, None)
    return data
