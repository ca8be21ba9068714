"""Error types: a user's mistake (exit 2, one line) versus a runtime failure (exit 1)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input caught before any model loads: the CLI prints one line and exits 2."""

    def __init__(self, field: str, value: object, fix: str) -> None:
        self.field, self.value, self.fix = field, value, fix
        super().__init__(f"{field}: {value!r} is not valid: {fix}")


class JobFailed(Exception):
    """The job ran but some shards failed for good: the CLI names them and exits 1."""
