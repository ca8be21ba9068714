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

from synthgen.spec.plan import Sample

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
    # init (img2img; null without it): the source image's key, its class in the source, strength
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
    steps: int
    guidance_scale: float
    image_format: str


def hf_features(class_names: Sequence[str], with_image: bool = True) -> dict[str, Any]:
    """The `datasets` Features dict for our columns, in column order."""
    features: dict[str, Any] = {"image": {"_type": "Image"}} if with_image else {}
    features["label"] = (
        {"_type": "ClassLabel", "names": list(class_names)}
        if class_names
        else {"_type": "Value", "dtype": "int64"}
    )
    for name, (_, dtype) in METADATA_COLUMNS.items():
        features[name] = {"_type": "Value", "dtype": dtype}
    return features


def shard_schema(class_names: Sequence[str], with_image: bool = True) -> pa.Schema:
    fields = [pa.field("image", IMAGE_TYPE)] if with_image else []
    fields.append(pa.field("label", pa.int64()))
    fields += [pa.field(name, typ) for name, (typ, _) in METADATA_COLUMNS.items()]
    meta = {"info": {"features": hf_features(class_names, with_image)}}
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


def shard_table(rows: Sequence[ShardRow], prov: Provenance, class_names: Sequence[str]) -> pa.Table:
    """One Parquet row per image, in the order given."""
    ext = "jpg" if prov.image_format == "jpeg" else prov.image_format
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
        "steps": [prov.steps] * n,
        "guidance_scale": [prov.guidance_scale] * n,
        "job_id": [prov.job_id] * n,
        "filter_score": [r.filter_score for r in rows],
        "filter_draws": [r.filter_draws for r in rows],
        "init_id": [s.init_id for s in samples],
        "init_label": [s.init_label for s in samples],
        "strength": [s.strength for s in samples],
    }
    return pa.Table.from_pydict(columns, schema=shard_schema(class_names))
