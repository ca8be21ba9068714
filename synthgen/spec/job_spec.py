"""The job spec's schema: typed, validated sections (their field names are the spec's contract).

Unknown fields are errors, and `data_fields` says which fields change the data (job_id).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from synthgen.spec.distributions import Choice, Uniform, parse_number, parse_text, per_sample_schema
from synthgen.spec.init_spec import InitSpec, check_init_sections
from synthgen.spec.sample_order import SPLIT_NAME, ordered_splits
from synthgen.spec.scheduler_names import SCHEDULERS
from synthgen.spec.strict import MAX_BATCH, MAX_COUNT, MAX_IMAGE_SIDE, MAX_SHARD_SIZE, MAX_STEPS, Strict

# What makes a template's prompt differ between classes: it must name one of these.
CLASS_PLACEHOLDERS = ("name", "synonym", "description", "caption")

# A negative prompt: text, or {choice: [...]} drawn per sample.
NegativePrompt = Annotated[str | Choice | None, BeforeValidator(parse_text),
                           Field(json_schema_extra=per_sample_schema({"type": "string"}))]

Device = Literal["auto", "cpu", "cuda"]


class ModelSpec(Strict):
    source: str = "builtin:digits"
    revision: str | None = None
    dtype: Literal["float32", "float16", "bfloat16", "auto"] = "float32"  # auto: resolved by the driver
    device: Device = "auto"
    adapter: str | None = None
    trusted: bool = False  # load pickled weights and libraries other than diffusers/transformers
    storage_options: dict[str, Any] = Field(default_factory=dict)


class SamplerSpec(Strict):
    scheduler: str = "ddim"
    steps: int | Choice = Field(25, json_schema_extra=per_sample_schema(  # or {choice: [...]}: per sample
        {"type": "integer", "minimum": 1, "maximum": MAX_STEPS}))
    guidance_scale: float | Uniform | Choice = Field(  # or {uniform: [lo, hi]}, {choice: [...]}
        2.0, json_schema_extra=per_sample_schema({"type": "number", "minimum": 0}))
    eta: float = Field(0.0, ge=0.0)
    height: int | None = Field(None, gt=0, le=MAX_IMAGE_SIDE)
    width: int | None = Field(None, gt=0, le=MAX_IMAGE_SIDE)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, name: str) -> str:
        if name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler; choose one of {', '.join(SCHEDULERS)}")
        return name

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        return parse_number(value, integer=True, limit=MAX_STEPS)

    @field_validator("guidance_scale", mode="before")
    @classmethod
    def _guidance(cls, value: Any) -> Any:
        return parse_number(value)


class CaptionsSpec(Strict):
    """LLM-written captions: `per_class` per class, generated once and committed to the output."""

    model: str = Field(min_length=1)  # a transformers causal LM: local dir, hub id or fsspec URL
    revision: str | None = None
    per_class: int = Field(gt=0, le=100_000)
    instruction: str = "Write a one-line description of a photo of a {name}."
    max_new_tokens: int = Field(40, gt=0, le=2048)
    temperature: float = Field(0.9, gt=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_chars: int = Field(300, gt=0)  # longer captions are dropped and redrawn
    max_draws: int = Field(4, ge=1, le=100)  # draws per caption, on average, before the job fails


class ClassEntry(Strict):
    SAME_DATA_AS_BEFORE = {"attributes": None, "description": None, "synonyms": None}
    name: str = Field(min_length=1)
    count: int | None = Field(None, gt=0, le=MAX_COUNT)
    model_label: int | None = Field(None, ge=0)
    prompts: list[str] | None = None
    negative_prompt: NegativePrompt = None
    attributes: dict[str, Any] | None = None  # adds to or overrides classes.attributes
    description: str | None = None
    synonyms: list[str] | None = None


class ClassManifest(Strict):
    SAME_DATA_AS_BEFORE = {"attributes": None, "attribute_mode": "random", "captions": None,
                           "label_mapping": "name"}
    count: int = Field(100, gt=0, le=MAX_COUNT)
    names: list[str] | dict[str, str] | None = None  # with init: a subset, a mapping renames
    entries: list[ClassEntry] | None = None
    source: str | None = None
    templates: list[str] | None = None
    negative_prompt: NegativePrompt = None
    # How a class-conditional model's class ids are found: by name (entry.model_label, else the
    # model's id2label), or by position (label 0 -> class id 0, ...), which must be asked for.
    label_mapping: Literal["name", "position"] = "name"
    storage_options: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] | str | None = None  # axes: inline, or a file (spec/attributes.py)
    attribute_mode: Literal["random", "cycle"] = "random"
    captions: CaptionsSpec | None = None

    @field_validator("templates")
    @classmethod
    def _templates_name_the_class(cls, templates: list[str] | None) -> list[str] | None:
        """A template naming nothing of its class would make the same prompt for every class."""
        for template in templates or ():
            if not any(f"{{{word}}}" in template for word in CLASS_PLACEHOLDERS):
                raise ValueError(f"template {template!r} has no {{name}}; write e.g. 'a photo of a {{name}}'")
        if templates is not None and not templates:
            raise ValueError("the template list is empty; give at least one, or leave it out")
        return templates

    @model_validator(mode="after")
    def _one_source(self) -> ClassManifest:
        """At most one here; exactly one unless the job has `init` (init_spec.py checks)."""
        given = [k for k in ("names", "entries", "source") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError("give exactly one of names, entries or source")
        if self.names is not None and not self.names or self.entries is not None and not self.entries:
            raise ValueError("the class list is empty; name at least one class")
        return self


class PromptEntry(Strict):
    prompt: str = Field(min_length=1)
    negative_prompt: NegativePrompt = None
    label: str | int | None = None
    count: int | None = Field(None, gt=0, le=MAX_COUNT)


def _inline_list_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema shows the shorthand `PromptManifest._inline_list` reads: the section as a
    list of prompts, and an item as a plain string."""
    items = schema["properties"]["items"]["anyOf"][0]
    inline = {"type": "array", "items": {"anyOf": [{"type": "string"}, items["items"]]}}
    schema["properties"]["items"]["anyOf"][0] = inline
    section = dict(schema)
    schema.clear()
    schema.update(title=section.pop("title"), anyOf=[section, inline])


class PromptManifest(Strict):
    model_config = ConfigDict(json_schema_extra=_inline_list_schema)
    SAME_DATA_AS_BEFORE = {"attributes": None, "attribute_mode": "random"}
    items: list[PromptEntry] | None = None
    source: str | None = None
    count: int = Field(1, gt=0, le=MAX_COUNT)
    negative_prompt: NegativePrompt = None
    storage_options: dict[str, Any] = Field(default_factory=dict)
    attributes: dict[str, Any] | str | None = None  # axes that prompts name as {axis}
    attribute_mode: Literal["random", "cycle"] = "random"

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


# Schemes fsspec opens that cannot hold an output, and why.
NOT_AN_OUTPUT = {"http": "is read-only", "https": "is read-only",
                 "memory": "lives in one process: the workers and the next run would not see it"}


def _jpg_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema takes `jpg` in any case too, as `OutputSpec._jpg_is_jpeg` does."""
    names = {"enum": [*schema.pop("enum"), "jpg"], "type": schema.pop("type")}
    schema["anyOf"] = [names, {"type": "string", "pattern": "^[jJ][pP][gG]$"}]


class OutputSpec(Strict):
    SAME_DATA_AS_BEFORE = {"order": "by_class", "splits": None, "format": "parquet"}
    uri: str = "./out/digits"
    image_format: Literal["png", "jpeg", "webp"] = Field("png", json_schema_extra=_jpg_schema)
    shard_size: int = Field(500, gt=0, le=MAX_SHARD_SIZE)
    quality: int = Field(90, ge=1, le=100)
    png_compress_level: int = Field(1, ge=0, le=9)
    order: Literal["interleaved", "by_class"] = "interleaved"  # interleaved: every shard mixes classes
    splits: dict[str, float] | None = None  # e.g. {train: 0.9, validation: 0.05, test: 0.05}
    format: Literal["parquet", "webdataset"] = "parquet"  # the data files: Parquet or WebDataset tars
    storage_options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("image_format", mode="before")
    @classmethod
    def _jpg_is_jpeg(cls, value: Any) -> Any:
        """`jpg` (the file extension) is read as `jpeg`: the same data, so the same job_id."""
        return "jpeg" if isinstance(value, str) and value.lower() == "jpg" else value

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

    @field_validator("uri")
    @classmethod
    def _a_place_to_write(cls, uri: str) -> str:
        """'' would be the working folder: say so instead of guessing. A NUL ends a path early
        on disk and in many tools; http(s) and memory are no place for an output."""
        if not uri.strip():
            raise ValueError("the output is empty; give a new folder or URL, e.g. ./out/NAME")
        if "\0" in uri:
            raise ValueError("it holds a NUL character; remove it")
        scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
        if scheme in NOT_AN_OUTPUT:
            raise ValueError(f"{scheme}:// {NOT_AN_OUTPUT[scheme]}; write to a local folder, s3://, "
                             "gs:// or another store")
        return uri


class ComputeSpec(Strict):
    workers: int | Literal["auto"] = "auto"
    gpus_per_worker: float = Field(1.0, ge=0.0)
    cpus_per_worker: int | Literal["auto"] = "auto"
    batch_size: int = Field(64, gt=0, le=MAX_BATCH)
    max_retries: int = Field(3, gt=0, le=100)
    # how long actors may wait for a cluster to place them (an autoscaler adding nodes)
    placement_timeout_s: float = Field(600.0, gt=0.0, le=7 * 86400.0)

    @field_validator("workers", "cpus_per_worker")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be a positive integer or 'auto'")
        return value


class FilterSpec(Strict):
    """The label-fidelity filter: a classifier judges each image; rejected ones are redrawn
    with new seeds (see quality/filter.py and engine/shard_draws.py)."""

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
    """A synthgen job: what to generate (classes or prompts), with which model and sampler,
    where to write it, and on what compute."""

    SAME_DATA_AS_BEFORE = {"init": None}
    name: str = Field("job", min_length=1)
    seed: int = Field(0, ge=0)
    model: ModelSpec = Field(default_factory=ModelSpec)
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    classes: ClassManifest | None = None
    prompts: PromptManifest | None = None
    output: OutputSpec = Field(default_factory=OutputSpec)
    compute: ComputeSpec = Field(default_factory=ComputeSpec)
    filter: FilterSpec | None = None
    init: InitSpec | None = None  # img2img of labeled real images: the classes are the source's

    @model_validator(mode="after")
    def _one_manifest(self) -> JobSpec:
        if self.init is None and (self.classes is None) == (self.prompts is None):
            raise ValueError("give exactly one of classes (a class manifest) or prompts")
        check_init_sections(self.init, self.classes, self.prompts)
        return self
