"""Training data for `synthgen.train`: every source becomes one in-memory tensor in [-1, 1].

The models trained here are small (digits, icons, tiny folders), so holding the whole dataset in
memory keeps the training loop simple, fast on CPU and exactly resumable.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from synthgen.errors import UserError

BUILTIN_DIGITS = "builtin:digits"
# sklearn's load_digits() has 1,797 samples; index >= 1200 is the held-out real test set that
# judges the shipped model, so it must never reach training or model selection.
DIGITS_TRAIN_END = 1200
DIGITS_MAX_VALUE = 16.0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


@dataclass
class LabeledImages:
    """Images as float32 [N, C, H, W] in [-1, 1], int64 labels [N], and the class names."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    description: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_source(
    source: str, image_size: int | None, channels: int | None, limit: int | None = None
) -> LabeledImages:
    """Load `builtin:digits`, a Parquet dataset or an image folder (one sub-folder per class)."""
    if source == BUILTIN_DIGITS:
        data = _load_digits(limit)
        return _resize(data, image_size) if image_size else data
    if source.startswith("builtin:"):
        raise UserError("source", source, f"the only built-in training set is {BUILTIN_DIGITS}")
    path = Path(source).expanduser()
    if not path.exists():
        raise UserError("source", source, "give builtin:digits, an image folder or a Parquet path")
    files = _parquet_files(path)
    pils, labels, names = _read_parquet(files) if files else _read_folder(path)
    if limit is not None:
        pils, labels = pils[:limit], labels[:limit]
    if not pils:
        raise UserError("source", source, "it holds no images")
    return _from_pils(pils, labels, names, image_size, channels, description=str(path))


def _load_digits(limit: int | None) -> LabeledImages:
    """sklearn digits with index < 1200 (0..16 ink levels mapped to [-1, 1], kept unquantized)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    end = DIGITS_TRAIN_END if limit is None else min(limit, DIGITS_TRAIN_END)
    images = torch.from_numpy(digits.images[:end]).float().unsqueeze(1)
    return LabeledImages(
        images=images / DIGITS_MAX_VALUE * 2 - 1,
        labels=torch.from_numpy(digits.target[:end]).long(),
        class_names=[str(n) for n in digits.target_names],
        description=f"sklearn load_digits index < {end}",
    )


def _resize(data: LabeledImages, size: int) -> LabeledImages:
    if data.images.shape[-1] == size:
        return data
    images = F.interpolate(data.images, size=(size, size), mode="bilinear", antialias=True)
    data.images = images.clamp(-1, 1)
    return data


def _parquet_files(path: Path) -> list[Path]:
    """A single file, `DIR/data/*.parquet` (synthgen's layout) or `DIR/*.parquet`."""
    if path.is_file():
        return [path] if path.suffix == ".parquet" else []
    for folder in (path / "data", path):
        files = sorted(folder.glob("*.parquet"))
        if files:
            return [f for f in files if f.name != "index.parquet"]
    return []


def _read_parquet(files: list[Path]) -> tuple[list[Image.Image], list[int], list[str]]:
    """Read `image` + `label` columns; class names come from the Hugging Face features metadata.

    Duplicate `sample_id`s (a losing retry's file not yet cleaned up) are read once.
    """
    import pyarrow.parquet as pq

    pils: list[Image.Image] = []
    labels: list[int] = []
    seen: set[int] = set()
    names: list[str] | None = None
    for file in files:
        table = pq.ParquetFile(file).read()
        names = names or _class_names(table.schema.metadata or {})
        columns = ["image", "label"] + (["sample_id"] if "sample_id" in table.column_names else [])
        for row in table.select(columns).to_pylist():
            if row.get("sample_id") is not None:
                if row["sample_id"] in seen:
                    continue
                seen.add(row["sample_id"])
            pils.append(_decode(row["image"], file))
            labels.append(int(row["label"]))
    if names is None:
        names = [str(i) for i in range(max(labels, default=-1) + 1)]
    return pils, labels, names


def _class_names(metadata: dict[bytes, bytes]) -> list[str] | None:
    raw = metadata.get(b"huggingface")
    if not raw:
        return None
    label = json.loads(raw).get("info", {}).get("features", {}).get("label", {})
    return list(label["names"]) if label.get("names") else None


def _decode(image: dict | None, file: Path) -> Image.Image:
    if image and image.get("bytes"):
        return Image.open(io.BytesIO(image["bytes"]))
    if image and image.get("path"):
        return Image.open(file.parent / image["path"])
    raise UserError("source", str(file), "every row needs image bytes or an image path")


def _read_folder(path: Path) -> tuple[list[Image.Image], list[int], list[str]]:
    """An ImageFolder: class names are the sorted sub-folder names."""
    names = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise UserError("source", str(path), "an image folder needs one sub-folder per class")
    pils: list[Image.Image] = []
    labels: list[int] = []
    for label, name in enumerate(names):
        for file in sorted((path / name).rglob("*")):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                pils.append(Image.open(file))
                labels.append(label)
    return pils, labels, names


def _from_pils(
    pils: list[Image.Image],
    labels: list[int],
    names: list[str],
    image_size: int | None,
    channels: int | None,
    description: str,
) -> LabeledImages:
    """Convert to one channel when every image is grayscale (or when asked), else RGB."""
    if channels is None:
        channels = 1 if all(p.mode in GRAY_MODES for p in pils) else 3
    size = image_size or pils[0].size[0]
    mode = "L" if channels == 1 else "RGB"
    arrays = [_to_array(p, mode, size) for p in pils]
    images = torch.from_numpy(np.stack(arrays)).float() / 127.5 - 1
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    bad = [x for x in labels if not 0 <= x < len(names)]
    if bad:
        raise UserError("source", description, f"label {bad[0]} is outside the {len(names)} names")
    return LabeledImages(images.contiguous(), torch.tensor(labels), names, description)


def _to_array(image: Image.Image, mode: str, size: int) -> np.ndarray:
    image = image.convert(mode)
    if image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    return np.asarray(image, dtype=np.uint8)
