"""Ctrl-C during a run: raised as Python raises it, and remembered for the executor's loop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

# Ctrl-C, remembered until the executor's loop sees it. Python's default handler raises
# KeyboardInterrupt wherever the main thread is. Inside Ray's blocking calls (`ray.wait`,
# `ray.get`) Ray's signal check catches that exception and turns it into a status, and a path
# that drops the status drops the Ctrl-C with it: an interrupted run then goes on to the end as
# if nothing was pressed (seen in CI). While a run is in progress this handler also sets a flag,
# which the executor's loop raises again at its next turn.
_pressed = threading.Event()


@contextmanager
def remembering_ctrl_c() -> Iterator[None]:
    """Within the block, Ctrl-C raises KeyboardInterrupt as by default and is remembered."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    _pressed.clear()
    previous = signal.signal(signal.SIGINT, _on_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _pressed.clear()


def pressed() -> KeyboardInterrupt | None:
    """The interrupt to stop with, once Ctrl-C was pressed in a `remembering_ctrl_c` block."""
    return KeyboardInterrupt() if _pressed.is_set() else None


def _on_ctrl_c(signum: int, frame: FrameType | None) -> None:
    _pressed.set()
    raise KeyboardInterrupt
