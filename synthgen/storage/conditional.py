"""Compare-and-swap on one small object: replace or delete it only if it is still what we read.

The job lock's heartbeat and release use it, so a driver that was taken over from can never
overwrite or delete the new holder's lock. On S3 the comparison is the store's own (If-Match on
the ETag, for puts and deletes); on local disk it is a sha256 of the content, compared and
swapped under an exclusive flock of the output folder (every synthgen process on the machine, or
on an NFS mount with working locks, takes the same one). A store that rejects If-Match gets a
read-compare-write, safe against everything but a race within one request's time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from synthgen.errors import UserError
from synthgen.storage.s3 import refused_precondition
from synthgen.storage.store import Store

log = logging.getLogger("synthgen")

GUARD_WAIT_S = 15.0  # a compare-and-swap holds the flock for milliseconds


def read_tagged(store: Store, rel: str) -> tuple[bytes, str] | None:
    """(content, tag) of `rel`, or None when it does not exist; the tag names this version."""
    try:
        if store.is_s3:
            tag = store.fs.info(store.path(rel), refresh=True)["ETag"]
            return store.read_bytes(rel), tag
        data = store.read_bytes(rel)
    except FileNotFoundError:
        return None
    return data, _digest(data)


def replace_if(store: Store, rel: str, data: bytes, tag: str) -> bool:
    """Put `data` at `rel` only if `rel` is still the version `tag`; False when it changed."""
    if store.local:
        with _guard(store):
            current = read_tagged(store, rel)
            if current is None or current[1] != tag:
                return False
            store.put_bytes(rel, data)
            return True
    if store.is_s3:
        bucket, key = _split(store, rel)
        return _conditional(store, rel, tag, lambda: store.fs.call_s3(
            "put_object", Bucket=bucket, Key=key, Body=data, IfMatch=tag),
            fallback=lambda: store.put_bytes(rel, data))
    return _compare_then(store, rel, tag, lambda: store.put_bytes(rel, data))


def delete_if(store: Store, rel: str, tag: str) -> bool:
    """Delete `rel` only if it is still the version `tag`; False when it changed or is gone."""
    if store.local:
        with _guard(store):
            current = read_tagged(store, rel)
            if current is None or current[1] != tag:
                return False
            store.delete(rel)
            return True
    if store.is_s3:
        bucket, key = _split(store, rel)
        return _conditional(store, rel, tag, lambda: store.fs.call_s3(
            "delete_object", Bucket=bucket, Key=key, IfMatch=tag),
            fallback=lambda: store.delete(rel))
    return _compare_then(store, rel, tag, lambda: store.delete(rel))


def _conditional(store: Store, rel: str, tag: str, call: Callable[[], Any],
                 fallback: Callable[[], Any]) -> bool:
    try:
        call()
    except OSError as exc:
        if refused_precondition(exc):
            return False
        if not _unsupported(exc):
            raise
        log.debug("%s rejects If-Match (%s): read-compare-write instead", store.uri, exc)
        return _compare_then(store, rel, tag, fallback)
    finally:
        store.fs.invalidate_cache(store.path(rel))
    return True


def _compare_then(store: Store, rel: str, tag: str, action: Callable[[], Any]) -> bool:
    current = read_tagged(store, rel)
    if current is None or current[1] != tag:
        return False
    action()
    return True


def _unsupported(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not implemented" in text or "notimplemented" in text or "invalidargument" in text


def _split(store: Store, rel: str) -> tuple[str, str]:
    bucket, _, key = store.path(rel).partition("/")
    return bucket, key


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextlib.contextmanager
def _guard(store: Store) -> Iterator[None]:
    os.makedirs(store.root, exist_ok=True)
    fd = os.open(store.root, os.O_RDONLY)
    try:
        flock_within(fd, GUARD_WAIT_S, "output.uri", store.uri,
                     f"the flock of the output folder {store.root} (a lock change in progress)")
        yield
    finally:
        os.close(fd)


# Every flock synthgen waits for, waited for a bounded time: a holder that is stopped (SIGSTOP,
# a frozen container) never releases it, and a silent wait for ever looks like a hang.
POLL_S = 0.05


def flock_within(fd: int, seconds: float, field: str, value: object, what: str) -> None:
    """Take an exclusive flock on `fd`, or after `seconds` raise one line naming `what`."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise UserError(field, value, f"waited {seconds:g} s for {what}; another process "
                                "holds it and may be stopped or frozen: resume or end that "
                                "process, then rerun") from None
            time.sleep(POLL_S)
