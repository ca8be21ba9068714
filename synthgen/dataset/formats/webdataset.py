"""WebDataset data files: one tar per shard, a sample as `<key>.<image ext>`, `.cls`, `.json`.

Readable as-is by the `webdataset` package, Hugging Face `datasets` (its webdataset builder)
and any tar reader; formats/tar.py writes and parses the members. A random read costs one
range request over the sample's own members: the tar's headers are read once per file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import pyarrow as pa

from synthgen.dataset.formats.base import ShardFormat, column_schema, label_dtype, metadata_features
from synthgen.dataset.formats.tar import (
    LABEL_EXT,
    META_EXT,
    SampleSpans,
    TarSample,
    read_samples,
    sample_of,
    sample_spans,
    tar_bytes,
)
from synthgen.dataset.shard_schema import DesignColumns
from synthgen.storage.store import Store


class WebDatasetFormat(ShardFormat):
    name = "webdataset"
    suffix = ".tar"
    files = "WebDataset tar files"
    card_note = ("Each data file is a WebDataset tar. A sample is `<sample_id:09d>.<ext>` (the image), "
                 "`.cls` (the label id; absent when a row has no label) and `.json` (every column but "
                 "the image): `datasets` reads them as the columns `<ext>`, `cls`, `json`, `__key__` "
                 "and `__url__`; the `webdataset` package reads "
                 "`webdataset.WebDataset(synthgen.data_files(URI))`.")

    def encode(self, table: pa.Table) -> bytes:
        return tar_bytes(TarSample.from_row(row) for row in table.to_pylist())

    def iter_rows(self, f: BinaryIO, columns: Sequence[str], batch_size: int) -> Iterator[dict[str, Any]]:
        for sample in read_samples(f):
            row = sample.to_row()
            yield {c: row[c] for c in columns}

    def read_table(self, source: bytes | BinaryIO, columns: Sequence[str]) -> pa.Table:
        f = io.BytesIO(source) if isinstance(source, bytes) else source
        return pa.Table.from_pylist(list(self.iter_rows(f, columns, 0)), schema=column_schema(columns))

    def row_reader(self, store: Store, columns: Sequence[str], cache_size: int) -> TarRows:
        return TarRows(store, columns)  # no cache to size: a row is one small range read

    def card_features(self, class_names: Sequence[str], image_ext: str,
                      design: DesignColumns) -> list[dict[str, Any]]:
        """The columns of `datasets`' webdataset builder: one per member extension, then the
        sample's key and its tar's URL."""
        return [{"name": image_ext, "dtype": "image"},
                {"name": LABEL_EXT, "dtype": label_dtype(class_names)},
                {"name": META_EXT,
                 "struct": [{"name": "label", "dtype": "int64"}, *metadata_features(design)]},
                {"name": "__key__", "dtype": "string"}, {"name": "__url__", "dtype": "string"}]


class TarRows:
    """Rows by position: each file's member offsets are read once, then a row is one range read
    of its json (and its image when asked for)."""

    def __init__(self, store: Store, columns: Sequence[str]) -> None:
        self.store, self.columns = store, list(columns)
        self._spans: dict[str, list[SampleSpans]] = {}

    def row(self, file: str, position: int) -> dict[str, Any]:
        path = self.store.path(file)
        spans = self._spans.get(file)
        if spans is None:
            with self.store.fs.open(path, "rb") as f:
                spans = self._spans[file] = sample_spans(f)
        sample = spans[position]
        wanted = {ext: span for ext, span in sample.members.items()
                  if ext == META_EXT or ("image" in self.columns and ext != LABEL_EXT)}
        start = min(offset for offset, _ in wanted.values())
        blob = self.store.fs.cat_file(path, start, max(offset + size for offset, size in wanted.values()))
        parts = {ext: blob[offset - start : offset - start + size] for ext, (offset, size) in wanted.items()}
        row = sample_of(sample.key, parts).to_row()
        return {c: row[c] for c in self.columns}
