"""Labeled images as small pixel features: what `synthgen eval`, the filter and diversity see.

Sources: the built-in digits split (sklearn `load_digits`: train = index < 1200, test = index
>= 1200), a synthgen output (read through its commit markers, local or any fsspec URL), a Parquet
dataset (a file or a folder of files with `image`/`img` and `label` columns) or an image folder
(one sub-folder per class). Images are turned into features as they are read, so large images
never pile up in memory.

A feature is the image box-downscaled (area average, `adaptive_avg_pool2d`) to a small square,
grayscale or RGB, times a scale. For the digits the space is that of `load_digits` itself: 8x8
gray on its 0..16 scale (load_digits counted ink in 4x4 blocks of 32x32 bitmaps, so an area
average times 16 is the same resampling); the real digits map onto it exactly.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from synthgen.errors import UserError

BUILTIN_DIGITS = "builtin:digits"
DIGITS_TRAIN_END = 1200  # load_digits index < 1200 trains; the rest is the held-out test set
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")

Role = Literal["test", "train", "data"]


@dataclass(frozen=True)
class FeatureSpace:
    """Images -> flat features: box-downscaled to `size`x`size`, gray (1) or RGB (3), times `scale`."""

    size: int
    channels: int
    scale: float = 1.0
    standardize: bool = False  # whether the eval classifiers standardize features first

    def describe(self) -> str:
        color = "grayscale (luma)" if self.channels == 1 else "RGB"
        text = (f"{self.size}x{self.size} {color} pixels, box (area-average) resampled, "
                f"on a 0-{self.scale:g} scale")
        return text + (", standardized for the classifiers" if self.standardize else "")

    def features(self, images: np.ndarray) -> np.ndarray:
        """[N, H, W, C] (or [N, H, W]) uint8 0..255 or float 0..1 images -> [N, D] float32."""
        x = np.asarray(images, dtype=np.float32)
        if np.asarray(images).dtype == np.uint8:
            x = x / 255.0
        if x.ndim == 3:
            x = x[..., None]
        x = _to_channels(x[..., :3] if x.shape[-1] == 4 else x, self.channels)
        return (_box(x, self.size) * self.scale).reshape(len(x), -1)

    def pixels(self, image: Image.Image) -> np.ndarray:
        """A PIL image as uint8 [H, W, C] in this space's channels (PIL converts palette, alpha...)."""
        pixels = np.asarray(image.convert("L" if self.channels == 1 else "RGB"))
        return pixels[..., None] if pixels.ndim == 2 else pixels


DIGITS_SPACE = FeatureSpace(size=8, channels=1, scale=16.0)
GENERIC_SPACE = FeatureSpace(size=16, channels=3, scale=1.0, standardize=True)


def _to_channels(x: np.ndarray, channels: int) -> np.ndarray:
    if x.shape[-1] == channels:
        return x
    if channels == 1:
        return (x * np.array(LUMA, dtype=np.float32)).sum(-1, keepdims=True)
    return np.broadcast_to(x, (*x.shape[:-1], 3))


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Area-average NHWC images to size x size: block means when the size divides, else torch's
    adaptive average pooling (the same thing with fractional blocks)."""
    n, h, w, c = x.shape
    if h % size == 0 and w % size == 0:
        return x.reshape(n, size, h // size, size, w // size, c).mean(axis=(2, 4))
    import torch  # only here: the driver reads this module and must not pay for torch
    import torch.nn.functional as F

    pooled = F.adaptive_avg_pool2d(torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2), size)
    return pooled.permute(0, 2, 3, 1).numpy()


def space_for(real: str) -> FeatureSpace:
    """The digits' own space for the built-in digits, else 16x16 RGB standardized."""
    return DIGITS_SPACE if real.startswith(BUILTIN_DIGITS) else GENERIC_SPACE


@dataclass
class Labeled:
    """Features [N, D], labels [N] indexing `class_names`, and where they came from."""

    features: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def counts(self) -> dict[str, int]:
        found = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, found, strict=True)}

    def relabel(self, real: Labeled) -> Labeled:
        """The same rows with labels indexing `real`'s class names (matched by name)."""
        names = real.class_names
        used = {self.class_names[i] for i in np.unique(self.labels)}
        missing = [n for n in self.class_names if n in used and n not in names]
        if missing:
            raise UserError("--real", real.source, f"the real data has no class {missing[0]!r}, which "
                                                   f"{self.source} holds; give real data of the same classes")
        lookup = np.array([names.index(n) if n in names else -1 for n in self.class_names], dtype=np.int64)
        return Labeled(self.features, lookup[self.labels], names, self.source)


def real_train_source(real: str) -> str | None:
    """The real training set that pairs with a test source by default (digits only)."""
    return f"{BUILTIN_DIGITS}:train" if real.startswith(BUILTIN_DIGITS) else None


def load_labeled(source: str, space: FeatureSpace, role: Role = "data", max_per_class: int | None = None,
                 storage_options: dict[str, Any] | None = None) -> Labeled:
    """Read `source` into features. `builtin:digits` is the test split as `role="test"`, the
    training split as `role="train"`; `builtin:digits:train|test` names a split outright."""
    if source.startswith(BUILTIN_DIGITS):
        return _digits(source, space, role)
    if source.startswith("builtin:"):
        raise UserError("source", source, f"the only built-in labeled data is {BUILTIN_DIGITS}[:train|:test]")
    rows = _rows(source, dict(storage_options or {}))
    return _collect(rows, space, source, max_per_class)


def _digits(source: str, space: FeatureSpace, role: Role) -> Labeled:
    from sklearn.datasets import load_digits

    split = source.removeprefix(BUILTIN_DIGITS).lstrip(":") or ("train" if role == "train" else "test")
    if split not in ("train", "test"):
        raise UserError("source", source, "write builtin:digits, builtin:digits:train or builtin:digits:test")
    digits = load_digits()
    part = slice(0, DIGITS_TRAIN_END) if split == "train" else slice(DIGITS_TRAIN_END, None)
    images = (digits.images[part] / 16.0).astype(np.float32)
    return Labeled(space.features(images), digits.target[part].astype(np.int64),
                   tuple(str(n) for n in digits.target_names), f"{BUILTIN_DIGITS}:{split}")


# --- rows: (PIL image, label index or None) from each kind of source, then class names ---

@dataclass
class Rows:
    class_names: tuple[str, ...]
    items: Iterator[tuple[Image.Image, int]]


def _rows(source: str, storage_options: dict[str, Any]) -> Rows:
    from synthgen.s3 import open_fs

    try:
        fs, root = open_fs(source, storage_options)
        exists = fs.exists(root)
    except (ValueError, ImportError) as exc:
        raise UserError("source", source, f"cannot open it ({exc})") from None
    if not exists:
        raise UserError("source", source, "no such file or folder; give builtin:digits, a synthgen output, "
                                          "a Parquet dataset or an image folder")
    root = root.rstrip("/")
    if fs.isdir(root) and fs.exists(f"{root}/job.json"):
        return _synthgen_rows(source, storage_options)
    files = _parquet_files(fs, root)
    if files:
        return _parquet_rows(fs, files, source)
    if fs.isdir(root):
        return _folder_rows(fs, root, source)
    raise UserError("source", source, "not a Parquet file, a synthgen output or an image folder")


def _synthgen_rows(uri: str, storage_options: dict[str, Any]) -> Rows:
    """A synthgen output through its markers (never a listing of data/); unlabeled rows skipped."""
    from synthgen.readers import Output, decode_image, iter_rows

    output = Output.open(uri, storage_options)
    if not output.class_names:
        raise UserError("URI", uri, "its rows have no class labels; eval needs a labeled dataset")

    def items() -> Iterator[tuple[Image.Image, int]]:
        for shard in output.shards:
            for row in iter_rows(output.store, shard, ["image", "label"]):
                if row["label"] is not None and row["label"] >= 0:
                    yield decode_image(row["image"]), int(row["label"])

    return Rows(output.class_names, items())


def _parquet_files(fs: Any, root: str) -> list[str]:
    """A .parquet file, or the .parquet files of a folder or its data/ folder (no index)."""
    if fs.isfile(root):
        return [root] if root.endswith(".parquet") else []
    for folder in (f"{root}/data", root):
        if fs.isdir(folder):
            found = sorted(p for p in fs.ls(folder, detail=False) if p.endswith(".parquet"))
            found = [p for p in found if not p.endswith("/index.parquet")]
            if found:
                return found
    return []


def _parquet_rows(fs: Any, files: list[str], source: str) -> Rows:
    import pyarrow.parquet as pq

    with fs.open(files[0], "rb") as f:
        schema = pq.read_schema(f)
    image_col = next((c for c in ("image", "img") if c in schema.names), None)
    if image_col is None or "label" not in schema.names:
        raise UserError("source", source, "a Parquet dataset needs an image (or img) and a label column")
    names = _class_names(schema.metadata or {})

    def items() -> Iterator[tuple[Image.Image, int]]:
        for file in files:
            with fs.open(file, "rb") as f:
                for batch in pq.ParquetFile(f).iter_batches(256, columns=[image_col, "label"]):
                    for row in batch.to_pylist():
                        if row["label"] is not None and row["label"] >= 0:
                            yield _decode(row[image_col], source), int(row["label"])

    if names is None:  # no ClassLabel: the label values themselves are the names
        labels = _distinct_labels(fs, files)
        names = tuple(str(i) for i in range(max(labels, default=-1) + 1))
    return Rows(names, items())


def _class_names(metadata: dict[bytes, bytes]) -> tuple[str, ...] | None:
    raw = metadata.get(b"huggingface")
    if not raw:
        return None
    label = json.loads(raw).get("info", {}).get("features", {}).get("label", {})
    return tuple(label["names"]) if label.get("names") else None


def _distinct_labels(fs: Any, files: list[str]) -> list[int]:
    from synthgen.dataset import read_parquet

    found: set[int] = set()
    for file in files:
        with fs.open(file, "rb") as f:
            values = read_parquet(f, ["label"]).column("label").to_pylist()
        found.update(v for v in values if v is not None)
    return sorted(found)


def _decode(cell: Any, source: str) -> Image.Image:
    data = cell.get("bytes") if isinstance(cell, dict) else cell
    if not data:
        raise UserError("source", source, "every row needs its image bytes (paths alone are not read)")
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def _folder_rows(fs: Any, root: str, source: str) -> Rows:
    """An ImageFolder: the sorted sub-folder names are the classes."""
    folders = sorted(p.rstrip("/") for p in fs.ls(root, detail=False) if fs.isdir(p))
    folders = [p for p in folders if not p.rsplit("/", 1)[-1].startswith(".")]
    if not folders:
        raise UserError("source", source, "an image folder needs one sub-folder of images per class")
    names = tuple(p.rsplit("/", 1)[-1] for p in folders)

    def items() -> Iterator[tuple[Image.Image, int]]:
        for label, folder in enumerate(folders):
            for path in sorted(fs.find(folder)):
                if path.lower().endswith(IMAGE_SUFFIXES):
                    with fs.open(path, "rb") as f:
                        image = Image.open(io.BytesIO(f.read()))
                        image.load()
                    yield image, label

    return Rows(names, items())


def _collect(rows: Rows, space: FeatureSpace, source: str, max_per_class: int | None) -> Labeled:
    """Features for every row (or the first `max_per_class` of each class, in reading order),
    computed a batch of same-sized images at a time."""
    features: list[np.ndarray] = []
    batch: list[np.ndarray] = []
    labels: list[int] = []
    taken = np.zeros(len(rows.class_names), dtype=np.int64)
    for image, label in rows.items:
        if not 0 <= label < len(rows.class_names):
            raise UserError("source", source, f"label {label} is outside its {len(rows.class_names)} classes")
        if max_per_class is not None and taken[label] >= max_per_class:
            continue
        taken[label] += 1
        pixels = space.pixels(image)
        if batch and (len(batch) == 256 or pixels.shape != batch[0].shape):
            features.append(space.features(np.stack(batch)))
            batch = []
        batch.append(pixels)
        labels.append(label)
    if not labels:
        raise UserError("source", source, "it holds no labeled images")
    features.append(space.features(np.stack(batch)))
    return Labeled(np.concatenate(features), np.array(labels, dtype=np.int64), rows.class_names, source)
