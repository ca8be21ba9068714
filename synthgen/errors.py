"""Error types: a user's mistake (exit 2, one line) versus a runtime failure (exit 1)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input caught before any model loads: the CLI prints one line and exits 2."""

    def __init__(self, field: str, value: object, fix: str) -> None:
        self.field, self.value, self.fix = field, value, fix
        super().__init__(f"{field}: {value!r} is not valid: {fix}")

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        """Picklable with its fields: an actor's UserError reaches the driver as one."""
        return type(self), (self.field, self.value, self.fix)


class ModelChanged(UserError):
    """The model resolves to another revision than the one the job was made with."""

    def __init__(self, source: str, pinned: str, found: str) -> None:
        UserError.__init__(self, "model.source", source,
                           f"resolves to revision {found}, but this job was made with {pinned}: "
                           "a job is one model; restore that model, or start a new output")
        self.pinned, self.found = pinned, found

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        return type(self), (str(self.value), self.pinned, self.found)


class JobFailed(Exception):
    """The job ran but some shards failed for good: the CLI names them and exits 1."""


def user_error_in(exc: BaseException | None) -> UserError | None:
    """The UserError inside an exception a remote call raised (Ray wraps it, and its wrapper may
    subclass it), rebuilt plain so it prints as one line; None when there is none."""
    for _ in range(4):
        if exc is None:
            return None
        if isinstance(exc, UserError):
            return UserError(exc.field, exc.value, exc.fix)
        exc = getattr(exc, "cause", None) or exc.__cause__
    return None
