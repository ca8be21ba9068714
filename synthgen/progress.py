"""The driver's progress: a rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType

from synthgen.worker import ShardResult

log = logging.getLogger("synthgen")

LOG_EVERY_S = 10.0


class Progress:
    """Images done/total, images/s and ETA; shards committed/total."""

    def __init__(self, total: int, done: int, shards_total: int, shards_done: int) -> None:
        self.total, self.committed = total, done
        self.shards_total, self.shards_done = shards_total, shards_done
        self.partial = 0
        self.started = time.monotonic()
        self.start_count = done
        self.last_log = 0.0
        self.bar = None

    def __enter__(self) -> Progress:
        if sys.stderr.isatty():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(
                TextColumn("[bold]images"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>7.1f} img/s"), TimeRemainingColumn(),
                TextColumn("shards {task.fields[shards]}"), transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task("run", total=self.total, completed=self.committed,
                                          rate=0.0, shards=self._shards())
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._render(force=True)
        if self.bar is not None:
            self.bar.stop()

    def in_flight(self, images: int) -> None:
        self.partial = images
        self._render()

    def shard_done(self, result: ShardResult) -> None:
        self.committed += result.rows
        self.shards_done += 1
        self.partial = 0
        self._render()

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return (self.committed + self.partial - self.start_count) / elapsed if elapsed else 0.0

    def _shards(self) -> str:
        return f"{self.shards_done}/{self.shards_total}"

    def _render(self, force: bool = False) -> None:
        done = min(self.total, self.committed + self.partial)
        rate = self.rate()
        if self.bar is not None:
            self.bar.update(self.task, completed=done, rate=rate, shards=self._shards())
            return
        now = time.monotonic()
        if not force and now - self.last_log < LOG_EVERY_S:
            return
        self.last_log = now
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        log.info("images %d/%d (%.0f%%), %.1f img/s, ETA %s, shards %s", done, self.total,
                 100 * done / max(1, self.total), rate, _duration(eta), self._shards())


def _duration(seconds: float) -> str:
    if seconds != seconds:
        return "?"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
