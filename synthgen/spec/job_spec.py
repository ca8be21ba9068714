"""The job spec's schema: typed, validated sections (their field names are the spec's contract).

Unknown fields are errors, and `data_fields` says which fields change the data (job_id).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from synthgen.spec.distributions import Choice, Uniform, parse_number, per_sample_schema
from synthgen.spec.init_spec import InitSpec, check_init_sections
from synthgen.spec.manifest_spec import ClassManifest, PromptManifest
from synthgen.spec.sample_order import SPLIT_NAME, ordered_splits
from synthgen.spec.scheduler_names import SCHEDULERS
from synthgen.spec.strict import MAX_BATCH, MAX_IMAGE_SIDE, MAX_SHARD_SIZE, MAX_STEPS, Strict

Device = Literal["auto", "cpu", "cuda"]


class ModelSpec(Strict):
    source: str = Field("builtin:digits", description=(
        "The diffusers model: `builtin:NAME` (shipped in the package), a local folder (relative to the "
        "spec's folder), a Hugging Face hub id `org/name`, or an fsspec URL (`s3://...`)."))
    revision: str | None = Field(None, description=(
        "A hub model's branch, tag or commit; folders and URLs are pinned by a content hash."))
    dtype: Literal["float32", "float16", "bfloat16", "auto"] = Field("float32", description=(
        "The precision the model runs in. `auto` is resolved once, by the driver, on its machine: "
        "float16 on an NVIDIA GPU, bfloat16 on a CPU with bf16 instructions, else float32."))
    device: Device = Field("auto", description="Where workers run the model: `auto` uses a GPU when the "
                                               "worker has one.")
    adapter: str | None = Field(None, description=(
        "The model family (`unet`, `dit`, `sd`, `pipeline`), overriding the one detected from the "
        "model's files."))
    trusted: bool = Field(False, description=(
        "Load pickled weights and libraries other than diffusers and transformers: only for a model "
        "you trust, since pickle runs code."))
    storage_options: dict[str, Any] = Field(default_factory=dict, description=(
        "Handed to fsspec for a URL source (endpoint_url, profile, ...); secrets are stored redacted."))


class SamplerSpec(Strict):
    scheduler: str = Field("ddim", description=(
        "The diffusers scheduler, built from the model's own scheduler config; flow-matching models "
        "(SD3, FLUX) take `flow-euler` only."), json_schema_extra={"enum": list(SCHEDULERS)})
    steps: int | Choice = Field(25, json_schema_extra=per_sample_schema(
        {"type": "integer", "minimum": 1, "maximum": MAX_STEPS}), description=(
        f"Denoising steps (1 to {MAX_STEPS:,}), or `{{choice: [...]}}` drawn per sample."))
    guidance_scale: float | Uniform | Choice = Field(2.0, json_schema_extra=per_sample_schema(
        {"type": "number", "minimum": 0}), description=(
        "Classifier-free guidance (1.0: off), or a range or choice drawn per sample."))
    eta: float = Field(0.0, ge=0.0, description="The noise DDIM adds at each step (0: deterministic); "
                                                "ignored by schedulers that take none.")
    height: int | None = Field(None, gt=0, le=MAX_IMAGE_SIDE, description=(
        "Image height in pixels, checked against the model at plan time; unset: the model's size."))
    width: int | None = Field(None, gt=0, le=MAX_IMAGE_SIDE, description=(
        "Image width in pixels, checked against the model at plan time; unset: the model's size."))

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


# Schemes fsspec opens that cannot hold an output, and why.
NOT_AN_OUTPUT = {"http": "is read-only", "https": "is read-only",
                 "memory": "lives in one process: the workers and the next run would not see it"}


def _jpg_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema takes `jpg` in any case too, as `OutputSpec._jpg_is_jpeg` does."""
    names = {"enum": [*schema.pop("enum"), "jpg"], "type": schema.pop("type")}
    schema["anyOf"] = [names, {"type": "string", "pattern": "^[jJ][pP][gG]$"}]


class OutputSpec(Strict):
    SAME_DATA_AS_BEFORE = {"order": "by_class", "splits": None, "format": "parquet"}
    uri: str = Field("./out/digits", description=(
        "Where the dataset is written: a local folder (relative to the working folder), "
        "`s3://bucket/prefix`, `gs://...` or any fsspec URL that can be written."))
    image_format: Literal["png", "jpeg", "webp"] = Field("png", json_schema_extra=_jpg_schema, description=(
        "How images are encoded; `jpg` is read as `jpeg`."))
    shard_size: int = Field(500, gt=0, le=MAX_SHARD_SIZE, description=(
        "Samples per shard: the unit of work, retry and commit."))
    quality: int = Field(90, ge=1, le=100, description="JPEG and WebP quality.")
    png_compress_level: int = Field(1, ge=0, le=9, description=(
        "PNG's zlib level: lossless at every level; 1 is fast."))
    order: Literal["interleaved", "by_class"] = Field("interleaved", description=(
        "`interleaved`: every shard mixes the classes; `by_class`: a class's samples come together."))
    splits: dict[str, float] | None = Field(None, description=(
        "Named fractions that sum to 1, e.g. {train: 0.9, validation: 0.05, test: 0.05}, drawn "
        "stratified per class."))
    format: Literal["parquet", "webdataset"] = Field("parquet", description=(
        "The data files: Parquet, or WebDataset tars (one per shard: the image, .cls and .json per "
        "sample)."))
    storage_options: dict[str, Any] = Field(default_factory=dict, description=(
        "Handed to fsspec for the output (endpoint_url, profile, ...); secrets are stored redacted."))

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
    workers: int | Literal["auto"] = Field("auto", description=(
        "Ray actors, each holding one model. `auto`: one per GPU; without GPUs, one per core (fewer "
        "when memory holds fewer copies of the model)."))
    gpus_per_worker: float = Field(1.0, ge=0.0, description="GPUs each actor reserves where the "
                                                            "cluster has GPUs.")
    cpus_per_worker: int | Literal["auto"] = Field("auto", description=(
        "CPUs each actor reserves (and its torch threads on a CPU). `auto`: the CPUs shared among "
        "the workers on a CPU-only cluster, 1 with GPUs."))
    batch_size: int = Field(64, gt=0, le=MAX_BATCH, description="Images per model call.")
    max_retries: int = Field(3, gt=0, le=100, description=(
        "Attempts per shard before the job reports it failed."))
    placement_timeout_s: float = Field(600.0, gt=0.0, le=7 * 86400.0, description=(
        "How long actors may wait for the cluster to place them (an autoscaler adding nodes) "
        "before the job fails."))

    @field_validator("workers", "cpus_per_worker")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be a positive integer or 'auto'")
        return value


class FilterSpec(Strict):
    """The label-fidelity filter: a classifier judges each image; rejected ones are redrawn
    with new seeds (see quality/filter.py and engine/shard_draws.py)."""

    classifier: str = Field(min_length=1, description="`builtin:digits`, or a classifier's local file "
                                                      "or folder.")
    kind: Literal["auto", "torch", "timm", "transformers", "clip"] = Field("auto", description=(
        "How the classifier is loaded; `auto`: from its files."))
    min_prob: float | None = Field(None, gt=0.0, le=1.0, description=(
        "Reject an image whose probability of its own class, as the classifier sees it, is below this."))
    require_match: bool = Field(True, description="Reject an image whose top class is not its class.")
    max_draws: int = Field(10, ge=1, le=1000, description="Draws per sample at most; then its shard "
                                                          "fails.")
    prompt: str = Field("a photo of a {name}", description=(
        "CLIP only: the text each class is matched against."))
    trusted: bool = Field(False, description=(
        "Load a classifier that only pickle can load (torch.save, .bin): only one you trust."))

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
    name: str = Field("job", min_length=1, description="The job's name, for people (not part of "
                                                       "the job id).")
    seed: int = Field(0, ge=0, description="The job seed: every sample's seed derives from it and the "
                                           "sample's id.")
    model: ModelSpec = Field(default_factory=ModelSpec, description="The diffusion model and where it "
                                                                    "runs.")
    sampler: SamplerSpec = Field(default_factory=SamplerSpec, description="How each image is drawn.")
    classes: ClassManifest | None = Field(None, description=(
        "A class manifest: the classes, their image counts and prompts (give classes or prompts; "
        "with init, classes is optional)."))
    prompts: PromptManifest | None = Field(None, description=(
        "A prompt manifest, for text-to-image models: the prompts, their image counts and labels."))
    output: OutputSpec = Field(default_factory=OutputSpec, description="Where and how the dataset is "
                                                                       "written.")
    compute: ComputeSpec = Field(default_factory=ComputeSpec, description=(
        "The pool of Ray actors that makes the images: how the job runs, never what it makes "
        "(not part of the job id)."))
    filter: FilterSpec | None = Field(None, description=(
        "The label-fidelity filter: a classifier judges each image, and a rejected sample is drawn "
        "again with a new seed."))
    init: InitSpec | None = Field(None, description=(
        "img2img: variations of labeled real images; the classes are the source's."))

    @model_validator(mode="after")
    def _one_manifest(self) -> JobSpec:
        if self.init is None and (self.classes is None) == (self.prompts is None):
            raise ValueError("give exactly one of classes (a class manifest) or prompts")
        check_init_sections(self.init, self.classes, self.prompts)
        return self
