"""The shard schema, the Hugging Face features that ride in it, and a shard's table.

The schema metadata carries the `datasets` features under the key `huggingface`, so that
`load_dataset("parquet", ...)` yields `Image` and `ClassLabel` columns with no extra code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from synthgen.spec.plan import Plan, Sample
from synthgen.storage.redact import redact_stored

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

# column -> (arrow type, Hugging Face Value dtype); `image` and `label` are special.
METADATA_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "label_name": (pa.string(), "string"),
    "prompt": (pa.string(), "string"),
    "template": (pa.string(), "string"),
    "negative_prompt": (pa.string(), "string"),
    "sample_id": (pa.int64(), "int64"),
    "split": (pa.string(), "string"),  # output.splits; every shard is of one split
    "seed": (pa.int64(), "int64"),
    "width": (pa.int64(), "int64"),
    "height": (pa.int64(), "int64"),
    "model": (pa.string(), "string"),
    "model_revision": (pa.string(), "string"),
    "scheduler": (pa.string(), "string"),
    "steps": (pa.int64(), "int64"),
    "guidance_scale": (pa.float64(), "float64"),
    "job_id": (pa.string(), "string"),
    # The label-fidelity filter (null when the job has none): the classifier's probability of
    # the row's class, and how many draws the sample took (1: its first image was accepted).
    "filter_score": (pa.float64(), "float64"),
    "filter_draws": (pa.int64(), "int64"),
}

# init (img2img) jobs only: the source image's key, its class in the source, the strength.
INIT_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "init_id": (pa.string(), "string"),
    "init_label": (pa.string(), "string"),
    "strength": (pa.float64(), "float64"),
}


@dataclass(frozen=True)
class Provenance:
    """Columns that are the same for every row of a job."""

    job_id: str
    model: str
    model_revision: str
    scheduler: str
    image_format: str

    def __post_init__(self) -> None:
        # Every row (and index.parquet) stores `model`: a model URL's password never goes in.
        object.__setattr__(self, "model", redact_stored(self.model))


@dataclass(frozen=True)
class DesignColumns:
    """The columns only jobs that use them have (older jobs keep their schema): `attributes`, a
    struct with one string field per attribute axis of the job (null where a row's class has no
    such axis), `caption_id`, the caption a row's prompt took (classes.captions), and with `init`
    the INIT_COLUMNS."""

    axes: tuple[str, ...] = ()
    captions: bool = False
    init: bool = False

    @classmethod
    def of(cls, plan: Plan) -> DesignColumns:
        axes = dict.fromkeys(name for e in plan.manifest.entries for name, _ in e.attributes)
        captions = plan.spec.classes is not None and plan.spec.classes.captions is not None
        return cls(tuple(axes), captions, plan.spec.init is not None)

    @property
    def names(self) -> list[str]:
        return ((["attributes"] if self.axes else []) + (["caption_id"] if self.captions else [])
                + (list(INIT_COLUMNS) if self.init else []))

    @property
    def plain_columns(self) -> dict[str, tuple[pa.DataType, str]]:
        """The plain columns among them (all but the `attributes` struct): name -> types."""
        plain = {"caption_id": (pa.int64(), "int64")} if self.captions else {}
        return plain | (INIT_COLUMNS if self.init else {})

    def arrow_fields(self) -> list[pa.Field]:
        struct = pa.struct([(a, pa.string()) for a in self.axes])
        fields = [pa.field("attributes", struct)] if self.axes else []
        return fields + [pa.field(name, typ) for name, (typ, _) in self.plain_columns.items()]

    def features(self) -> dict[str, Any]:
        string = {"_type": "Value", "dtype": "string"}
        features: dict[str, Any] = {"attributes": {a: string for a in self.axes}} if self.axes else {}
        plain = {name: {"_type": "Value", "dtype": d} for name, (_, d) in self.plain_columns.items()}
        return features | plain

    def values(self, samples: Sequence[Sample]) -> dict[str, list[Any]]:
        columns: dict[str, list[Any]] = {}
        if self.axes:
            columns["attributes"] = [{a: (s.attributes or {}).get(a) for a in self.axes} for s in samples]
        for name in self.plain_columns:
            columns[name] = [getattr(s, name) for s in samples]
        return columns


def hf_features(class_names: Sequence[str], with_image: bool = True,
                design: DesignColumns = DesignColumns()) -> dict[str, Any]:
    """The `datasets` Features dict for our columns, in column order."""
    features: dict[str, Any] = {"image": {"_type": "Image"}} if with_image else {}
    features["label"] = (
        {"_type": "ClassLabel", "names": list(class_names)}
        if class_names
        else {"_type": "Value", "dtype": "int64"}
    )
    for name, (_, dtype) in METADATA_COLUMNS.items():
        features[name] = {"_type": "Value", "dtype": dtype}
    return features | design.features()


def shard_schema(class_names: Sequence[str], with_image: bool = True,
                 design: DesignColumns = DesignColumns()) -> pa.Schema:
    fields = [pa.field("image", IMAGE_TYPE)] if with_image else []
    fields.append(pa.field("label", pa.int64()))
    fields += [pa.field(name, typ) for name, (typ, _) in METADATA_COLUMNS.items()]
    fields += design.arrow_fields()
    meta = {"info": {"features": hf_features(class_names, with_image, design)}}
    return pa.schema(fields, metadata={"huggingface": json.dumps(meta)})


@dataclass(frozen=True)
class ShardRow:
    """One generated image and what it came from: the sample (with the seed of the draw that was
    kept), its encoded bytes and size, and the filter's score and draw count (None: no filter)."""

    sample: Sample
    image: bytes
    width: int
    height: int
    filter_score: float | None = None
    filter_draws: int | None = None


def image_ext(image_format: str) -> str:
    """The file extension of an image format (its name in the `image` path, a tar member's)."""
    return "jpg" if image_format == "jpeg" else image_format


def shard_table(rows: Sequence[ShardRow], prov: Provenance, class_names: Sequence[str],
                design: DesignColumns = DesignColumns()) -> pa.Table:
    """One Parquet row per image, in the order given; steps and guidance are each sample's own."""
    ext = image_ext(prov.image_format)
    n = len(rows)
    samples = [r.sample for r in rows]
    columns: dict[str, list[Any]] = {
        "image": [{"bytes": r.image, "path": f"{r.sample.sample_id:09d}.{ext}"} for r in rows],
        "label": [s.label for s in samples],
        "label_name": [s.label_name for s in samples],
        "prompt": [s.prompt for s in samples],
        "template": [s.template for s in samples],
        "negative_prompt": [s.negative_prompt for s in samples],
        "sample_id": [s.sample_id for s in samples],
        "split": [s.split for s in samples],
        "seed": [s.seed for s in samples],
        "width": [r.width for r in rows],
        "height": [r.height for r in rows],
        "model": [prov.model] * n,
        "model_revision": [prov.model_revision] * n,
        "scheduler": [prov.scheduler] * n,
        "steps": [s.steps for s in samples],
        "guidance_scale": [s.guidance_scale for s in samples],
        "job_id": [prov.job_id] * n,
        "filter_score": [r.filter_score for r in rows],
        "filter_draws": [r.filter_draws for r in rows],
        **design.values(samples),
    }
    return pa.Table.from_pydict(columns, schema=shard_schema(class_names, design=design))
