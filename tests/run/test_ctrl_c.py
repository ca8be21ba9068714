"""Ctrl-C during a run is remembered, so that a KeyboardInterrupt swallowed on the way (Ray's
signal check turns it into a status inside its blocking calls) still stops the run."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest

from synthgen.engine import interrupts


def test_a_swallowed_ctrl_c_is_still_pressed_until_the_block_ends() -> None:
    default = signal.getsignal(signal.SIGINT)
    with interrupts.remembering_ctrl_c():
        assert interrupts.pressed() is None
        with contextlib.suppress(KeyboardInterrupt):  # as Ray's signal check does; its status may be dropped
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs as this call returns
        assert isinstance(interrupts.pressed(), KeyboardInterrupt)
    assert interrupts.pressed() is None
    assert signal.getsignal(signal.SIGINT) is default


def test_ctrl_c_in_the_block_raises_keyboard_interrupt_as_by_default() -> None:
    with pytest.raises(KeyboardInterrupt), interrupts.remembering_ctrl_c():
        os.kill(os.getpid(), signal.SIGINT)
