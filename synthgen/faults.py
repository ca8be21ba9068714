"""Fault injection at the worker's real seams, for tests of the commit protocol.

`SYNTHGEN_FAULTS="point:shard:attempt,..."` with attempt a number or `*`. Points:
`raise` (an exception while sampling), `crash` (the process dies mid-shard),
`crash_after_upload` (data put, no marker), `crash_after_marker` (marker put, no reply),
`oom` (an accelerator out-of-memory error on every batch larger than 1).
A fault never fires unless the variable is set; the driver forwards it to its actors.
"""

from __future__ import annotations

import os

ENV = "SYNTHGEN_FAULTS"


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
    os._exit(17)
