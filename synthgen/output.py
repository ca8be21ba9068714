"""Checks on the output location made before anything is written, and secret redaction."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from synthgen.errors import UserError
from synthgen.storage import Store

SECRET_WORDS = ("secret", "token", "password", "passwd", "credential", "key")
SAFE_KEYS = {"endpoint_url", "region_name", "profile", "anon", "use_ssl", "client_kwargs",
             "config_kwargs", "requester_pays", "default_fill_cache"}


def check_writable(store: Store) -> None:
    """On local disk, prove the output can be created: a probe file that is removed at once."""
    if not store.local:
        return
    root = Path(store.root)
    existing = root
    while not existing.exists():
        existing = existing.parent
    if root.exists() and not root.is_dir():
        raise UserError("output.uri", store.uri, "is a file; give a folder")
    if not existing.is_dir():
        raise UserError("output.uri", store.uri, f"{existing} is a file, not a folder; fix the path")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".synthgen-probe-"):
            pass
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise UserError("output.uri", store.uri,
                        f"cannot write under {existing} ({reason}); choose a writable folder"
                        ) from None


def redact(options: dict[str, Any]) -> dict[str, Any]:
    """storage_options without anything that looks like a credential, at any depth."""
    clean: dict[str, Any] = {}
    for key, value in options.items():
        lowered = key.lower()
        if key not in SAFE_KEYS and any(word in lowered for word in SECRET_WORDS):
            continue
        clean[key] = redact(value) if isinstance(value, dict) else value
    return clean
