"""The output store: fsspec paths under one root, whole-object puts and create-only markers.

Every actor builds its own `Store` from (uri, storage_options): a filesystem is never pickled
from the driver, so credentials and connections stay local to the process that uses them.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import logging
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.implementations.local import LocalFileSystem

from synthgen.errors import UserError
from synthgen.storage import s3
from synthgen.storage.filesystem import check_reachable, open_fs
from synthgen.storage.layout import PROBE_DIR, data_shard, own_entry, own_temp, temp_name

log = logging.getLogger("synthgen")

PART_SIZE = 50 << 20  # multipart uploads in parts of this size, from twice this size up
# Errors of the disk itself: the message names the file instead of a bare errno.
DISK_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EIO}


@dataclass
class Store:
    """A root folder in any fsspec filesystem, addressed by relative paths.

    `conditional` says whether the store honours create-only writes (see `probe_create_only`);
    where it does not, `create_only` degrades to check-then-put, safe only for the one driver
    that holds the job lock.
    """

    uri: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.fs, root = open_fs(self.uri, self.storage_options)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        self.is_s3 = s3.is_s3(self.uri)
        self.conditional = True
        self.part_size = PART_SIZE

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
        elif self.is_s3:
            self.fs.pipe_file(self.path(rel), data, chunksize=self.part_size)
        else:
            self.fs.pipe_file(self.path(rel), data)

    def put_json(self, rel: str, value: Any) -> None:
        self.put_bytes(rel, json_bytes(value))

    def create_only(self, rel: str, data: bytes) -> bool:
        """Write `rel` only if it does not exist yet; False when another writer was first."""
        if self.local:
            return self._local_write(rel, data, exclusive=True)
        if not self.conditional:
            if self.exists(rel):
                return False
            self.put_bytes(rel, data)
            return True
        try:
            self.fs.pipe_file(self.path(rel), data, mode="create")
        except OSError as exc:
            if s3.refused_precondition(exc):
                return False
            raise
        return True

    def probe_create_only(self) -> bool:
        """Does a second create-only write of one object fail? Sets and returns `conditional`.

        Local disk always does (a hard link is atomic). An object store that ignores
        If-None-Match, or rejects it, gets driver-only marker writes under the job lock.
        """
        if self.local:
            return True
        rel, token = f"{PROBE_DIR}/{uuid.uuid4().hex}", uuid.uuid4().hex.encode()
        try:
            # A False first write that left our token: the reply was lost and the retry refused.
            first = self.create_only(rel, token) or self.read_bytes(rel) == token
            honoured = first and not self.create_only(rel, b"again")
        except (PermissionError, FileNotFoundError):
            raise  # no access, no bucket: the caller tells the user
        except Exception as exc:  # noqa: BLE001 - any failure of a conditional put means "no"
            log.debug("create-only probe failed: %s: %s", type(exc).__name__, exc)
            honoured = False
        finally:
            self.delete(rel)
        if not honoured:
            log.warning("%s does not honour create-only writes (If-None-Match): the driver alone "
                        "writes commit markers, under the job lock", self.uri)
        self.conditional = honoured
        return honoured

    def abort_uploads(self, rel: str) -> list[str]:
        """Abort synthgen's multipart uploads pending under `rel` (S3 only): left by killed
        writers. Only data file names synthgen writes (`data_shard`)."""
        if not self.is_s3:
            return []
        try:
            return s3.abort_uploads(self.fs, self.path(rel) + "/",
                                    lambda name: data_shard(name) is not None)
        except PermissionError as exc:
            log.warning("cannot list pending multipart uploads under %s (%s); a lifecycle rule "
                        "that aborts incomplete uploads does the same", self.url(rel), exc)
            return []

    def delete(self, rel: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self.path(rel))

    def list(self, rel: str) -> list[str]:
        """Names (not paths) of the files directly under `rel`; empty if it does not exist.
        Not `rel` itself: a store that keeps folders (SeaweedFS) lists an emptied one's own
        marker object, `rel/`, as an entry of it."""
        folder = self.path(rel).rstrip("/")
        try:
            entries = self.fs.ls(folder, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(e.rstrip("/").rsplit("/", 1)[-1] for e in entries if e.rstrip("/") != folder)

    def read_many(self, rels: Sequence[str]) -> dict[str, bytes]:
        """Several small objects in one round of requests (concurrent on object stores);
        objects that vanished meanwhile (or are folders) are left out."""
        if not rels:
            return {}
        paths = [self.path(r) for r in rels]
        blobs = self.fs.cat(paths, on_error="omit")
        found = {p.rstrip("/"): v for p, v in blobs.items() if isinstance(v, bytes)}
        return {r: found[p] for r, p in zip(rels, paths, strict=True) if p in found}

    def _local_write(self, rel: str, data: bytes, exclusive: bool) -> bool:
        final = self.path(rel)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, temp_name(os.path.basename(final)))
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
        except OSError as exc:
            if exc.errno in DISK_ERRNOS:
                raise OSError(exc.errno, f"{os.strerror(exc.errno)} while writing {final}") from exc
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


# Parquet to and from bytes: shards are built whole in memory, so an upload is one put.
def table_bytes(table: pa.Table) -> bytes:
    """Parquet bytes, built whole in memory so the upload is one put."""
    sink = io.BytesIO()
    # Images are already compressed: only the metadata columns benefit from zstd.
    pq.write_table(table, sink, compression="zstd", use_dictionary=False,
                   row_group_size=max(1, min(len(table), 1000)))
    return sink.getvalue()


def read_parquet(source: bytes | Any, columns: Sequence[str] | None = None) -> pa.Table:
    """A Parquet file from bytes or an open file object.

    `pq.ParquetFile`, not `pq.read_table`: pyarrow's dataset reader over an in-memory or Python
    file leaves a native thread behind that aborts the process at exit (SIGABRT, most runs).
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return pq.ParquetFile(source).read(columns=columns)


# The checks made on an output location before anything is written to it.
SHOWN = 3  # foreign entries named in the refusal


def check_unclaimed(store: Store) -> None:
    """An output with no job.json must hold nothing but synthgen's own files: a folder or
    prefix holding anything else is the user's (`.`, a project, a bucket's root), refused
    before any write, whatever the URL's spelling (`.`, `file://`, a relative path)."""
    foreign = [name for name in store.list("") if not own_entry(name) and not own_temp(name, "")]
    if foreign:
        shown = ", ".join(foreign[:SHOWN]) + (f" and {len(foreign) - SHOWN} more"
                                               if len(foreign) > SHOWN else "")
        raise UserError("output.uri", store.uri,
                        f"is not empty and holds no synthgen job ({shown}); give a new or empty "
                        "folder, so that nothing of yours is overwritten or removed")


def check_writable(store: Store, field: str = "output.uri") -> None:
    """On local disk, prove the output can be created: a probe file that is removed at once. On
    S3, one bounded read-only request names a store mistake in seconds (`check_reachable`).
    `field` is what the error names: the spec's field, or a command's option."""
    check_reachable(store.uri, store.storage_options, field)
    if not store.local:
        return
    root = Path(store.root)
    existing = root
    while not existing.exists():
        existing = existing.parent
    if root.exists() and not root.is_dir():
        raise UserError(field, store.uri, "is a file; give a folder")
    if not existing.is_dir():
        raise UserError(field, store.uri, f"{existing} is a file, not a folder; fix the path")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".synthgen-probe-"):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UserError(field, store.uri,
                        f"cannot write under {existing} ({reason}); choose a writable folder"
                        ) from None
