"""Training reports go to stderr, line by line, so that a long run shows its progress."""

from __future__ import annotations

import sys


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
