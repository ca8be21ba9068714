"""The one reader of labeled image sources, shared by eval, the filter's judges and train.

Sources: the built-in digits (inputs/labeled_sources.py: train = index < 1200, test = index
>= 1200), a synthgen output (read through its catalog, never a listing of
data/), a Parquet dataset (a file, or a folder of files or their data/ folder, with `image` or
`img` and `label` columns) or an image folder (one sub-folder per class, sorted names are the
classes); local or at any fsspec URL. Rows stream one image at a time, so large sources never
pile up in memory; unlabeled rows (label null or < 0) are skipped.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from synthgen.errors import UserError
from synthgen.inputs.builtin import BUILTIN_DIGITS
from synthgen.output.catalog import Catalog
from synthgen.output.readers import decode_image, iter_rows, load_image
from synthgen.storage.filesystem import IMAGE_CAP, open_fs, read_capped
from synthgen.storage.layout import DATA_DIR, INDEX_FILE, JOB_FILE, confine

# sklearn's load_digits() has 1,797 samples; index >= 1200 is the held-out real test set that
# judges the shipped model, so it must never reach training or model selection.
DIGITS_TRAIN_END = 1200
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

Split = Literal["train", "test"]


@dataclass
class LabeledSource:
    """A source opened for reading: its class names and its labeled rows, (image, label index)."""

    class_names: tuple[str, ...]
    items: Iterator[tuple[Image.Image, int]]
    description: str


def digits_split(source: str, default: Split) -> Split:
    """The split a `builtin:...` source names: builtin:digits (the default), :train or :test."""
    if not source.startswith(BUILTIN_DIGITS):
        raise UserError("source", source, f"the only built-in labeled data is {BUILTIN_DIGITS}[:train|:test]")
    split = source.removeprefix(BUILTIN_DIGITS).lstrip(":") or default
    if split not in get_args(Split):
        raise UserError("source", source, "write builtin:digits, builtin:digits:train or builtin:digits:test")
    return cast(Split, split)


def open_labeled(source: str, storage_options: dict[str, Any] | None = None,
                 split: str | None = None) -> LabeledSource:
    """A synthgen output (one split of it, or all), a Parquet dataset or an image folder, local or
    at any fsspec URL."""
    options = dict(storage_options or {})
    fs, root, kind = source_kind(source, options)
    if kind == "synthgen-output":
        return _synthgen_output(source, options, split)
    if split is not None:
        raise UserError("split", split, f"{source} is not a synthgen output; only those have splits")
    if kind == "parquet":
        return _parquet_dataset(fs, parquet_files(fs, root), source)
    return _image_folder(fs, root, source)


def source_kind(source: str, options: dict[str, Any], field: str = "source") -> tuple[Any, str, str]:
    """(filesystem, root, kind): a synthgen-output, a parquet dataset or an image-folder."""
    try:
        fs, root = open_fs(source, options)
        exists = fs.exists(root)
    except (ValueError, ImportError) as exc:
        raise UserError(field, source, f"cannot open it ({exc})") from None
    if not exists:
        raise UserError(field, source, "no such file or folder; give builtin:digits, a synthgen output, "
                                       "a Parquet dataset or an image folder")
    root = root.rstrip("/")
    if fs.isdir(root) and fs.exists(f"{root}/{JOB_FILE}"):
        return fs, root, "synthgen-output"
    if parquet_files(fs, root):
        return fs, root, "parquet"
    if fs.isdir(root):
        return fs, root, "image-folder"
    raise UserError(field, source, "not a Parquet file, a synthgen output or an image folder")


def _synthgen_output(uri: str, storage_options: dict[str, Any], split: str | None) -> LabeledSource:
    catalog = Catalog.open(uri, storage_options)
    shards = catalog.split_shards(split)
    if not catalog.class_names:
        raise UserError("source", uri, "its rows have no class labels; give a labeled dataset")

    def items() -> Iterator[tuple[Image.Image, int]]:
        for shard in shards:
            for row in iter_rows(catalog.store, shard, ["image", "label"]):
                if row["label"] is not None and row["label"] >= 0:
                    yield decode_image(row["image"]), int(row["label"])

    return LabeledSource(catalog.class_names, items(), uri)


def parquet_files(fs: Any, root: str) -> list[str]:
    """A .parquet file, or the .parquet files of a folder or its data/ folder (no index)."""
    if fs.isfile(root):
        return [root] if root.endswith(".parquet") else []
    for folder in (f"{root}/{DATA_DIR}", root):
        if fs.isdir(folder):
            found = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".parquet"))
            found = [p for p in found if not p.endswith(f"/{INDEX_FILE}")]
            if found:
                return found
    return []


def _parquet_dataset(fs: Any, files: list[str], source: str) -> LabeledSource:
    schema, image_col = parquet_columns(fs, files, source)
    names = parquet_class_names(fs, files, schema)

    def items() -> Iterator[tuple[Image.Image, int]]:
        for file, _, row in labeled_rows(fs, files, [image_col]):
            yield decode_cell(fs, file, row[image_col], source), int(row["label"])

    return LabeledSource(names, items(), source)


def labeled_rows(fs: Any, files: list[str], columns: list[str]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(file, row index in it, row with `label` and `columns`) of every labeled row, each sample_id
    once: a losing retry's leftover file in a synthgen output's data/ repeats its sample_ids."""
    seen: set[int] = set()
    for file in files:
        with fs.open(file, "rb") as f:
            parquet = pq.ParquetFile(f)
            read = [*columns, "label"] + (["sample_id"] if "sample_id" in parquet.schema_arrow.names else [])
            rows = (row for batch in parquet.iter_batches(256, columns=read) for row in batch.to_pylist())
            for index, row in enumerate(rows):
                sample_id = row.get("sample_id")
                if sample_id is not None:
                    if sample_id in seen:
                        continue
                    seen.add(sample_id)
                if row["label"] is not None and row["label"] >= 0:
                    yield file, index, row


def parquet_columns(fs: Any, files: list[str], source: str, field: str = "source") -> tuple[pa.Schema, str]:
    """The first file's schema and its image column; a dataset without labels is refused."""
    with fs.open(files[0], "rb") as f:
        schema = pq.read_schema(f)
    image_col = next((c for c in ("image", "img") if c in schema.names), None)
    if image_col is None or "label" not in schema.names:
        raise UserError(field, source, "a Parquet dataset needs an image (or img) and a label column")
    return schema, image_col


def parquet_class_names(fs: Any, files: list[str], schema: pa.Schema) -> tuple[str, ...]:
    """The ClassLabel names the schema carries, else the label values "0".."max"."""
    return _class_names(schema.metadata or {}) or _label_values(fs, files)


def _class_names(metadata: dict[bytes, bytes]) -> tuple[str, ...] | None:
    """The ClassLabel names of the Hugging Face features in a Parquet schema, if any."""
    raw = metadata.get(b"huggingface")
    if not raw:
        return None
    label = json.loads(raw).get("info", {}).get("features", {}).get("label", {})
    return tuple(label["names"]) if label.get("names") else None


def _label_values(fs: Any, files: list[str]) -> tuple[str, ...]:
    """No ClassLabel: the label values themselves are the names, "0".."max"."""
    found: set[int] = set()
    for file in files:
        with fs.open(file, "rb") as f:
            values = pq.ParquetFile(f).read(columns=["label"]).column("label").to_pylist()
        found.update(v for v in values if v is not None)
    return tuple(str(i) for i in range(max(found, default=-1) + 1))


def decode_cell(fs: Any, file: str, cell: Any, source: str) -> Image.Image:
    return load_image(cell_bytes(fs, file, cell, source))


def cell_bytes(fs: Any, file: str, cell: Any, source: str) -> bytes:
    """An image cell's encoded image: its bytes, or else its path relative to the Parquet file's
    folder (confined there: a cell is data)."""
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not data and isinstance(cell, dict) and cell.get("path"):
        data = read_capped(fs, posixpath.join(posixpath.dirname(file), confine(cell["path"], "source")),
                           IMAGE_CAP, "source")
    if not data:
        raise UserError("source", source, "every row needs its image bytes or an image path")
    return data


def _image_folder(fs: Any, root: str, source: str) -> LabeledSource:
    folders = class_folders(fs, root, source)

    def items() -> Iterator[tuple[Image.Image, int]]:
        for label, folder in enumerate(folders):
            for path in folder_images(fs, folder):
                yield load_image(read_capped(fs, path, IMAGE_CAP, "source")), label

    return LabeledSource(tuple(p.rsplit("/", 1)[-1] for p in folders), items(), source)


def class_folders(fs: Any, root: str, source: str, field: str = "source") -> list[str]:
    """An ImageFolder's class folders: the sorted sub-folder names are the classes."""
    folders = sorted(p.rstrip("/") for p in fs.ls(root, detail=False) if fs.isdir(p))
    folders = [p for p in folders if not p.rsplit("/", 1)[-1].startswith(".")]
    if not folders:
        raise UserError(field, source, "an image folder needs one sub-folder of images per class "
                                       "(the folder names are the labels)")
    return folders


def folder_images(fs: Any, folder: str) -> list[str]:
    """A class folder's image files, at any depth, sorted."""
    return sorted(p for p in fs.find(folder) if p.lower().endswith(IMAGE_SUFFIXES))


# The built-in digits: scikit-learn's `load_digits`, split once for everyone.
#
# Train is index < 1200, test (held out, it judges the shipped model) is index >= 1200; images stay
# unquantized arrays of load_digits' 0..16 ink levels divided by 16.
DIGITS_MAX_VALUE = 16.0


@dataclass(frozen=True)
class DigitsSplit:
    """A split of the built-in digits: images float32 [N, 8, 8] in 0..1 (load_digits' 0..16 ink
    levels divided by 16, not quantized), int64 labels, the class names "0".."9"."""

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str


def load_digits_split(split: Split, limit: int | None = None) -> DigitsSplit:
    """The built-in digits' train (index < 1200, or its first `limit`) or test split."""
    from sklearn.datasets import load_digits  # sklearn: slow to import, only when the digits are read

    digits = load_digits()
    end = DIGITS_TRAIN_END if limit is None else min(limit, DIGITS_TRAIN_END)
    part = slice(0, end) if split == "train" else slice(DIGITS_TRAIN_END, None)
    return DigitsSplit((digits.images[part] / DIGITS_MAX_VALUE).astype(np.float32),
                       digits.target[part].astype(np.int64),
                       tuple(str(n) for n in digits.target_names), f"{BUILTIN_DIGITS}:{split}")
