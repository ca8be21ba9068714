"""Parquet data files: one row per image, read one row group at a time.

A random read costs one row group, not a shard; the last few row groups read stay in memory.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.output.formats.base import ShardFormat, label_dtype, metadata_features
from synthgen.output.shard_schema import DesignColumns
from synthgen.storage.store import Store, read_parquet, table_bytes


class ParquetFormat(ShardFormat):
    name = "parquet"
    suffix = ".parquet"
    files = "Parquet files"

    def encode(self, table: pa.Table) -> bytes:
        return table_bytes(table)

    def iter_rows(self, f: BinaryIO, columns: Sequence[str], batch_size: int) -> Iterator[dict[str, Any]]:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_size, columns=list(columns)):
            yield from batch.to_pylist()

    def read_table(self, source: bytes | BinaryIO, columns: Sequence[str]) -> pa.Table:
        return read_parquet(source, list(columns))

    def row_reader(self, store: Store, columns: Sequence[str], cache_size: int) -> ParquetRows:
        return ParquetRows(store, columns, cache_size)

    def card_features(self, class_names: Sequence[str], image_ext: str,
                      design: DesignColumns) -> list[dict[str, Any]]:
        return [{"name": "image", "dtype": "image"}, {"name": "label", "dtype": label_dtype(class_names)},
                *metadata_features(design)]


class ParquetRows:
    """Rows by position; the last `cache_size` row groups read stay in memory."""

    def __init__(self, store: Store, columns: Sequence[str], cache_size: int) -> None:
        self.store, self.columns, self.cache_size = store, list(columns), max(1, cache_size)
        self._starts: dict[str, list[int]] = {}
        self._metadata: dict[str, pq.FileMetaData] = {}
        self._groups: OrderedDict[tuple[str, int], dict[str, list[Any]]] = OrderedDict()

    def row(self, file: str, position: int) -> dict[str, Any]:
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
