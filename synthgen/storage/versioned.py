"""The base of every record synthgen writes under an output: typed, strict, versioned.

job.json, commit markers, the lock, failure records, `_SUCCESS` and sweep.json are each a
`Record`. A record carries `format_version`; a file without one was written before records
were versioned and reads as version 1. A reader refuses a file from a newer synthgen with one
line (a UserError: exit 2) rather than misreading it, and reads every older version. Anything
else that is not the record (not JSON, too large, too deep, an unknown or wrong-typed field) is
a CorruptRecord, which each caller turns into its own message (verify names the file).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from synthgen.errors import UserError
from synthgen.storage.store import json_bytes

MAX_DEPTH = 32  # nesting of JSON objects and lists in any record
READ = {"read": True}  # the validation context of a record read from a file


class CorruptRecord(ValueError):
    """A file synthgen reads back that is not what synthgen writes there."""


class Record(BaseModel):
    """One on-disk record. Subclasses set FORMAT (the version this synthgen writes) and may
    raise MAX_BYTES; `upgrade` turns an older version's fields into the current ones."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    FORMAT: ClassVar[int] = 1
    MAX_BYTES: ClassVar[int] = 1 << 20
    format_version: int = Field(default=1, ge=1)  # what a record made here is: FORMAT (below)

    @model_validator(mode="before")
    @classmethod
    def _made_here(cls, data: Any, info: ValidationInfo) -> Any:
        """A record made in memory is of the version this synthgen writes, as it will be read
        back; one read from a file without `format_version` stays version 1 (`from_json`)."""
        if isinstance(data, dict) and "format_version" not in data and not info.context:
            return {**data, "format_version": cls.FORMAT}
        return data

    def to_json(self) -> dict[str, Any]:
        return {**self.model_dump(mode="json"), "format_version": self.FORMAT}

    def to_bytes(self) -> bytes:
        return json_bytes(self.to_json())

    @classmethod
    def from_bytes(cls, blob: bytes, where: str = "a record") -> Self:
        """The record in `blob` (read from `where`, named in errors)."""
        if len(blob) > cls.MAX_BYTES:
            raise CorruptRecord(f"{len(blob):,} bytes, more than a {cls.__name__} ever holds")
        try:
            data = json.loads(blob)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise CorruptRecord(f"not valid JSON ({type(exc).__name__})") from None
        return cls.from_json(data, where)

    @classmethod
    def from_json(cls, data: Any, where: str = "a record") -> Self:
        if not isinstance(data, dict):
            raise CorruptRecord("not a JSON object")
        if _depth(data) > MAX_DEPTH:
            raise CorruptRecord(f"nested deeper than {MAX_DEPTH} levels")
        version = data.get("format_version", 1)
        if isinstance(version, int) and not isinstance(version, bool) and version > cls.FORMAT:
            raise newer_format(where, version, cls.FORMAT)
        try:
            return cls.model_validate(cls.upgrade(data), context=READ)
        except ValidationError as exc:
            raise CorruptRecord(_first_problem(exc)) from None

    @classmethod
    def upgrade(cls, data: dict[str, Any]) -> dict[str, Any]:
        """An older version's fields as this version's; the identity where nothing changed."""
        return data


def newer_format(where: str, version: int, known: int) -> UserError:
    return UserError("file", where, f"was written by a newer synthgen (format_version {version}; "
                     f"this one reads up to {known}): upgrade synthgen-images to read it")


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "the record"
    return f"{where!r}: {error['msg']}"


def _depth(value: Any, level: int = 0) -> int:
    """How deeply `value` nests, cut short once past MAX_DEPTH."""
    if level > MAX_DEPTH or not isinstance(value, dict | list):
        return level
    items = value.values() if isinstance(value, dict) else value
    return max((_depth(v, level + 1) for v in items), default=level + 1)
