"""What an output format is to synthgen: the one seam between a shard's rows and its data file.

A format turns a shard's table (output/shard_schema.py, every column) into the bytes of one
data file, and reads rows back: streamed in order, by position, or as a metadata table for
the index and verify. Rows read back have the shape of the shard table's rows in every format:
`image` ({bytes, path}), `label` and the metadata columns.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, Protocol

import numpy as np
import pyarrow as pa
from PIL import Image

from synthgen.output.shard_schema import METADATA_COLUMNS, DesignColumns, shard_schema
from synthgen.spec.job_spec import OutputSpec
from synthgen.storage.store import Store


class FileRows(Protocol):
    """Random access to the rows of a format's data files (each reader keeps its own cache)."""

    def row(self, file: str, position: int) -> dict[str, Any]:
        """Row `position` (0-based within the data file `file`, relative to the store)."""
        ...


class ShardFormat(ABC):
    name: ClassVar[str]  # the value of output.format, and the Hugging Face builder that reads it
    suffix: ClassVar[str]  # of its data files
    files: ClassVar[str]  # what the card calls its data files
    card_note: ClassVar[str] = ""  # what the card says of how the files hold the columns

    @abstractmethod
    def encode(self, table: pa.Table) -> bytes:
        """A shard's table -> its data file, built whole in memory (the upload is one put)."""

    @abstractmethod
    def iter_rows(self, f: BinaryIO, columns: Sequence[str], batch_size: int) -> Iterator[dict[str, Any]]:
        """The rows of one open data file in order, with the chosen columns (bounded memory)."""

    @abstractmethod
    def read_table(self, source: bytes | BinaryIO, columns: Sequence[str]) -> pa.Table:
        """The chosen columns of a whole data file, typed as in the shard schema."""

    @abstractmethod
    def row_reader(self, store: Store, columns: Sequence[str], cache_size: int) -> FileRows:
        """Random access to rows of this format's files in `store`."""

    @abstractmethod
    def card_features(self, class_names: Sequence[str], image_ext: str,
                      design: DesignColumns) -> list[dict[str, Any]]:
        """The card's `dataset_info.features`: the columns `datasets` gives for these files."""


def column_schema(columns: Sequence[str]) -> pa.Schema | None:
    """The shard schema's fields for `columns`, in that order; None where a column is one of a
    job's design columns (their types depend on the job: inferred, then cast by the caller)."""
    schema = shard_schema(())
    if any(c not in schema.names for c in columns):
        return None
    return pa.schema([schema.field(c) for c in columns])


def label_dtype(class_names: Sequence[str]) -> Any:
    """The card's dtype of a label: a ClassLabel with the class names, or int64 without classes."""
    if not class_names:
        return "int64"
    return {"class_label": {"names": {str(i): name for i, name in enumerate(class_names)}}}


def metadata_features(design: DesignColumns) -> list[dict[str, Any]]:
    """The card's features of the metadata columns (their `datasets` Value dtypes), then the
    job's design columns (`attributes`, a struct of strings; `caption_id`; the init columns)."""
    features: list[dict[str, Any]] = [{"name": n, "dtype": dtype}
                                      for n, (_, dtype) in METADATA_COLUMNS.items()]
    if design.axes:
        struct = [{"name": a, "dtype": "string"} for a in design.axes]
        features.append({"name": "attributes", "struct": struct})
    return features + [{"name": n, "dtype": dtype} for n, (_, dtype) in design.plain_columns.items()]


# uint8 arrays -> encoded image bytes (png, jpeg, webp), with fast encoder settings.
@dataclass(frozen=True)
class Encoder:
    """Encodes one image; PIL releases the GIL while compressing, so threads overlap it."""

    image_format: str
    quality: int
    png_compress_level: int

    @classmethod
    def from_spec(cls, output: OutputSpec) -> Encoder:
        return cls(output.image_format, output.quality, output.png_compress_level)

    def encode(self, pixels: np.ndarray) -> bytes:
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        buf = io.BytesIO()
        if self.image_format == "png":
            image.save(buf, format="PNG", compress_level=self.png_compress_level)
        elif self.image_format == "jpeg":
            image.save(buf, format="JPEG", quality=self.quality)
        else:
            image.save(buf, format="WEBP", quality=self.quality, method=4)
        return buf.getvalue()

    def encode_batch(self, batch: np.ndarray) -> list[bytes]:
        return [self.encode(pixels) for pixels in batch]
