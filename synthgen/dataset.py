"""The shard schema, the Hugging Face features that ride in it, and shard/index tables.

The schema metadata carries the `datasets` features under the key `huggingface`, so that
`load_dataset("parquet", ...)` yields `Image` and `ClassLabel` columns with no extra code.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.plan import Sample

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

# column -> (arrow type, Hugging Face Value dtype); `image` and `label` are special.
METADATA_COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "label_name": (pa.string(), "string"),
    "prompt": (pa.string(), "string"),
    "template": (pa.string(), "string"),
    "negative_prompt": (pa.string(), "string"),
    "sample_id": (pa.int64(), "int64"),
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


def shard_table(
    samples: Sequence[Sample],
    images: Sequence[bytes],
    sizes: Sequence[tuple[int, int]],
    prov: Provenance,
    class_names: Sequence[str],
    scores: Sequence[float | None] | None = None,
    draws: Sequence[int | None] | None = None,
) -> pa.Table:
    """One row per image; `sizes` holds (width, height) per image; `scores` and `draws` are
    the filter's, per row (None: the job has no filter)."""
    ext = "jpg" if prov.image_format == "jpeg" else prov.image_format
    n = len(samples)
    columns: dict[str, list[Any]] = {
        "image": [
            {"bytes": b, "path": f"{s.sample_id:09d}.{ext}"}
            for s, b in zip(samples, images, strict=True)
        ],
        "label": [s.label for s in samples],
        "label_name": [s.label_name for s in samples],
        "prompt": [s.prompt for s in samples],
        "template": [s.template for s in samples],
        "negative_prompt": [s.negative_prompt for s in samples],
        "sample_id": [s.sample_id for s in samples],
        "seed": [s.seed for s in samples],
        "width": [w for w, _ in sizes],
        "height": [h for _, h in sizes],
        "model": [prov.model] * n,
        "model_revision": [prov.model_revision] * n,
        "scheduler": [prov.scheduler] * n,
        "steps": [prov.steps] * n,
        "guidance_scale": [prov.guidance_scale] * n,
        "job_id": [prov.job_id] * n,
        "filter_score": list(scores) if scores is not None else [None] * n,
        "filter_draws": list(draws) if draws is not None else [None] * n,
    }
    return pa.Table.from_pydict(columns, schema=shard_schema(class_names))


def table_bytes(table: pa.Table) -> bytes:
    """Parquet bytes, built whole in memory so the upload is one put."""
    sink = io.BytesIO()
    # Images are already compressed: only the metadata columns benefit from zstd.
    pq.write_table(table, sink, compression="zstd", use_dictionary=False,
                   row_group_size=max(1, min(len(table), 1000)))
    return sink.getvalue()


def read_metadata(data: bytes) -> pa.Table:
    """The metadata columns of a shard, without image bytes."""
    return read_parquet(data, ["label", *METADATA_COLUMNS])


def read_parquet(source: bytes | Any, columns: Sequence[str] | None = None) -> pa.Table:
    """A Parquet file from bytes or an open file object.

    `pq.ParquetFile`, not `pq.read_table`: pyarrow's dataset reader over an in-memory or Python
    file leaves a native thread behind that aborts the process at exit (SIGABRT, most runs).
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return pq.ParquetFile(source).read(columns=columns)
