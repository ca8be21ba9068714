"""The job lock: one driver per output at a time, fenced by the holder's token.

`<uri>/_lock.json` names its holder (host, boot, pid namespace, pid, a random token) and a
heartbeat the holder refreshes. A second driver refuses while the holder may be alive; a holder
provably dead (same host, same boot, same pid namespace, its process gone) is taken over at
once, so a SIGKILLed driver does not block `resume`; anything else needs `--takeover`. A pid is
never trusted across containers: another pid namespace (or boot) proves nothing.

Fencing: every change of the lock (takeover, heartbeat, release) is a compare-and-swap on the
version read (storage/conditional.py), so it never overwrites or deletes another holder's lock.
A heartbeat that finds another token sets `lost`: the driver stops dispatching, its own commits
check the token first (`check_fence`), and it never finishes the job.
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
from synthgen.storage.conditional import delete_if, read_tagged, replace_if
from synthgen.storage.layout import LOCK_FILE
from synthgen.storage.store import Store, json_bytes
from synthgen.storage.versioned import CorruptRecord, Record

log = logging.getLogger("synthgen")

HEARTBEAT_S = float(os.environ.get("SYNTHGEN_LOCK_HEARTBEAT_S", "30"))  # how soon a takeover is seen
STALE_BEATS = 3  # heartbeats missed before `status` calls a holder on another host silent
SETTLE_S = 1.0  # wait before reading back an unconditional write, to see a racing writer's


class LockRecord(Record):
    """`_lock.json`: who holds the output. Fields other than the token may be absent in a lock
    another tool or a test wrote; such a holder is never provably dead."""

    token: str | None = None
    host: str | None = None
    boot_id: str | None = None
    pid_ns: str | None = None
    pid: int | None = None
    pid_started: int | None = None
    started_at: float = 0.0
    heartbeat_at: float = 0.0


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
        if self.lost.is_set():
            raise lost_lock(self.store, self._read())
        try:
            check_fence(self.store, self.token)
        except JobFailed:
            self.lost.set()
            raise

    def release(self) -> None:
        """Delete the lock only if it is still this holder's version (compare-and-swap)."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        current = read_tagged(self.store, LOCK_FILE)
        if current is not None and _token(current[0]) == self.token:
            delete_if(self.store, LOCK_FILE, current[1])

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
        current = read_tagged(self.store, LOCK_FILE)
        holder = _parse(current[0]) if current else None
        if holder is not None and holder.get("token") == self.token:
            return None  # our own write landed; only its reply was lost
        if holder is not None and not takeover and not _provably_dead(holder):
            raise UserError("output.uri", self.store.uri,
                            f"is in use by another synthgen driver ({describe(holder)}); wait for "
                            "it to finish, or if it is really dead, rerun with --takeover")
        log.warning("taking over the job lock of %s (%s)", self.store.uri, describe(holder))
        data = json_bytes(record)
        taken = (replace_if(self.store, LOCK_FILE, data, current[1]) if current
                 else self.store.create_only(LOCK_FILE, data)) or self._landed(data)
        if not taken:
            raise UserError("output.uri", self.store.uri, "another synthgen driver took it at the "
                            f"same moment ({describe(self._read())}); let that one run")
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
                if not self._beat_once():
                    log.error("lost the job lock of %s to %s: no more shards are dispatched or "
                              "committed by this driver", self.store.uri, describe(self._read()))
                    self.lost.set()
                    return
            except Exception as exc:  # noqa: BLE001 - a missed beat is retried at the next one
                log.warning("job lock heartbeat failed: %s: %s", type(exc).__name__, exc)

    def _beat_once(self) -> bool:
        """Refresh the heartbeat if the lock is still ours, as a compare-and-swap."""
        current = read_tagged(self.store, LOCK_FILE)
        holder = _parse(current[0]) if current else None
        if current is None or holder is None or holder.get("token") != self.token:
            return False
        beat = json_bytes({**holder, "heartbeat_at": time.time()})
        return replace_if(self.store, LOCK_FILE, beat, current[1]) or self._landed(beat)

    def _landed(self, data: bytes) -> bool:
        """A swap refused on its retry: the first try landed and only its reply was lost."""
        current = read_tagged(self.store, LOCK_FILE)
        return current is not None and current[0] == data

    def _read(self) -> dict[str, Any] | None:
        return read_lock(self.store)

    def _record(self) -> dict[str, Any]:
        now = time.time()
        return LockRecord(token=self.token, host=socket.gethostname(), boot_id=_boot_id(),
                          pid_ns=_pid_namespace(), pid=os.getpid(),
                          pid_started=_process_start(os.getpid()), started_at=now,
                          heartbeat_at=now).to_json()


def check_fence(store: Store, token: str) -> None:
    """Raise unless the lock still names `token`: called before every commit of a holder."""
    holder = read_lock(store)
    if holder is None or holder.get("token") != token:
        raise lost_lock(store, holder)


def lost_lock(store: Store, holder: dict[str, Any] | None) -> JobFailed:
    return JobFailed(f"this driver lost the job lock of {store.uri} ({describe(holder)}); it "
                     "stopped dispatching and commits nothing more")


def _provably_dead(holder: dict[str, Any]) -> bool:
    """A holder whose process no longer runs (or whose pid was reused), provably: the same host,
    the same boot and the same pid namespace. A container on this host sharing its name (host
    networking, a reused pod name) has another pid namespace: its pids mean nothing here."""
    if holder.get("host") != socket.gethostname():
        return False
    if holder.get("boot_id") != _boot_id() or holder.get("pid_ns") != _pid_namespace():
        return False
    if _boot_id() is None or _pid_namespace() is None:
        return False
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
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


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _parse(data: bytes) -> dict[str, Any] | None:
    """A lock record; a corrupt one (a torn or foreign write) reads as a holder of no token, and
    one of a newer synthgen is refused (UserError)."""
    try:
        return LockRecord.from_bytes(data, LOCK_FILE).model_dump(mode="json", exclude_unset=True)
    except CorruptRecord:
        return {"token": None}


def _token(data: bytes) -> Any:
    return (_parse(data) or {}).get("token")


def read_lock(store: Store) -> dict[str, Any] | None:
    """The lock's record, or None when no driver holds it."""
    try:
        return _parse(store.read_bytes(LOCK_FILE))
    except FileNotFoundError:
        return None


def current_holder(store: Store) -> dict[str, Any] | None:
    """The driver holding the output's job lock (host, pid, times), without its token."""
    holder = read_lock(store)
    return None if holder is None else {k: v for k, v in holder.items()
                                        if k not in ("token", "format_version")}


def describe(holder: dict[str, Any] | None) -> str:
    if holder is None:
        return "no holder"
    try:
        beat = time.time() - float(holder.get("heartbeat_at", 0))
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(holder.get("started_at", 0))))
    except (TypeError, ValueError, OverflowError, OSError):
        return "a lock record synthgen cannot read"
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
