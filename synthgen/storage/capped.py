"""The one bounded reader of files that come from outside: a user's manifest, a model's config,
a remote model's files. A file's size is whatever its server says, and an HTTP body may never
end, so every such read goes in chunks and stops at a cap named in the error, instead of
filling memory or the disk first.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from synthgen.errors import UserError

CHUNK = 1 << 20
MANIFEST_CAP = 256 << 20  # a manifest, an attribute file, a spec: rows of text
CONFIG_CAP = 16 << 20  # a model's JSON config, a classifier's class list
IMAGE_CAP = 64 << 20  # one encoded image of an init source
WEIGHTS_CAP = 256 << 30  # one weight file of a remote model whose listing gives no size


class TooLarge(UserError):
    """A file past its cap: one line naming the field, the file and the cap."""

    def __init__(self, field: str, value: object, cap: int) -> None:
        super().__init__(field, value, f"is larger than the cap of {_size(cap)} for {field} "
                         "(or its server never ends the body); give a smaller file")
        self.cap = cap

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.field, self.value, self.cap)


def read_capped(fs: Any, path: str, cap: int, field: str, value: object = None) -> bytes:
    """The whole file, read in chunks; past `cap` bytes it stops and raises TooLarge."""
    parts: list[bytes] = []
    total = 0
    with fs.open(path, "rb") as f:
        while chunk := f.read(min(CHUNK, cap + 1 - total)):
            parts.append(chunk)
            total += len(chunk)
            if total > cap:
                raise TooLarge(field, path if value is None else value, cap)
    return b"".join(parts)


def copy_capped(fs: Any, path: str, local: Path, cap: int, field: str, value: object = None) -> None:
    """A remote file copied to a local one in chunks; past `cap` bytes the partial copy is removed
    and TooLarge raised, so a body that never ends cannot fill the disk."""
    total = 0
    try:
        with fs.open(path, "rb") as f, open(local, "wb") as out:
            while chunk := f.read(min(CHUNK, cap + 1 - total)):
                total += len(chunk)
                if total > cap:
                    raise TooLarge(field, path if value is None else value, cap)
                out.write(chunk)
    except BaseException:
        local.unlink(missing_ok=True)
        raise


def read_local(path: Path | str, cap: int, field: str) -> bytes:
    """A local file given by a user or a model folder, bounded like a remote one."""
    with open(path, "rb") as f:
        data = f.read(cap + 1)
    if len(data) > cap:
        raise TooLarge(field, os.fspath(path), cap)
    return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"
