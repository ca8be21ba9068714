"""The job lock: one driver per output at a time.

`<uri>/_lock.json` names its holder (host, pid, a random token) and a heartbeat the holder
refreshes. A second driver refuses while the holder may be alive; a holder on this host whose
process is gone is taken over at once (a SIGKILLed driver must not block `resume`); anything
else needs `--takeover`. The heartbeat re-reads the lock, so a driver that was taken over from
finds out, and `check()` before finishing fences it off: it must not remove "orphans" that are
the new driver's files in flight.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from types import TracebackType
from typing import Any

from synthgen.errors import JobFailed, UserError
from synthgen.storage.layout import LOCK_FILE
from synthgen.storage.store import Store, json_bytes

log = logging.getLogger("synthgen")

HEARTBEAT_S = 30.0
STALE_BEATS = 3  # heartbeats missed before `status` calls a holder on another host silent
SETTLE_S = 1.0  # wait before reading back an unconditional write, to see a racing writer's


class JobLock:
    """Held from `acquire` to `release`; a context manager that releases on the way out."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.token = uuid.uuid4().hex
        self.lost = threading.Event()
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    @classmethod
    def acquire(cls, store: Store, takeover: bool = False) -> JobLock:
        lock = cls(store)
        lock._take(takeover)
        lock.thread = threading.Thread(target=lock._beat, name="job-lock", daemon=True)
        lock.thread.start()
        return lock

    def check(self) -> None:
        """Raise if another driver took the lock: this one must stop writing."""
        holder = self._read()
        if self.lost.is_set() or holder is None or holder.get("token") != self.token:
            self.lost.set()
            raise JobFailed(f"another driver took over {self.store.uri} ({describe(holder)}); "
                            "this one stops without finishing the job")

    def release(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        holder = self._read()
        if holder is not None and holder.get("token") == self.token:
            self.store.delete(LOCK_FILE)

    def __enter__(self) -> JobLock:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.release()
        except Exception as error:  # noqa: BLE001 - never hide the error that ended the job
            log.warning("could not release the job lock of %s: %s; the next driver on this host "
                        "takes it over, others need --takeover", self.store.uri, error)

    def _take(self, takeover: bool) -> None:
        record = self._record()
        if self.store.create_only(LOCK_FILE, json_bytes(record)):
            return self._confirm()
        holder = self._read()
        if holder is not None and holder.get("token") == self.token:
            return None  # our own write landed; only its reply was lost
        if holder is not None and not takeover and not _provably_dead(holder):
            raise UserError("output.uri", self.store.uri,
                            f"is in use by another synthgen driver ({describe(holder)}); wait for "
                            "it to finish, or if it is really dead, rerun with --takeover")
        log.warning("taking over the job lock of %s (%s)", self.store.uri, describe(holder))
        self.store.put_bytes(LOCK_FILE, json_bytes(record))
        return self._confirm(force=True)

    def _confirm(self, force: bool = False) -> None:
        """After an unconditional write, a racing writer's lock may land on top of ours."""
        if self.store.conditional and not force:
            return
        time.sleep(SETTLE_S)
        holder = self._read()
        if holder is None or holder.get("token") != self.token:
            raise UserError("output.uri", self.store.uri,
                            f"another synthgen driver took it at the same moment "
                            f"({describe(holder)}); let that one run")

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            try:
                holder = self._read()
                if holder is None or holder.get("token") != self.token:
                    log.error("lost the job lock of %s to %s", self.store.uri, describe(holder))
                    self.lost.set()
                    return
                self.store.put_bytes(LOCK_FILE, json_bytes({**holder, "heartbeat_at": time.time()}))
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("job lock heartbeat failed: %s: %s", type(exc).__name__, exc)

    def _read(self) -> dict[str, Any] | None:
        return read_lock(self.store)

    def _record(self) -> dict[str, Any]:
        now = time.time()
        return {"token": self.token, "host": socket.gethostname(), "pid": os.getpid(),
                "pid_started": _process_start(os.getpid()), "started_at": now,
                "heartbeat_at": now}


def _provably_dead(holder: dict[str, Any]) -> bool:
    """A holder on this host whose process no longer runs (or whose pid was reused)."""
    if holder.get("host") != socket.gethostname():
        return False
    pid = int(holder.get("pid", 0))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    started = holder.get("pid_started")
    return started is not None and _process_start(pid) not in (None, started)


def _process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to detect a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def read_lock(store: Store) -> dict[str, Any] | None:
    """The lock's record, or None when no driver holds it."""
    try:
        return store.read_json(LOCK_FILE)
    except FileNotFoundError:
        return None


def current_holder(store: Store) -> dict[str, Any] | None:
    """The driver holding the output's job lock (host, pid, times), without its token."""
    holder = read_lock(store)
    return None if holder is None else {k: v for k, v in holder.items() if k != "token"}


def describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "no holder"
    beat = time.time() - float(holder.get("heartbeat_at", 0))
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started_at", 0))))
    return (f"pid {holder.get('pid')} on host {holder.get('host')}, started {started}, "
            f"last heartbeat {beat:.0f} s ago")


def holder_state(holder: dict[str, Any]) -> str:
    """`dead`: on this host and its process is gone (any run takes the lock over); `silent`: no
    heartbeat for STALE_BEATS beats (maybe dead: --takeover); else `alive`."""
    if _provably_dead(holder):
        return "dead"
    if time.time() - float(holder.get("heartbeat_at", 0)) > STALE_BEATS * HEARTBEAT_S:
        return "silent"
    return "alive"
