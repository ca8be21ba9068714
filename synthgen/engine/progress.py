"""The driver's progress: a rich bar on a terminal or in a notebook, plain log lines otherwise.

One bar over images (images/s, ETA), shards committed/total and failures; with per_worker,
each worker's throughput too. Every LOG_EVERY_S the same numbers go to the log as one line
(to the run log only while the bar is on screen). A notebook shows the bar when ipywidgets is
installed (rich draws it in a widget); without it, and in a file or pipe, the plain lines show,
with no control codes.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.file_proxy import FileProxy
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as RichProgress

from synthgen import __version__
from synthgen.engine.job import ShardAddress, ShardResult
from synthgen.storage.layout import LOGS_DIR
from synthgen.storage.redact import text_redactor
from synthgen.storage.store import Store

log = logging.getLogger("synthgen")

LOG_EVERY_S = 10.0


class Progress:
    """Images done/total, images/s and ETA; shards committed/total; failed attempts."""

    def __init__(self, total: int, done: int, shards_total: int, shards_done: int,
                 per_worker: bool = False) -> None:
        self.total, self.committed = total, done
        self.shards_total, self.shards_done = shards_total, shards_done
        self.partial = 0
        self.retries = self.failed_shards = 0
        self.per_worker = per_worker
        self.workers: dict[Any, WorkerRate] = {}
        self.started = time.monotonic()
        self.start_count = done
        self.last_log = 0.0
        self.bar: RichProgress | None = None
        self.moved: list[tuple[logging.StreamHandler, Any]] = []

    def __enter__(self) -> Progress:
        if live_bar():
            self.bar = bar = RichProgress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>7.1f} img/s"), TimeRemainingColumn(),
                TextColumn("shards {task.fields[shards]}"), TextColumn("{task.fields[failures]}"),
                console=Console(stderr=True), transient=False,
            )
            bar.start()
            self.moved = logs_above_bar()
            self.task = bar.add_task("images", total=self.total, completed=self.committed,
                                          rate=0.0, shards=self._shards(), failures="")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._render(force=True)
        if self.bar is not None:
            for handler, stream in self.moved:
                handler.setStream(stream)
            self.bar.stop()

    def in_flight(self, images: int) -> None:
        self.partial = images
        self._render()

    def shard_done(self, result: ShardResult) -> None:
        self.committed += result.rows
        self.shards_done += 1
        self.partial = 0
        self._render()

    def retried(self, shard: ShardAddress, error: str) -> None:
        self.retries += 1
        self._render()

    def failed(self, shard: ShardAddress) -> None:
        self.failed_shards += 1
        self._render()

    def worker_done(self, worker: Any, result: ShardResult) -> None:
        """Per-worker throughput: rows over the generation seconds of the shards it committed."""
        if not self.per_worker:
            return
        if worker not in self.workers:
            self.workers[worker] = WorkerRate(f"worker {len(self.workers)}")
            if self.bar is not None:
                self.workers[worker].task = self.bar.add_task(
                    self.workers[worker].name, total=None, rate=0.0, shards="0", failures="")
        rate = self.workers[worker]
        rate.rows += result.rows
        rate.seconds += result.seconds
        rate.shards += 1
        if self.bar is not None:
            self.bar.update(rate.task, completed=rate.rows, rate=rate.rate(), shards=str(rate.shards))

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.committed + self.partial - self.start_count) / elapsed if elapsed else 0.0

    def _shards(self) -> str:
        return f"{self.shards_done}/{self.shards_total}"

    def _failures(self) -> str:
        return (f"failed attempts {self.retries + self.failed_shards}"
                + (f", shards given up {self.failed_shards}" if self.failed_shards else ""))

    def _render(self, force: bool = False) -> None:
        done = min(self.total, self.committed + self.partial)
        rate = self.rate()
        if self.bar is not None:
            failures = self._failures() if self.retries or self.failed_shards else ""
            self.bar.update(self.task, completed=done, rate=rate, shards=self._shards(),
                            failures=failures)
        now = time.monotonic()
        if not force and now - self.last_log < LOG_EVERY_S:
            return
        self.last_log = now
        out = logging.getLogger(FILE_ONLY) if self.bar is not None else log
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        out.info("images %d/%d (%.0f%%), %.1f img/s, ETA %s, shards %s, %s", done, self.total,
                 100 * done / max(1, self.total), rate, format_duration(eta), self._shards(),
                 self._failures())
        if self.workers:
            out.info("per worker: %s", ", ".join(f"{w.name} {w.rate():.1f} img/s ({w.shards} shards)"
                                                 for w in self.workers.values()))


def logs_above_bar() -> list[tuple[logging.StreamHandler, Any]]:
    """Point the handlers that log to the terminal's stderr at the live bar's stderr proxy (rich's
    FileProxy, installed by the bar's start): a record then prints on its own line above the bar,
    not glued after the bar's last character. Returns each handler moved, with its own stream."""
    proxy = sys.stderr
    if not isinstance(proxy, FileProxy):  # a notebook's widget: nothing shares its line
        return []
    terminal = proxy.rich_proxied_file
    handlers = {h for name in ("", "synthgen") for h in logging.getLogger(name).handlers
                if isinstance(h, logging.StreamHandler) and h.stream is terminal}
    for handler in handlers:
        handler.setStream(proxy)
    return [(handler, terminal) for handler in handlers]


def live_bar() -> bool:
    """A bar that redraws itself: on a terminal, or in a notebook that can show rich's widget."""
    if sys.stderr.isatty():
        return True
    return Console().is_jupyter and importlib.util.find_spec("ipywidgets") is not None


@contextmanager
def console_lines() -> Iterator[None]:
    """Within the block, the `synthgen` log's INFO lines (progress, what is committed) reach
    stderr when the caller configured no logging (a script or notebook, not the CLI); Python
    would otherwise show warnings only."""
    logger = logging.getLogger("synthgen")
    if logger.hasHandlers():
        yield
        return
    handler = logging.StreamHandler()  # sys.stderr as it is now: a notebook replaces it
    handler.setFormatter(RedactingFormatter("synthgen: %(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


class RedactingFormatter(logging.Formatter):
    """Lines pass the run log's redaction: no secret reaches a notebook either."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt)
        self.redact = text_redactor()  # the environment's secrets as they are when a run starts

    def format(self, record: logging.LogRecord) -> str:
        return str(self.redact(super().format(record)))


@dataclass
class WorkerRate:
    name: str
    rows: int = 0
    seconds: float = 0.0
    shards: int = 0
    task: Any = None

    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def format_duration(seconds: float) -> str:
    """90.5 -> "1m30s"; NaN (not known yet) -> "?"."""
    if seconds != seconds:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


# The run log: what the driver logged during one run, kept beside the output in `_logs/`.
#
# Lines are redacted before they are stored: values of secret-looking environment variables,
# `secret=...`-style pairs and credentials inside URLs never reach the file. The whole file is
# put again every UPLOAD_EVERY_S and at the end, so that it works the same on object stores
# (no appends there) and a crashed driver still leaves most of its log behind.
UPLOAD_EVERY_S = 30.0
FILE_ONLY = "synthgen.runlog"  # records sent here go to the run log only, not to the console
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

logging.getLogger(FILE_ONLY).propagate = False


class RunLog(logging.Handler):
    """Collects redacted lines and puts the whole file to the store now and then."""

    def __init__(self, store: Store, rel: str) -> None:
        super().__init__(logging.INFO)
        self.store, self.rel = store, rel
        self.redact = text_redactor()
        self.lines: list[str] = []
        self.uploaded = 0.0
        self.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.redact(self.format(record)))
            if time.monotonic() - self.uploaded >= UPLOAD_EVERY_S:
                self.upload()
        except Exception:  # noqa: BLE001 - logging must never break the run
            self.handleError(record)

    def upload(self) -> None:
        self.uploaded = time.monotonic()
        self.store.put_bytes(self.rel, ("\n".join(self.lines) + "\n").encode())


@contextmanager
def run_log(store: Store, job_id: str) -> Iterator[str]:
    """Keep the `synthgen` loggers' records of this run in `_logs/run-<UTC time>-<id>.log`."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    rel = f"{LOGS_DIR}/run-{stamp}-{uuid.uuid4().hex[:6]}.log"
    handler = RunLog(store, rel)
    loggers = [logging.getLogger("synthgen"), logging.getLogger(FILE_ONLY)]
    logging.getLogger(FILE_ONLY).setLevel(logging.INFO)
    for logger in loggers:
        logger.addHandler(handler)
    note = logging.getLogger(FILE_ONLY)
    note.info("synthgen %s, job %s, output %s", __version__, job_id, store.uri)
    note.info("command: %s", " ".join(sys.argv))
    note.info("host %s, pid %d, python %s", socket.gethostname(), os.getpid(), sys.version.split()[0])
    try:
        yield rel
    except BaseException as exc:
        note.error("run ended with %s: %s", type(exc).__name__, exc)
        raise
    else:
        note.info("run ended")
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        try:
            handler.upload()
        except OSError as exc:
            logging.getLogger("synthgen").warning("could not store the run log %s: %s", rel, exc)

