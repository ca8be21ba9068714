"""WebDataset tar shards: the typed sample record and its tar members, written and read back.

Shared by the webdataset output format and `synthgen export --format webdataset`. A sample is
consecutive members named `<key>.<ext>`: the image (`png`, `jpg` or `webp`), `json` (every
column of the row but the image) and `cls` (the label id; absent on an unlabeled row). The key is
the zero-padded sample_id, so keys sort in sample order. Members are USTAR with a fixed owner,
mode and time: the same rows always give the same bytes (a retried shard's tar is identical).
"""

from __future__ import annotations

import io
import json
import posixpath
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

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
