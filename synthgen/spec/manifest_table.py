"""A resolved manifest as a Parquet file: one row per entry, read by column and lazily.

job.json names this file instead of holding the manifest, so it stays small for any manifest
(a million prompts made a 354 MB job.json). `status` reads two columns (counts and names),
never an Entry; a resume or a worker builds entries row by row as the plan asks for them. The
class names and an init source's description sit in the file's key-value metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any, overload

import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.spec.manifest import Entry, Manifest

META_KEY = b"synthgen.manifest"
FORMAT = 1  # the layout of the columns and the metadata below
BATCH = 4096  # entries built at a time when the whole manifest is walked
_LIST = pa.list_(pa.string())
SCHEMA = pa.schema([
    ("label", pa.int64()), ("label_name", pa.string()), ("count", pa.int64()),
    ("model_label", pa.int64()), ("prompts", _LIST), ("templates", _LIST),
    ("negative_prompt", pa.string()), ("negative_prompts", _LIST),
    ("attributes", pa.string()),  # JSON: weights keep their int or float, so job_id holds
    ("description", pa.string()), ("synonyms", _LIST), ("inits", _LIST), ("init_label", pa.string()),
])


class CorruptManifest(ValueError):
    """Not a manifest file synthgen wrote."""


def manifest_bytes(manifest: Manifest) -> bytes:
    """The manifest as Parquet bytes (deterministic for one pyarrow version)."""
    meta = {"format_version": FORMAT, "class_names": list(manifest.class_names), "init": manifest.init}
    table = pa.Table.from_batches(_batches(manifest), SCHEMA.with_metadata({META_KEY: json.dumps(meta)}))
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def _batches(manifest: Manifest) -> Iterator[pa.RecordBatch]:
    entries = manifest.entries
    for start in range(0, len(entries), BATCH):
        rows = [_row(entries[i]) for i in range(start, min(start + BATCH, len(entries)))]
        yield pa.RecordBatch.from_pylist(rows, SCHEMA)


def _row(entry: Entry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in SCHEMA.names} | {
        "attributes": json.dumps(entry.attributes)}


def read_manifest(blob: bytes) -> Manifest:
    """The manifest in `blob`, its entries still on disk (an EntryTable)."""
    entries = EntryTable(blob)
    meta = entries.meta
    return Manifest(entries=entries, class_names=tuple(meta["class_names"]), init=meta.get("init"))


class EntryTable(Sequence[Entry]):
    """Entries read from Parquet on demand: a column at a time, or an Entry per index asked."""

    def __init__(self, blob: bytes) -> None:
        self.blob = blob
        try:
            self.file = pq.ParquetFile(pa.BufferReader(blob))
        except (pa.ArrowException, OSError) as exc:
            raise CorruptManifest(f"not Parquet ({exc})") from None
        if self.file.schema_arrow.remove_metadata() != SCHEMA:
            raise CorruptManifest("its columns are not a manifest's")

    def __reduce__(self) -> tuple[type, tuple[bytes]]:
        return type(self), (self.blob,)  # to a Ray actor: the bytes, not the open file

    @cached_property
    def meta(self) -> dict[str, Any]:
        raw = (self.file.schema_arrow.metadata or {}).get(META_KEY)
        try:
            meta = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            meta = None
        if not isinstance(meta, dict) or not isinstance(meta.get("class_names"), list):
            raise CorruptManifest("no class names in its metadata")
        if meta.get("format_version") != FORMAT:
            raise CorruptManifest(f"its format_version is {meta.get('format_version')!r}, not {FORMAT}")
        return meta

    def column(self, name: str) -> list[Any]:
        """One column as Python values (counts for the sample order, names for per-class counts)."""
        return self.file.read(columns=[name]).column(0).to_pylist()

    @cached_property
    def _table(self) -> pa.Table:
        return self.file.read()

    def __len__(self) -> int:
        return self.file.metadata.num_rows

    @overload
    def __getitem__(self, index: int) -> Entry: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | Sequence[Entry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return _entry(self._table.slice(index % len(self), 1).to_pylist()[0])

    def __iter__(self) -> Iterator[Entry]:
        for batch in self.file.iter_batches(BATCH):
            yield from (_entry(row) for row in batch.to_pylist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or len(other) != len(self):
            return False
        return all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]


def _entry(row: dict[str, Any]) -> Entry:
    return Entry.from_json({**row, "attributes": json.loads(row["attributes"])})
