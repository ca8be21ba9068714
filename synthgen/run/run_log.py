"""The run log: what the driver logged during one run, kept beside the output in `_logs/`.

Lines are redacted before they are stored: values of secret-looking environment variables,
`secret=...`-style pairs and credentials inside URLs never reach the file. The whole file is
put again every UPLOAD_EVERY_S and at the end, so that it works the same on object stores
(no appends there) and a crashed driver still leaves most of its log behind.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from synthgen import __version__
from synthgen.storage.layout import LOGS_DIR
from synthgen.storage.redact import text_redactor
from synthgen.storage.store import Store

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
