"""A labeled source by key: its listing (for the plan) and its images by key (for the workers).

The keyed half of the one reader of labeled sources (labeled_sources.py, whose helpers it
uses). The source is the user's, read only: nothing is ever written to it, and every key (read
from a listing, or from job.json on a resume) is confined under it (storage/layout.py). A key
names one image: an image folder's relative path (`cat/001.png`), a Parquet file and row
(`data/part-0.parquet#17`, the file relative to the source), or `load_digits#17` for the
built-in digits (training split only). The listing reads no image content: file listings with
sizes and ETags or mtimes, Parquet label columns, an image folder's image headers (so a corrupt
file is named before any model loads), and a content hash of the built-in digits.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from PIL import Image, ImageOps, UnidentifiedImageError

from synthgen.errors import UserError
from synthgen.inputs.labeled_sources import (
    BUILTIN_DIGITS,
    cell_bytes,
    class_folders,
    folder_images,
    labeled_rows,
    parquet_class_names,
    parquet_columns,
    parquet_files,
    source_kind,
)
from synthgen.output.catalog import Catalog
from synthgen.output.readers import load_image
from synthgen.spec.init_manifest import InitListing, init_manifest
from synthgen.spec.job_spec import InitSpec, JobSpec
from synthgen.spec.manifest import Manifest, resolve_manifest
from synthgen.storage.filesystem import IMAGE_CAP, read_capped
from synthgen.storage.layout import confine, relative_to

FIELD = "init.source"
DIGITS_KEY = "load_digits#"


def list_labeled(source: str, options: dict[str, Any]) -> InitListing:
    """Every labeled image of the source by class, with the source's fingerprint."""
    if source.startswith("builtin:"):
        if source not in (BUILTIN_DIGITS, f"{BUILTIN_DIGITS}:train"):
            raise UserError(FIELD, source, f"write {BUILTIN_DIGITS} (its training split, index < 1200)")
        return _digits_listing(source)
    fs, root, kind = source_kind(source, options, FIELD)
    if kind == "image-folder":
        return _folder_listing(fs, root, source)
    if kind == "parquet":
        files = parquet_files(fs, root)
        base = root if fs.isdir(root) else posixpath.dirname(root)
        return _parquet_listing(fs, base, files, source, [_stamp(fs.info(f)) for f in files])
    catalog = Catalog.open(source, options)
    if not catalog.class_names:
        raise UserError(FIELD, source, "its rows have no class labels; give a labeled dataset")
    files = [catalog.store.path(s.file) for s in catalog.split_shards(None)]
    listing = _parquet_listing(fs, root, files, source, [s.sha256 for s in catalog.split_shards(None)])
    return InitListing("synthgen-output", listing.description, catalog.class_names,
                       listing.keys, listing.fingerprint)


def read_keyed(source: str, options: dict[str, Any], keys: Sequence[str]) -> dict[str, bytes]:
    """The encoded images of these keys, read straight from the source (each Parquet file once);
    encoded, so that a shard's worth stays small until a batch decodes its own."""
    wanted = list(dict.fromkeys(keys))
    if source.startswith("builtin:"):
        from synthgen.inputs.labeled_sources import load_digits_split  # scikit-learn: digits only

        digits = load_digits_split("train")
        return {k: _digit_png(digits.images[int(k.removeprefix(DIGITS_KEY))]) for k in wanted}
    fs, root, kind = source_kind(source, options, FIELD)
    if kind == "image-folder":
        return {k: read_capped(fs, posixpath.join(root, confine(k, FIELD)), IMAGE_CAP, FIELD) for k in wanted}
    base = root if fs.isdir(root) else posixpath.dirname(root)
    by_file: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for key in wanted:
        file, _, row = key.rpartition("#")
        by_file[file].append((key, int(row)))
    images: dict[str, bytes] = {}
    for file, rows in by_file.items():
        path = posixpath.join(base, confine(file, FIELD))
        _, image_col = parquet_columns(fs, [path], source, FIELD)
        with fs.open(path, "rb") as f:
            cells = pq.ParquetFile(f).read(columns=[image_col]).column(image_col)
        for key, index in rows:
            images[key] = cell_bytes(fs, path, cells[index].as_py(), source)
    return images


def _digits_listing(source: str) -> InitListing:
    from synthgen.inputs.labeled_sources import load_digits_split  # scikit-learn: digits only

    digits = load_digits_split("train")
    keys = tuple(tuple(f"{DIGITS_KEY}{i}" for i in np.flatnonzero(digits.labels == label))
                 for label in range(len(digits.class_names)))
    digest = hashlib.sha256(digits.images.tobytes() + digits.labels.tobytes()).hexdigest()
    return InitListing("builtin", f"{BUILTIN_DIGITS}:train", digits.class_names, keys, digest)


def _digit_png(pixels: np.ndarray) -> bytes:
    """A digit (0..1 ink) as the 8-bit gray PNG an image folder of digits would hold."""
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255).round().astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _folder_listing(fs: Any, root: str, source: str) -> InitListing:
    folders = class_folders(fs, root, source, FIELD)
    keys, stamps = [], []
    for folder in folders:
        paths = folder_images(fs, folder)
        for path in paths:
            _check_header(fs, path, source)
        names = tuple(relative_to(root, p, FIELD) for p in paths)
        keys.append(names)
        stamps += [[name, _stamp(fs.info(p))] for name, p in zip(names, paths, strict=True)]
    return InitListing("image-folder", source, tuple(p.rsplit("/", 1)[-1] for p in folders),
                       tuple(keys), _digest(stamps))


def _parquet_listing(fs: Any, base: str, files: list[str], source: str, stamps: list[Any]) -> InitListing:
    """Keys `file#row` of every labeled row; rows repeating a sample_id (a losing retry's
    leftover file in a synthgen output's data/) are left out."""
    schema, _ = parquet_columns(fs, files, source, FIELD)
    names = parquet_class_names(fs, files, schema)
    keys: list[list[str]] = [[] for _ in names]
    relative = {file: relative_to(base, file, FIELD) for file in files}
    for file, index, row in labeled_rows(fs, files, []):
        if row["label"] < len(names):
            keys[row["label"]].append(f"{relative[file]}#{index}")
    listed = [[relative_to(base, f, FIELD), s] for f, s in zip(files, stamps, strict=True)]
    return InitListing("parquet", source, names, tuple(tuple(k) for k in keys), _digest(listed))


def _stamp(info: dict[str, Any]) -> list[Any]:
    """What identifies a file's content without reading it: size, and ETag else mtime."""
    version = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified")
    return [info.get("size"), str(version)]


def _digest(listing: list[Any]) -> str:
    return hashlib.sha256(json.dumps(listing, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _check_header(fs: Any, path: str, source: str) -> None:
    """Open the image's header only: a file that is not an image is named now, not on a worker."""
    try:
        with fs.open(path, "rb") as f:
            Image.open(f).size  # noqa: B018 - reading the header is the check
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise UserError(FIELD, path, f"not a readable image ({type(exc).__name__}); "
                                     "replace or remove the file") from None


# A job's manifest: its class or prompt manifest, or, with `init`, its source's listing.
def job_manifest(spec: JobSpec) -> Manifest:
    """Read once on the driver and stored in job.json, so a resume never lists the source again."""
    if spec.init is None:
        return resolve_manifest(spec)
    return init_manifest(spec, list_labeled(spec.init.source, spec.init.storage_options))


# Init images brought to the model's size and channels: center-crop, pad or stretch.
#
# The result is what a model's encoder takes: float32 (N, C, H, W) in [-1, 1], the pixel scaling
# diffusers' image processors use (x / 255 * 2 - 1).
RESAMPLE = Image.Resampling.BICUBIC


def fit(image: Image.Image, size: tuple[int, int], resize: str) -> Image.Image:
    """The image at (width, height): cropped to the aspect ratio and scaled, scaled into it with
    black borders, or scaled to it ignoring the aspect ratio."""
    if image.size == size:
        return image
    if resize == "center-crop":
        return ImageOps.fit(image, size, RESAMPLE)
    if resize == "pad":
        return ImageOps.pad(image, size, RESAMPLE, color=0)
    return image.resize(size, RESAMPLE)


def init_pixels(images: Sequence[Image.Image], size: tuple[int, int], channels: int,
                resize: str) -> np.ndarray:
    """Images -> float32 (N, C, H, W) in [-1, 1]: gray for one channel, else RGB."""
    mode = "L" if channels == 1 else "RGB"
    arrays = [np.asarray(fit(im.convert(mode), size, resize), dtype=np.float32) for im in images]
    batch = np.stack([a[..., None] if a.ndim == 2 else a for a in arrays]).transpose(0, 3, 1, 2)
    return batch / 127.5 - 1.0


def decode_init_pixels(init: InitSpec, encoded: Sequence[tuple[str, bytes]], size: tuple[int, int],
                       channels: int) -> np.ndarray:
    """(key, encoded image) pairs -> the model's input; a file that cannot be decoded is named."""
    images = []
    for key, data in encoded:
        try:
            images.append(load_image(data))
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise ValueError(f"init image {key} of {init.source} cannot be decoded: {exc}") from None
    return init_pixels(images, size, channels, init.resize)


def read_init_images(init: InitSpec | None, keys: Sequence[str | None]) -> dict[str, bytes]:
    """A shard's init images, encoded, read from the source by key (never via the driver);
    none for a job without init."""
    if init is None:
        return {}
    return read_keyed(init.source, init.storage_options, [k for k in keys if k is not None])
