"""WebDataset data files: one tar per shard, a sample as `<key>.<image ext>`, `.cls`, `.json`.

Readable as-is by the `webdataset` package, Hugging Face `datasets` (its webdataset builder)
and any tar reader; formats/tar.py writes and parses the members. A random read costs one
range request over the sample's own members: the tar's headers are read once per file.
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyarrow as pa

from synthgen.output.formats.base import ShardFormat, column_schema, label_dtype, metadata_features
from synthgen.output.shard_schema import DesignColumns
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


# WebDataset tar shards: the typed sample record and its tar members, written and read back.
#
# Shared by the webdataset output format and `synthgen export --format webdataset`. A sample is
# consecutive members named `<key>.<ext>`: the image (`png`, `jpg` or `webp`), `json` (every
# column of the row but the image) and `cls` (the label id; absent on an unlabeled row). The key is
# the zero-padded sample_id, so keys sort in sample order. Members are USTAR with a fixed owner,
# mode and time: the same rows always give the same bytes (a retried shard's tar is identical).
META_EXT, LABEL_EXT = "json", "cls"


@dataclass(frozen=True)
class TarSample:
    key: str
    image_ext: str
    image: bytes | None  # None when a reader did not ask for the image
    meta: dict[str, Any]  # every column of the row but the image, `label` and `sample_id` among them

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> TarSample:
        """A row with the shard schema's columns (`image` as {bytes, path})."""
        image = row["image"]
        ext = posixpath.splitext(image["path"] or "")[1].lstrip(".") or "png"
        return cls(f"{row['sample_id']:09d}", ext, image["bytes"],
                   {k: v for k, v in row.items() if k != "image"})

    def to_row(self) -> dict[str, Any]:
        """Back to the shard schema's shape: the image as {bytes, path}, as in Parquet."""
        return {"image": {"bytes": self.image, "path": f"{self.key}.{self.image_ext}"}, **self.meta}

    def members(self) -> list[tuple[str, bytes]]:
        assert self.image is not None
        label = self.meta.get("label")
        parts = [(f"{self.key}.{self.image_ext}", self.image),
                 (f"{self.key}.{META_EXT}", json.dumps(self.meta, sort_keys=True).encode())]
        if label is not None and label >= 0:
            parts.append((f"{self.key}.{LABEL_EXT}", str(label).encode()))
        return parts


@dataclass(frozen=True)
class SampleSpans:
    """Where one sample's members lie in its tar: extension -> (offset, size) of the data."""

    key: str
    members: dict[str, tuple[int, int]]


def tar_bytes(samples: Iterable[TarSample]) -> bytes:
    """One tar holding `samples` in order, built whole in memory (the upload is one put)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for sample in samples:
            for name, data in sample.members():
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def read_samples(f: BinaryIO) -> Iterator[TarSample]:
    """The samples of a tar in order, streamed member by member (no seek: any file object)."""
    with tarfile.open(fileobj=f, mode="r|") as tar:
        key, parts = None, {}
        for member in tar:
            if not member.isfile():
                continue
            name, ext = _split(member.name)
            if key is not None and name != key:
                yield sample_of(key, parts)
                parts = {}
            key = name
            parts[ext] = tar.extractfile(member).read()  # type: ignore[union-attr]
        if key is not None:
            yield sample_of(key, parts)


def sample_spans(f: BinaryIO) -> list[SampleSpans]:
    """Each sample's member offsets, from the tar headers alone (a seekable file skips the data)."""
    spans: list[SampleSpans] = []
    with tarfile.open(fileobj=f, mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name, ext = _split(member.name)
            if not spans or spans[-1].key != name:
                spans.append(SampleSpans(name, {}))
            spans[-1].members[ext] = (member.offset_data, member.size)
    return spans


def sample_of(key: str, parts: dict[str, bytes]) -> TarSample:
    """A sample from its members' data (`cls` is redundant: the json holds the label too)."""
    if META_EXT not in parts:
        raise ValueError(f"sample {key} has no .{META_EXT} member")
    images = [ext for ext in parts if ext not in (META_EXT, LABEL_EXT)]
    if len(images) > 1:
        raise ValueError(f"sample {key} has {len(images)} images: {', '.join(images)}")
    ext = images[0] if images else ""
    return TarSample(key, ext, parts.get(ext), json.loads(parts[META_EXT]))


def _split(name: str) -> tuple[str, str]:
    """`<key>.<ext>`, split at the first dot of the base name, as webdataset does."""
    folder, base = posixpath.split(name)
    key, _, ext = base.partition(".")
    return posixpath.join(folder, key), ext
