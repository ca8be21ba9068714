"""Any fsspec URL opened in this process from plain settings, with synthgen's S3 defaults."""

from __future__ import annotations

from typing import Any

import fsspec

from synthgen.storage.s3 import with_defaults


def open_fs(uri: str, options: dict[str, Any]) -> tuple[Any, str]:
    """(filesystem, path) for any fsspec URL, built in this process from plain settings."""
    return fsspec.core.url_to_fs(uri, **with_defaults(uri, options))


def write_url(uri: str, options: dict[str, Any], data: bytes) -> None:
    """One whole file at a local path or any fsspec URL."""
    with fsspec.open(uri, "wb", **with_defaults(uri, options)) as f:
        f.write(data)


def read_url(uri: str, options: dict[str, Any]) -> bytes:
    """The whole file at a local path or any fsspec URL."""
    with fsspec.open(uri, "rb", **with_defaults(uri, options)) as f:
        return f.read()
