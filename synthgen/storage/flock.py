"""Every flock synthgen waits for, waited for a bounded time: a holder that is stopped (SIGSTOP,
a frozen container) never releases it, and a silent wait for ever looks like a hang."""

from __future__ import annotations

import fcntl
import time

from synthgen.errors import UserError

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
