"""Export an output as an ImageFolder tree or WebDataset tar shards, then check the counts.

Images are copied as stored (no decode, no re-encode). The source may be any fsspec URL; so
may the destination. Rows come from the committed shards only (their commit markers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import re
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from synthgen.errors import UserError
from synthgen.output.catalog import Catalog
from synthgen.output.formats.webdataset import TarSample, sample_spans, tar_bytes
from synthgen.output.readers import READABLE_COLUMNS, iter_rows
from synthgen.output.shard_schema import DesignColumns
from synthgen.storage.commit import CommitMarker
from synthgen.storage.layout import confine, temp_name
from synthgen.storage.store import Store, check_writable

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
    """Write every committed sample of `uri` to `dest` in `fmt`; raise if the counts disagree.

    Every name the layout needs is checked before anything is written, and the files go to a
    staging folder beside `dest` that is renamed to it at the end: a failure half way leaves
    nothing behind, and a `dest` that holds anything is refused, never touched."""
    options = options or ExportOptions()
    if fmt not in FORMATS:
        raise UserError("--format", fmt, f"choose one of {', '.join(FORMATS)}")
    catalog = Catalog.open(uri, options.storage_options)
    shards = catalog.split_shards(options.split)
    folders = folder_names(catalog, options.names) if fmt == "imagefolder" else None
    target = Store(dest, dict(options.dest_options))
    _check_empty(target)
    check_writable(target, "--output")
    missing = catalog.require_complete(options.partial)
    staging = Store(_staging_uri(target), dict(options.dest_options))
    try:
        found = _write(catalog, shards, staging, folders)
        _publish(staging, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            staging.fs.rm(staging.root, recursive=True)
        raise
    return Exported(fmt, dest, dict(sorted(found.items())), missing)


def _write(catalog: Catalog, shards: Sequence[CommitMarker], target: Store,
           folders: dict[int, str] | None) -> dict[str, int]:
    """Write the shards (ImageFolder when `folders` is given, else WebDataset) and count them
    back from `target`."""
    write: Callable[[CommitMarker], Counter[str]]
    check: Callable[[Store, set[str]], dict[str, int]]  # destination names -> samples there
    target.fs.makedirs(target.root, exist_ok=True)
    if folders is not None:
        for folder in set(folders.values()):
            target.fs.makedirs(target.path(folder), exist_ok=True)
        write, check = partial(_imagefolder_shard, catalog, target, folders), _count_imagefolder
    else:
        write, check = partial(_webdataset_shard, catalog, target), _count_webdataset
    with ThreadPoolExecutor(THREADS, thread_name_prefix="export") as pool:
        written = sum(pool.map(write, shards), Counter())
    rows = sum(m.rows for m in shards)
    found = check(target, set(written))
    if found != dict(written) or sum(found.values()) != rows:
        raise RuntimeError(f"export to {target.uri} is incomplete: expected {dict(written)} "
                           f"({rows} images), found {found}")
    if folders is not None:
        target.put_json(CLASSES_FILE, classes_json(catalog.class_names))
    return found


def _staging_uri(target: Store) -> str:
    """A hidden folder beside the target (same filesystem: the rename is one step on disk)."""
    parent, name = posixpath.split(target.uri.rstrip("/"))
    return posixpath.join(parent, temp_name(name or "export"))


def _publish(staging: Store, target: Store) -> None:
    """The staging folder becomes the target: one rename on local disk (over an empty target
    folder, as rename(2) allows); a copy under the target prefix on object stores."""
    if staging.local:
        os.replace(staging.root, target.root)
    else:
        staging.fs.mv(staging.root, target.root, recursive=True)


def folder_names(catalog: Catalog, names: NamingStyle = "prefixed") -> dict[int, str]:
    """label -> folder (output/export.py); unlabeled rows in `unlabeled`."""
    unlabeled = any(e.label < 0 for e in catalog.plan.manifest.entries)
    return class_folders(catalog.class_names, unlabeled, names)


def _check_empty(target: Store) -> None:
    """An existing target is accepted only empty (and only replaced by the staging folder)."""
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


# ImageFolder class folders whose sorted order is synthgen's label order, and their classes.json.
#
# Hugging Face `imagefolder` and torchvision's `ImageFolder` number classes by sorting the folder
# names. Plain class names sort their own way (`one` before `zero`), which would renumber every
# label; a zero-padded id prefix (`00_zero`, `01_one`) makes the sorted order the label order, so
# both readers give synthgen's ids. `classes.json` (id -> name) says the mapping either way.
NamingStyle = Literal["prefixed", "plain"]
NAMING_STYLES: tuple[NamingStyle, ...] = ("prefixed", "plain")
UNLABELED = "unlabeled"  # sorts after every prefixed folder, so it takes the next id
CLASSES_FILE = "classes.json"
NAME_MAX = 255  # bytes in one path component (ext4, xfs, btrfs, APFS, NTFS in UTF-16 units)

log = logging.getLogger("synthgen")


def class_folders(class_names: tuple[str, ...], unlabeled: bool,
                  style: NamingStyle = "prefixed") -> dict[int, str]:
    """label -> folder name; unlabeled rows (label -1) go to `unlabeled` when there are any."""
    if style not in NAMING_STYLES:
        raise UserError("--names", style, f"choose one of {', '.join(NAMING_STYLES)}")
    width = max(2, len(str(len(class_names) - 1)))
    folders = {i: _safe(name, i) if style == "plain" else f"{i:0{width}d}_{_safe(name, i)}"
               for i, name in enumerate(class_names)}
    if unlabeled:
        folders[-1] = UNLABELED
    seen: dict[str, int] = {}
    for label, folder in folders.items():
        _check_length(folder, class_names[label] if label >= 0 else folder)
        if folder in seen:
            raise UserError("class name", folder, f"labels {seen[folder]} and {label} would share "
                            "one folder; rename one class")
        seen[folder] = label
    if style == "plain":
        _warn_if_renumbered(folders)
    return folders


def classes_json(class_names: tuple[str, ...]) -> dict[str, str]:
    """What classes.json holds: synthgen's label id (as a JSON key) -> class name."""
    return {str(i): name for i, name in enumerate(class_names)}


def _warn_if_renumbered(folders: dict[int, str]) -> None:
    labeled = [folders[label] for label in sorted(folders) if label >= 0]
    order = sorted(labeled)
    moved = [(folder, label, order.index(folder)) for label, folder in enumerate(labeled)
             if order.index(folder) != label]
    if moved:
        folder, label, read_as = moved[0]
        log.warning("with --names plain the folders sort in another order than the labels: "
                    "ImageFolder readers number %d of %d classes differently (e.g. %r, label %d, "
                    "reads as %d); map them back with %s, or export without --names plain",
                    len(moved), len(labeled), folder, label, read_as, CLASSES_FILE)


def _check_length(folder: str, name: str) -> None:
    """A folder name is one path component: at most NAME_MAX bytes on every common filesystem
    (and S3 tools that mirror to disk). Checked for all classes before anything is written."""
    size = len(folder.encode())
    if size > NAME_MAX:
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise UserError("class name", shown, f"makes a folder name of {size} bytes, more than the "
                        f"{NAME_MAX} a file name may hold; shorten the class name (label_name) or "
                        "export --format webdataset, whose keys hold no class name")


def _safe(name: str, label: int) -> str:
    text = re.sub(r"[/\\\x00]", "_", name).strip()
    return confine(text, "class name") if text not in ("", ".", "..") else f"class-{label}"
