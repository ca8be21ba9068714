"""Fault injection at the worker's real seams, for tests of the commit protocol.

`SYNTHGEN_FAULTS="point:shard:attempt,..."` with attempt a number or `*`. Points:
`raise` (an exception while sampling), `crash` (the process dies mid-shard),
`crash_after_upload` (data put, no marker), `crash_after_marker` (marker put, no reply),
`oom` (an accelerator out-of-memory error on every batch larger than 1), `hold` (wait
before each batch while the file named by SYNTHGEN_FAULTS_HOLD exists, so a test can act while
a job is surely still running, then let it go). A fault never fires unless the variable is
set; the driver forwards both variables to its actors.
"""

from __future__ import annotations

import os
import time

ENV = "SYNTHGEN_FAULTS"
HOLD_ENV = "SYNTHGEN_FAULTS_HOLD"
HOLD_MAX_S = 300.0


class InjectedFault(RuntimeError):
    """The exception the `raise` point throws."""


def armed(point: str, shard: int, attempt: int) -> bool:
    for rule in filter(None, os.environ.get(ENV, "").split(",")):
        name, _, rest = rule.partition(":")
        shard_text, _, attempt_text = rest.partition(":")
        if name != point or shard_text not in ("*", str(shard)):
            continue
        if attempt_text in ("", "*", str(attempt)):
            return True
    return False


def fire(point: str, shard: int, attempt: int) -> None:
    """Raise or die here if a rule names this point, shard and attempt."""
    if not armed(point, shard, attempt):
        return
    if point == "raise":
        raise InjectedFault(f"injected failure in shard {shard}, attempt {attempt}")
    if point == "hold":
        deadline = time.monotonic() + HOLD_MAX_S
        while os.path.exists(os.environ.get(HOLD_ENV, "")) and time.monotonic() < deadline:
            time.sleep(0.1)
        return
    os._exit(17)
