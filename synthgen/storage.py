"""The output store: fsspec paths under one root, whole-object puts and create-only markers.

Every actor builds its own `Store` from (uri, storage_options): a filesystem is never pickled
from the driver, so credentials and connections stay local to the process that uses them.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

JOB_FILE = "job.json"
SUCCESS_FILE = "_SUCCESS"
INDEX_FILE = "index.parquet"
CARD_FILE = "README.md"
COMMITS_DIR = "_commits"
FAILED_DIR = "_failed"
DATA_DIR = "data"


def marker_path(shard_index: int) -> str:
    return f"{COMMITS_DIR}/shard-{shard_index:05d}.json"


def failure_path(shard_index: int) -> str:
    return f"{FAILED_DIR}/shard-{shard_index:05d}.json"


def data_path(shard_index: int, attempt: str) -> str:
    return f"{DATA_DIR}/shard-{shard_index:05d}-{attempt}.parquet"


@dataclass
class Store:
    """A root folder in any fsspec filesystem, addressed by relative paths."""

    uri: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fs, root = fsspec.core.url_to_fs(self.uri, **self.storage_options)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def url(self, rel: str) -> str:
        """A URL for `rel` that other tools (datasets, DuckDB, Ray Data) can open."""
        return self.fs.unstrip_protocol(self.path(rel)) if not self.local else self.path(rel)

    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_bytes(rel))

    def put_bytes(self, rel: str, data: bytes) -> None:
        """Publish a whole object in one call; on local disk via a temp file and a rename."""
        if self.local:
            self._local_write(rel, data, exclusive=False)
        else:
            self.fs.pipe_file(self.path(rel), data)

    def put_json(self, rel: str, value: Any) -> None:
        self.put_bytes(rel, json_bytes(value))

    def create_only(self, rel: str, data: bytes) -> bool:
        """Write `rel` only if it does not exist yet; False when another writer was first."""
        if self.local:
            return self._local_write(rel, data, exclusive=True)
        try:
            self.fs.pipe_file(self.path(rel), data, mode="create")
        except FileExistsError:
            return False
        return True

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(rel))

    def list(self, rel: str) -> list[str]:
        """Names (not paths) of the files directly under `rel`; empty if it does not exist."""
        try:
            entries = self.fs.ls(self.path(rel), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries)

    def read_many_json(self, rels: list[str]) -> dict[str, Any]:
        """Several small objects in one round of requests (concurrent on object stores)."""
        if not rels:
            return {}
        paths = [self.path(r) for r in rels]
        blobs = self.fs.cat(paths, on_error="omit")
        found = {p.rstrip("/"): v for p, v in blobs.items()}
        return {r: json.loads(found[p]) for r, p in zip(rels, paths, strict=True) if p in found}

    def _local_write(self, rel: str, data: bytes, exclusive: bool) -> bool:
        final = self.path(rel)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".{os.path.basename(final)}.{uuid.uuid4().hex}.tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            if exclusive:
                try:
                    os.link(tmp, final)
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, final)
            _fsync_dir(folder)
            return True
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()
