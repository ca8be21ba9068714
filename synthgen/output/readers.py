"""Reading the rows of an output's committed shards (found through its catalog), in any of the
output formats (output/formats): each data file is read by the format its suffix names.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image

from synthgen.errors import UserError
from synthgen.output.catalog import Catalog
from synthgen.output.formats import format_of
from synthgen.output.formats.base import FileRows
from synthgen.output.shard_schema import INIT_COLUMNS, METADATA_COLUMNS
from synthgen.storage.commit import CommitMarker
from synthgen.storage.store import Store

READABLE_COLUMNS = ("image", "label", *METADATA_COLUMNS)
# in jobs that use axes, captions or init (DesignColumns)
DESIGN_COLUMNS = ("attributes", "caption_id", *INIT_COLUMNS)


def data_files(uri: str, storage_options: dict[str, Any] | None = None,
               split: str | None = None) -> list[str]:
    """URLs of the committed data files (of one split, or all; Parquet or tar: output.format),
    for `datasets`, Ray Data, DuckDB, pandas or `webdataset`. Exact at any moment, also during
    a run, where `data/` may hold orphans.
    """
    catalog = Catalog.open(uri, storage_options)
    return [catalog.store.url(s.file) for s in catalog.split_shards(split)]


def check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in columns if c not in (*READABLE_COLUMNS, *DESIGN_COLUMNS)]
    if unknown:
        raise UserError("columns", unknown[0], f"unknown column; choose from {', '.join(READABLE_COLUMNS)}")
    return tuple(columns)


def decode_image(cell: dict[str, Any]) -> Image.Image:
    """An `image` cell ({bytes, path}) -> a loaded PIL image."""
    return load_image(cell["bytes"])


def load_image(data: bytes) -> Image.Image:
    """Encoded image bytes -> a PIL image, read whole now (not lazily from a closed buffer)."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def iter_rows(store: Store, shard: CommitMarker, columns: Sequence[str],
              batch_size: int = 256) -> Iterator[dict[str, Any]]:
    """The rows of one shard in order, streamed batch by batch (bounded memory), in any format."""
    with store.fs.open(store.path(shard.file), "rb") as f:
        yield from format_of(shard.file).iter_rows(f, columns, batch_size)


class RowReader:
    """Rows of committed shards by position, through each format's own random reader."""

    def __init__(self, store: Store, columns: Sequence[str], cache_size: int = 4) -> None:
        self.store, self.columns, self.cache_size = store, list(columns), max(1, cache_size)
        self._readers: dict[str, FileRows] = {}

    def row(self, shard: CommitMarker, position: int) -> dict[str, Any]:
        """Row `position` (0-based within the shard) as a dict of the chosen columns."""
        fmt = format_of(shard.file)
        reader = self._readers.get(fmt.name)
        if reader is None:
            reader = self._readers[fmt.name] = fmt.row_reader(self.store, self.columns, self.cache_size)
        return reader.row(shard.file, position)
