"""Export an output as an ImageFolder tree or WebDataset tar shards, then check the counts.

Images are copied as stored (no decode, no re-encode). The source may be any fsspec URL; so
may the destination. Rows come from the committed shards only (their commit markers).
"""

from __future__ import annotations

import io
import json
import posixpath
import re
import tarfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from synthgen.dataset.catalog import Catalog
from synthgen.dataset.readers import READABLE_COLUMNS, iter_rows
from synthgen.errors import UserError
from synthgen.storage.marker import CommitMarker
from synthgen.storage.paths import confine
from synthgen.storage.store import Store

FORMATS = ("imagefolder", "webdataset")
UNLABELED = "unlabeled"
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


def export(uri: str, fmt: str, dest: str, storage_options: dict[str, Any] | None = None,
           dest_options: dict[str, Any] | None = None, allow_partial: bool = False) -> Exported:
    """Write every committed sample of `uri` to `dest` in `fmt`; raise if the counts disagree.
    An unfinished job is refused unless `allow_partial` (`missing` names the shards left out)."""
    if fmt not in FORMATS:
        raise UserError("--format", fmt, f"choose one of {', '.join(FORMATS)}")
    catalog = Catalog.open(uri, storage_options)
    missing = catalog.require_complete(allow_partial)
    target = Store(dest, dict(dest_options or {}))
    _check_empty(target)
    write: Callable[[CommitMarker], Counter[str]]
    if fmt == "imagefolder":
        folders = folder_names(catalog)
        for folder in set(folders.values()):
            target.fs.makedirs(target.path(folder), exist_ok=True)
        write, check = partial(_imagefolder_shard, catalog, target, folders), _count_imagefolder
    else:
        target.fs.makedirs(target.root, exist_ok=True)
        write, check = partial(_webdataset_shard, catalog, target), _count_webdataset
    with ThreadPoolExecutor(THREADS, thread_name_prefix="export") as pool:
        written = sum(pool.map(write, catalog.shards), Counter())
    found = check(target, set(written))
    if found != dict(written) or sum(found.values()) != catalog.rows:
        raise RuntimeError(f"export to {dest} is incomplete: expected {dict(written)} "
                           f"({catalog.rows} images), found {found}")
    return Exported(fmt, dest, dict(sorted(found.items())), missing)


def folder_names(catalog: Catalog) -> dict[int, str]:
    """label -> folder: the class name made safe as a file name; unlabeled rows in `unlabeled`."""
    folders = {i: _safe(name, i) for i, name in enumerate(catalog.class_names)}
    if any(e.label < 0 for e in catalog.plan.manifest.entries):
        folders[-1] = UNLABELED
    seen: dict[str, int] = {}
    for label, folder in folders.items():
        if folder in seen:
            raise UserError("class name", folder, f"labels {seen[folder]} and {label} would share "
                            "one folder; rename one class")
        seen[folder] = label
    return folders


def _safe(name: str, label: int) -> str:
    text = re.sub(r"[/\\\x00]", "_", name).strip()
    return confine(text, "class name") if text not in ("", ".", "..") else f"class-{label}"


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
    """One tar per shard: `<sample_id>.<ext>`, `.json` (every column) and `.cls` when labeled."""
    name = f"shard-{shard.shard:05d}.tar"
    buf = io.BytesIO()
    rows = 0
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for row in iter_rows(catalog.store, shard, READABLE_COLUMNS):
            key = f"{row['sample_id']:09d}"
            meta = {k: v for k, v in row.items() if k != "image"}
            _add(tar, _file_name(row), row["image"]["bytes"])
            _add(tar, f"{key}.json", json.dumps(meta, sort_keys=True).encode())
            if row["label"] >= 0:
                _add(tar, f"{key}.cls", str(row["label"]).encode())
            rows += 1
    target.fs.pipe_file(target.path(name), buf.getvalue())
    return Counter({name: rows})


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o644
    tar.addfile(info, io.BytesIO(data))


def _count_imagefolder(target: Store, folders: set[str]) -> dict[str, int]:
    return {folder: len(target.fs.ls(target.path(folder), detail=False, refresh=True))
            for folder in folders}


def _count_webdataset(target: Store, tars: set[str]) -> dict[str, int]:
    """Samples (distinct keys) per tar, read back from the destination."""
    counts = {}
    for name in tars:
        with target.fs.open(target.path(name), "rb") as f, tarfile.open(fileobj=f) as tar:
            counts[name] = len({member.name.split(".", 1)[0] for member in tar})
    return counts
