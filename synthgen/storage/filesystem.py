"""Any fsspec URL opened in this process from plain settings, with synthgen's S3 defaults.

A URL whose scheme no filesystem knows, or whose filesystem package is not installed, is the
user's mistake: one line naming the URL and the fix (the pip install), never a traceback.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import fsspec
from fsspec.registry import known_implementations

from synthgen.errors import UserError
from synthgen.storage.capped import read_capped
from synthgen.storage.s3 import with_defaults


def open_fs(uri: str, options: dict[str, Any]) -> tuple[Any, str]:
    """(filesystem, path) for any fsspec URL, built in this process from plain settings."""
    with _known_scheme(uri):
        return fsspec.core.url_to_fs(uri, **with_defaults(uri, options))


def write_url(uri: str, options: dict[str, Any], data: bytes) -> None:
    """One whole file at a local path or any fsspec URL."""
    with _known_scheme(uri), fsspec.open(uri, "wb", **with_defaults(uri, options)) as f:
        f.write(data)


def read_url(uri: str, options: dict[str, Any], cap: int, field: str) -> bytes:
    """The whole file at a local path or any fsspec URL, up to `cap` bytes (see capped.py)."""
    fs, path = open_fs(uri, options)
    with _known_scheme(uri):
        return read_capped(fs, path, cap, field, uri)


@contextlib.contextmanager
def _known_scheme(uri: str) -> Iterator[None]:
    protocol = fsspec.core.split_protocol(uri)[0]
    try:
        yield
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise
        raise UserError("URL", uri, f"no filesystem knows the scheme {protocol}://; use a local "
                        "path, s3://, gs://, az://, http(s):// or another fsspec URL") from None
    except ImportError as exc:
        hint = known_implementations.get(protocol or "", {}).get("err") or str(exc)
        package = re.search(r"[Ii]nstall (\S+)", hint)
        fix = f"pip install {package.group(1)}" if package else f"install its package ({hint})"
        raise UserError("URL", uri, f"{protocol}:// needs a filesystem package that is not "
                        f"installed; {fix}") from None
