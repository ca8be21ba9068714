"""Parquet to and from bytes: shards are built whole in memory, so an upload is one put."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def table_bytes(table: pa.Table) -> bytes:
    """Parquet bytes, built whole in memory so the upload is one put."""
    sink = io.BytesIO()
    # Images are already compressed: only the metadata columns benefit from zstd.
    pq.write_table(table, sink, compression="zstd", use_dictionary=False,
                   row_group_size=max(1, min(len(table), 1000)))
    return sink.getvalue()


def read_parquet(source: bytes | Any, columns: Sequence[str] | None = None) -> pa.Table:
    """A Parquet file from bytes or an open file object.

    `pq.ParquetFile`, not `pq.read_table`: pyarrow's dataset reader over an in-memory or Python
    file leaves a native thread behind that aborts the process at exit (SIGABRT, most runs).
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    return pq.ParquetFile(source).read(columns=columns)
