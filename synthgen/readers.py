"""Reading an output back: its committed shards (from the commit markers) and their rows.

Readers follow the markers, never a listing of `data/`: during a run it may hold orphans
(lost races, crashed attempts), and only a marker says that a data file is complete. Rows
are read one Parquet row group at a time, so a random read costs one row group, not a shard.
"""

from __future__ import annotations

import bisect
import io
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import Any

import pyarrow.parquet as pq
from PIL import Image

from synthgen.dataset import METADATA_COLUMNS
from synthgen.errors import UserError
from synthgen.plan import Plan
from synthgen.status import committed_markers, stored_plan
from synthgen.storage import Store

READABLE_COLUMNS = ("image", "label", *METADATA_COLUMNS)


@dataclass(frozen=True)
class ShardFile:
    """A committed shard: its data file and the sample_ids it holds (consecutive, in order)."""

    index: int
    file: str
    rows: int
    first_sample_id: int


@dataclass(frozen=True)
class Output:
    """An output opened for reading: the job's plan (from job.json) and its committed shards."""

    store: Store
    plan: Plan
    shards: tuple[ShardFile, ...]

    @classmethod
    def open(cls, uri: str, storage_options: dict[str, Any] | None = None) -> Output:
        store = Store(uri, dict(storage_options or {}))
        return cls.from_markers(store, stored_plan(store), committed_markers(store))

    @classmethod
    def from_markers(cls, store: Store, plan: Plan, markers: dict[int, dict[str, Any]]) -> Output:
        shards = tuple(ShardFile(i, m["file"], m["rows"], m["first_sample_id"])
                       for i, m in sorted(markers.items()))
        return cls(store, plan, shards)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.plan.manifest.class_names

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def shard_of(self, sample_id: int) -> ShardFile | None:
        """The committed shard holding `sample_id`, or None while it is not committed."""
        return self._by_index.get(sample_id // self.plan.spec.output.shard_size)

    @cached_property
    def _by_index(self) -> dict[int, ShardFile]:
        return {s.index: s for s in self.shards}


def data_files(uri: str, storage_options: dict[str, Any] | None = None) -> list[str]:
    """URLs of the committed data files, for `datasets`, Ray Data, DuckDB or pandas.

    Exact at any moment, also during a run, where `data/` may hold orphans.
    """
    output = Output.open(uri, storage_options)
    return [output.store.url(s.file) for s in output.shards]


def check_columns(columns: Sequence[str]) -> tuple[str, ...]:
    unknown = [c for c in columns if c not in READABLE_COLUMNS]
    if unknown:
        raise UserError("columns", unknown[0], f"unknown column; choose from {', '.join(READABLE_COLUMNS)}")
    return tuple(columns)


def decode_image(cell: dict[str, Any]) -> Image.Image:
    """An `image` cell ({bytes, path}) -> a loaded PIL image."""
    image = Image.open(io.BytesIO(cell["bytes"]))
    image.load()
    return image


def iter_rows(store: Store, shard: ShardFile, columns: Sequence[str],
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

    def row(self, shard: ShardFile, position: int) -> dict[str, Any]:
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
