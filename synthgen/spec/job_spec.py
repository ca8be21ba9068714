"""The job spec's schema: typed, validated sections (field names are DESIGN.md's contract).

Unknown fields are errors, and `data_fields` says which fields change the data (job_id).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from synthgen.errors import UserError
from synthgen.spec.ranges import Uniform
from synthgen.spec.scheduler_names import SCHEDULERS

SPLIT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
KNOWN_SPLITS = ("train", "validation", "test")


def ordered_splits(splits: dict[str, float]) -> dict[str, float]:
    """Splits in their layout order: train, validation, test, then others by name. Never the
    mapping's own order, which neither job.json (sorted keys) nor job_id keeps."""
    rank = {name: i for i, name in enumerate(KNOWN_SPLITS)}
    return {name: splits[name] for name in sorted(splits, key=lambda n: (rank.get(n, len(rank)), n))}


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
    # With `init`, names pick a subset of the source's classes, and a mapping renames them.
    names: list[str] | dict[str, str] | None = None
    entries: list[ClassEntry] | None = None
    source: str | None = None
    templates: list[str] | None = None
    negative_prompt: str | None = None
    # How a class-conditional model's class ids are found: by name (entry.model_label, else the
    # model's id2label), or by position (label 0 -> class id 0, ...), which must be asked for.
    label_mapping: Literal["name", "position"] = "name"
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
        """At most one here; exactly one unless the job has `init` (JobSpec checks)."""
        given = [k for k in ("names", "entries", "source") if getattr(self, k) is not None]
        if len(given) > 1:
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
    order: Literal["interleaved", "by_class"] = "interleaved"  # interleaved: every shard mixes classes
    splits: dict[str, float] | None = None  # e.g. {train: 0.9, validation: 0.05, test: 0.05}
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("splits")
    @classmethod
    def _fractions(cls, splits: dict[str, float] | None) -> dict[str, float] | None:
        """Split names become file and DatasetDict names; the fractions must cover every sample."""
        if splits is None:
            return None
        if not splits:
            raise ValueError("no splits given; name some, e.g. {train: 0.9, test: 0.1}, or leave it out")
        for name, fraction in splits.items():
            if not SPLIT_NAME.fullmatch(name):
                raise ValueError(f"split name {name!r} must be letters, digits or _ (e.g. validation)")
            if not 0.0 < fraction <= 1.0:
                raise ValueError(f"split {name!r}: {fraction} must be in (0, 1]")
        if abs(sum(splits.values()) - 1.0) > 1e-9:
            raise ValueError(f"the split fractions sum to {sum(splits.values()):g}; they must sum to 1")
        return ordered_splits(splits)


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
    with new seeds (see quality/filter.py and run/shard_draws.py)."""

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


class InitSpec(Strict):
    """Variations of labeled real images (img2img): the classes come from the source."""

    source: str = Field(min_length=1)  # image folder, Parquet dataset, synthgen output, builtin:digits
    strength: float | Uniform = 0.5  # 0: the encoded source; 1: plain generation
    per_image: int = Field(1, gt=0)  # variations of every source image
    resize: Literal["center-crop", "pad", "stretch"] = "center-crop"
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("strength")
    @classmethod
    def _unit_interval(cls, strength: float | Uniform) -> float | Uniform:
        bounds = strength.uniform if isinstance(strength, Uniform) else (strength,)
        if any(not 0.0 <= b <= 1.0 for b in bounds):
            raise ValueError("strength must be in [0, 1] (0 keeps the source, 1 ignores it), "
                             "a number or {uniform: [lo, hi]}")
        return strength


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
    init: InitSpec | None = None

    @model_validator(mode="after")
    def _one_manifest(self) -> JobSpec:
        if self.init is not None:
            return self._init_classes()
        if (self.classes is None) == (self.prompts is None):
            raise ValueError("give exactly one of classes (a class manifest) or prompts")
        classes = self.classes
        if classes is not None and all(getattr(classes, k) is None for k in ("names", "entries", "source")):
            raise UserError("classes", None, "give exactly one of names, entries or source")
        if classes is not None and isinstance(classes.names, dict):
            raise UserError("classes.names", classes.names,
                            "a mapping renames the classes of an init source only; list the names")
        return self

    def _init_classes(self) -> JobSpec:
        """With init the classes are the source's: `classes` may pick (names) and rename (a mapping)."""
        if self.prompts is not None:
            raise UserError("prompts", "(given)", "with init the classes come from init.source; "
                                                  "use classes.templates for prompts instead")
        if self.classes is not None and (self.classes.entries is not None or self.classes.source is not None):
            raise UserError("classes.entries" if self.classes.entries is not None else "classes.source",
                            "(given)", "with init the classes come from init.source; list names "
                                       "(a subset) or a mapping {source name: new name}")
        return self


# Fields that change how a job runs but never the data it produces: left out of job_id.
EXECUTION_ONLY = {
    "compute": None,
    "output": {"uri", "storage_options"},
    "model": {"device", "storage_options"},
    "classes": {"storage_options"},
    "prompts": {"storage_options"},
    "init": {"storage_options"},
    "name": None,
}


# Fields added after outputs existed, left out of job_id while they hold the value that makes the
# data those outputs have: such an output keeps its job_id, and resumes, with that value set.
SAME_DATA_AS_BEFORE = {
    ("output", "order"): "by_class",
    ("output", "splits"): None,
    ("classes", "label_mapping"): "name",
}


def data_fields(spec: JobSpec) -> dict[str, Any]:
    """The spec minus execution-only fields: what job_id fingerprints."""
    data = copy.deepcopy(spec.model_dump(mode="json"))
    for section, keys in EXECUTION_ONLY.items():
        if keys is None:
            data.pop(section, None)
        elif isinstance(data.get(section), dict):
            for key in keys:
                data[section].pop(key, None)
    if data.get("init") is None:
        data.pop("init", None)  # a spec without init fingerprints as it did before init existed
    for (section, key), value in SAME_DATA_AS_BEFORE.items():
        if isinstance(data.get(section), dict) and data[section].get(key, value) == value:
            data[section].pop(key, None)
    return data
