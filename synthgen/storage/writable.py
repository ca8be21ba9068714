"""The check made on an output location before anything is written to it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from synthgen.errors import UserError
from synthgen.storage.layout import OWN_ENTRIES
from synthgen.storage.store import Store

SHOWN = 3  # foreign entries named in the refusal


def check_unclaimed(store: Store) -> None:
    """An output with no job.json must hold nothing but synthgen's own files: a folder or
    prefix holding anything else is the user's (`.`, a project, a bucket's root), refused
    before any write, whatever the URL's spelling (`.`, `file://`, a relative path)."""
    foreign = [name for name in store.list("") if name not in OWN_ENTRIES]
    if foreign:
        shown = ", ".join(foreign[:SHOWN]) + (f" and {len(foreign) - SHOWN} more"
                                               if len(foreign) > SHOWN else "")
        raise UserError("output.uri", store.uri,
                        f"is not empty and holds no synthgen job ({shown}); give a new or empty "
                        "folder, so that nothing of yours is overwritten or removed")


def check_writable(store: Store, field: str = "output.uri") -> None:
    """On local disk, prove the output can be created: a probe file that is removed at once.
    `field` is what the error names: the spec's field, or a command's option."""
    if not store.local:
        return
    root = Path(store.root)
    existing = root
    while not existing.exists():
        existing = existing.parent
    if root.exists() and not root.is_dir():
        raise UserError(field, store.uri, "is a file; give a folder")
    if not existing.is_dir():
        raise UserError(field, store.uri, f"{existing} is a file, not a folder; fix the path")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".synthgen-probe-"):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UserError(field, store.uri,
                        f"cannot write under {existing} ({reason}); choose a writable folder"
                        ) from None
