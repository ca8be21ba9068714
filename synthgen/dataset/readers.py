"""Reading the rows of an output's committed shards (found through its catalog).

Rows are read one Parquet row group at a time, so a random read costs one row group, not a shard.
"""

from __future__ import annotations

import bisect
import io
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any

import pyarrow.parquet as pq
from PIL import Image

from synthgen.dataset.catalog import Catalog
from synthgen.dataset.shard_schema import METADATA_COLUMNS
from synthgen.errors import UserError
from synthgen.storage.marker import CommitMarker
from synthgen.storage.store import Store

READABLE_COLUMNS = ("image", "label", *METADATA_COLUMNS)
DESIGN_COLUMNS = ("attributes", "caption_id")  # in jobs that use axes / captions (DesignColumns)


def data_files(uri: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """URLs of the committed data files, for `datasets`, Ray Data, DuckDB or pandas.

    Exact at any moment, also during a run, where `data/` may hold orphans.
    """
    catalog = Catalog.open(uri, storage_options)
    return [catalog.store.url(s.file) for s in catalog.shards]


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
    """The rows of one shard in order, streamed batch by batch (bounded memory)."""
    with store.fs.open(store.path(shard.file), "rb") as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=list(columns)):
            yield from batch.to_pylist()


class RowReader:
    """Rows of committed shards by position; the last few row groups read stay in memory."""

    def __init__(self, store: Store, columns: Sequence[str], cache_size: int = 4) -> None:
        self.store, self.columns, self.cache_size = store, list(columns), max(1, cache_size)
        self._starts: dict[str, list[int]] = {}
        self._metadata: dict[str, pq.FileMetaData] = {}
        self._groups: OrderedDict[tuple[str, int], dict[str, list[Any]]] = OrderedDict()

    def row(self, shard: CommitMarker, position: int) -> dict[str, Any]:
        """Row `position` (0-based within the shard) as a dict of the chosen columns."""
        file = shard.file
        starts = self._starts.get(file)
        if starts is not None:
            group = bisect.bisect_right(starts, position) - 1
            columns = self._groups.get((file, group))
            if columns is not None:
                self._groups.move_to_end((file, group))
                return {name: values[position - starts[group]] for name, values in columns.items()}
        with self.store.fs.open(self.store.path(file), "rb") as f:  # one open: footer and group
            parquet = pq.ParquetFile(f, metadata=self._metadata.get(file))
            if starts is None:
                self._metadata[file] = meta = parquet.metadata
                starts = self._starts[file] = list(
                    accumulate((meta.row_group(g).num_rows for g in range(meta.num_row_groups - 1)),
                               initial=0))
            group = bisect.bisect_right(starts, position) - 1
            columns = parquet.read_row_group(group, columns=self.columns).to_pydict()
        self._groups[(file, group)] = columns
        while len(self._groups) > self.cache_size:
            self._groups.popitem(last=False)
        return {name: values[position - starts[group]] for name, values in columns.items()}
