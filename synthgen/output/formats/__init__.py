"""Output formats of the data files (output.format): Parquet or WebDataset tar shards.

Each format is one class (formats/base.py): the worker encodes a shard through it, and every
reader (iter_rows, RowReader, the index, verify) reads through it. An output's data files are
all of one format, and a data file's suffix says which, so a commit marker is all a reader needs.
"""

from __future__ import annotations

from synthgen.output.formats.base import ShardFormat
from synthgen.output.formats.parquet import ParquetFormat
from synthgen.output.formats.webdataset import WebDatasetFormat

FORMATS: dict[str, ShardFormat] = {f.name: f for f in (ParquetFormat(), WebDatasetFormat())}


def shard_format(name: str) -> ShardFormat:
    """The format of output.format `name` (the spec has validated it)."""
    return FORMATS[name]


def format_of(file: str) -> ShardFormat:
    """The format of a data file, from its suffix."""
    for fmt in FORMATS.values():
        if file.endswith(fmt.suffix):
            return fmt
    raise ValueError(f"{file}: not a data file of a known format ({', '.join(FORMATS)})")
