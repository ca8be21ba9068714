"""Torch datasets over an output: map-style (random access) and streaming (shard by shard).

Both yield `(image, label)` (a PIL image, or `transform(image)`), or a dict with the image,
the label and the asked-for `columns`. Nothing holds a filesystem across a pickle, so
`DataLoader(num_workers>0)` workers each open their own connection to the store.
"""

from __future__ import annotations

import bisect
import os
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from synthgen.output.catalog import Catalog
from synthgen.output.readers import RowReader, check_columns, decode_image, iter_rows
from synthgen.storage.commit import CommitMarker
from synthgen.storage.store import Store

Transform = Callable[[Any], Any]


def open_dataset(  # noqa: PLR0913 - the public API, keyword-only like torch's DataLoader
    uri: str,
    *,
    streaming: bool = False,
    transform: Transform | None = None,
    columns: Sequence[str] = (),
    storage_options: dict[str, Any] | None = None,
    shuffle: bool = False,
    shuffle_buffer: int = 1000,
    seed: int = 0,
    rank: int | None = None,
    world_size: int | None = None,
    split: str | None = None,
) -> SynthDataset | SynthStream:
    """The committed samples of the output at `uri` (local path or any fsspec URL).

    Map-style by default (`len`, random access; shuffle with the DataLoader). With
    `streaming=True`: an IterableDataset that reads shard by shard, shuffles shard order and
    a buffer of `shuffle_buffer` rows when `shuffle` is set (call `set_epoch` each epoch),
    and splits the work between DataLoader workers and distributed ranks (`rank`,
    `world_size`, by default from torch.distributed when it is initialized).
    Credentials come from the environment or `storage_options` (handed to fsspec). `split`
    names one of the job's `output.splits` (default: every committed sample).
    """
    source = _Source(uri, dict(storage_options or {}), transform, check_columns(columns), split)
    if not streaming:
        return SynthDataset(source)
    rank, world_size = _distributed(rank, world_size)
    return SynthStream(source, shuffle, max(1, shuffle_buffer), seed, rank, world_size)


class _Source:
    """What both datasets share: the committed shards, the class names, the item shape."""

    def __init__(self, uri: str, storage_options: dict[str, Any], transform: Transform | None,
                 columns: tuple[str, ...], split: str | None) -> None:
        catalog = Catalog.open(uri, storage_options)
        self.uri, self.storage_options = uri, storage_options
        self.shards: tuple[CommitMarker, ...] = catalog.split_shards(split)
        self.classes = list(catalog.class_names)
        self.transform, self.columns = transform, columns
        self.read_columns = list(dict.fromkeys(("image", "label", *columns)))
        self._store, self._pid = catalog.store, os.getpid()

    @property
    def store(self) -> Store:
        """This process's store: a forked DataLoader worker must not reuse its parent's client."""
        if self._store is None or self._pid != os.getpid():
            self._store, self._pid = Store(self.uri, self.storage_options), os.getpid()
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None}

    def item(self, row: dict[str, Any]) -> Any:
        image = decode_image(row["image"])
        if self.transform is not None:
            image = self.transform(image)
        if not self.columns:
            return image, row["label"]
        return {"image": image, "label": row["label"], **{c: row[c] for c in self.columns}}


class SynthDataset(Dataset):
    """Map-style: item i is the i-th committed sample in sample_id order."""

    def __init__(self, source: _Source, cache_row_groups: int = 4) -> None:
        self.source, self.cache_row_groups = source, cache_row_groups
        self.offsets = [0, *accumulate(s.rows for s in source.shards)]
        self._reader: RowReader | None = None
        self._reader_pid = 0

    @property
    def classes(self) -> list[str]:
        return self.source.classes

    def __len__(self) -> int:
        return self.offsets[-1]

    def __getitem__(self, index: int) -> Any:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        k = bisect.bisect_right(self.offsets, index) - 1
        if self._reader is None or self._reader_pid != os.getpid():
            self._reader = RowReader(self.source.store, self.source.read_columns,
                                     self.cache_row_groups)
            self._reader_pid = os.getpid()
        return self.source.item(self._reader.row(self.source.shards[k], index - self.offsets[k]))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None}


class SynthStream(IterableDataset):
    """Streaming: each reader (rank x DataLoader worker) reads its share, shard by shard."""

    def __init__(self, source: _Source, shuffle: bool, shuffle_buffer: int, seed: int,
                 rank: int, world_size: int) -> None:
        self.source, self.shuffle, self.shuffle_buffer = source, shuffle, shuffle_buffer
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0

    @property
    def classes(self) -> list[str]:
        return self.source.classes

    @property
    def num_rows(self) -> int:
        """Rows over all readers together."""
        return sum(s.rows for s in self.source.shards)

    def set_epoch(self, epoch: int) -> None:
        """Another shuffle order for each epoch, the same on every rank."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        shards = list(self.source.shards)
        if self.shuffle:
            random.Random(f"{self.seed}:{self.epoch}").shuffle(shards)
        units = assign(shards, self.rank, self.world_size, worker, workers)
        rows: Iterator[dict[str, Any]] = (row for unit in units
                for i, row in enumerate(iter_rows(self.source.store, unit.shard, self.source.read_columns))
                if unit.keeps(i))
        if self.shuffle and self.shuffle_buffer > 1:
            rng = random.Random(f"{self.seed}:{self.epoch}:{self.rank}:{worker}")
            rows = buffered_shuffle(rows, self.shuffle_buffer, rng)
        for row in rows:
            yield self.source.item(row)


@dataclass(frozen=True)
class Unit:
    """A shard to read, keeping row i when (base + i) % modulus == residue."""

    shard: CommitMarker
    modulus: int = 1
    residue: int = 0
    base: int = 0

    def keeps(self, i: int) -> bool:
        return (self.base + i) % self.modulus == self.residue


def assign(shards: list[CommitMarker], rank: int, world_size: int, worker: int, workers: int
           ) -> list[Unit]:
    """One reader's share of `shards` (in the same order on every rank).

    Ranks take whole full-size shards round-robin, as many as divide evenly; the rows of the
    shards left over are dealt out one by one, so that ranks differ by one sample at most (DDP
    needs equal steps). A rank's workers split its units, or its rows when units are fewer.
    """
    size = max((s.rows for s in shards), default=0)
    full = [s for s in shards if s.rows == size]
    whole = full[: len(full) - len(full) % world_size]
    taken = {s.shard for s in whole}
    units = [Unit(s) for s in whole[rank::world_size]]
    base = 0
    for shard in shards:
        if shard.shard not in taken:
            units.append(Unit(shard, world_size, rank, base))
            base += shard.rows
    if len(units) >= workers:
        return units[worker::workers]
    return [Unit(u.shard, u.modulus * workers, u.residue + u.modulus * worker, u.base) for u in units]


def buffered_shuffle(rows: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Approximate shuffling of a stream with a fixed-size buffer."""
    buffer: list[Any] = []
    for row in rows:
        if len(buffer) < size:
            buffer.append(row)
            continue
        i = rng.randrange(size)
        yield buffer[i]
        buffer[i] = row
    rng.shuffle(buffer)
    yield from buffer


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    dist = torch.distributed
    active = dist.is_available() and dist.is_initialized()
    rank = rank if rank is not None else (dist.get_rank() if active else 0)
    world_size = world_size if world_size is not None else (dist.get_world_size() if active else 1)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in 0..{world_size - 1}")
    return rank, world_size
