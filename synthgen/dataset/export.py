"""Export an output as an ImageFolder tree or WebDataset tar shards, then check the counts.

Images are copied as stored (no decode, no re-encode). The source may be any fsspec URL; so
may the destination. Rows come from the committed shards only (their commit markers).
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from synthgen.dataset.catalog import Catalog
from synthgen.dataset.class_folders import CLASSES_FILE, NamingStyle, class_folders, classes_json
from synthgen.dataset.formats.tar import TarSample, sample_spans, tar_bytes
from synthgen.dataset.readers import READABLE_COLUMNS, iter_rows
from synthgen.dataset.shard_schema import DesignColumns
from synthgen.errors import UserError
from synthgen.storage.marker import CommitMarker
from synthgen.storage.store import Store
from synthgen.storage.writable import check_writable

FORMATS = ("imagefolder", "webdataset")
THREADS = 4


@dataclass(frozen=True)
class Exported:
    """What was written: images per class folder (imagefolder) or per tar (webdataset)."""

    format: str
    dest: str
    counts: dict[str, int]
    missing: list[int] = field(default_factory=list)  # shards not committed (--partial only)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class ExportOptions:
    """`names`: ImageFolder folders `00_zero` (sorting in label order) or the plain class names;
    `split`: one of the job's output.splits (default: every committed sample)."""

    names: NamingStyle = "prefixed"
    split: str | None = None
    partial: bool = False  # an unfinished job is refused unless asked (`missing` names the rest)
    storage_options: dict[str, Any] = field(default_factory=dict)  # the source's
    dest_options: dict[str, Any] = field(default_factory=dict)


def export(uri: str, fmt: str, dest: str, options: ExportOptions | None = None) -> Exported:
    """Write every committed sample of `uri` to `dest` in `fmt`; raise if the counts disagree."""
    options = options or ExportOptions()
    if fmt not in FORMATS:
        raise UserError("--format", fmt, f"choose one of {', '.join(FORMATS)}")
    catalog = Catalog.open(uri, options.storage_options)
    shards = catalog.split_shards(options.split)
    target = Store(dest, dict(options.dest_options))
    _check_empty(target)
    check_writable(target, "--output")
    missing = catalog.require_complete(options.partial)
    write: Callable[[CommitMarker], Counter[str]]
    if fmt == "imagefolder":
        folders = folder_names(catalog, options.names)
        for folder in set(folders.values()):
            target.fs.makedirs(target.path(folder), exist_ok=True)
        write, check = partial(_imagefolder_shard, catalog, target, folders), _count_imagefolder
    else:
        target.fs.makedirs(target.root, exist_ok=True)
        write, check = partial(_webdataset_shard, catalog, target), _count_webdataset
    with ThreadPoolExecutor(THREADS, thread_name_prefix="export") as pool:
        written = sum(pool.map(write, shards), Counter())
    rows = sum(m.rows for m in shards)
    found = check(target, set(written))
    if found != dict(written) or sum(found.values()) != rows:
        raise RuntimeError(f"export to {dest} is incomplete: expected {dict(written)} "
                           f"({rows} images), found {found}")
    if fmt == "imagefolder":
        target.put_json(CLASSES_FILE, classes_json(catalog.class_names))
    return Exported(fmt, dest, dict(sorted(found.items())), missing)


def folder_names(catalog: Catalog, names: NamingStyle = "prefixed") -> dict[int, str]:
    """label -> folder (dataset/class_folders.py); unlabeled rows in `unlabeled`."""
    unlabeled = any(e.label < 0 for e in catalog.plan.manifest.entries)
    return class_folders(catalog.class_names, unlabeled, names)


def _check_empty(target: Store) -> None:
    if target.fs.exists(target.root) and target.fs.ls(target.root, detail=False):
        raise UserError("--output", target.uri, "is not empty; give a new or empty folder")


def _file_name(row: dict[str, Any]) -> str:
    ext = posixpath.splitext(row["image"]["path"] or "")[1] or ".png"
    return f"{row['sample_id']:09d}{ext}"


def _imagefolder_shard(catalog: Catalog, target: Store, folders: dict[int, str],
                       shard: CommitMarker) -> Counter[str]:
    counts: Counter[str] = Counter()
    for row in iter_rows(catalog.store, shard, ["image", "label", "sample_id"]):
        folder = folders[row["label"]]
        target.fs.pipe_file(target.path(f"{folder}/{_file_name(row)}"), row["image"]["bytes"])
        counts[folder] += 1
    return counts


def _webdataset_shard(catalog: Catalog, target: Store, shard: CommitMarker) -> Counter[str]:
    """One tar per shard, as the webdataset output format writes them (formats/tar.py)."""
    name = f"shard-{shard.shard:05d}.tar"
    columns = (*READABLE_COLUMNS, *DesignColumns.of(catalog.plan).names)
    samples = [TarSample.from_row(row) for row in iter_rows(catalog.store, shard, columns)]
    target.fs.pipe_file(target.path(name), tar_bytes(samples))
    return Counter({name: len(samples)})


def _count_imagefolder(target: Store, folders: set[str]) -> dict[str, int]:
    return {folder: len(target.fs.ls(target.path(folder), detail=False, refresh=True))
            for folder in folders}


def _count_webdataset(target: Store, tars: set[str]) -> dict[str, int]:
    """Samples (distinct keys) per tar, read back from the destination."""
    counts = {}
    for name in tars:
        with target.fs.open(target.path(name), "rb") as f:
            counts[name] = len(sample_spans(f))
    return counts
