"""Per-sample value forms of the spec: a fixed value, `{uniform: [lo, hi]}` or `{choice: [...]}`.

The forms are parsed here once (before pydantic's own validation, so that an error names the
field and never a union member), and drawn in spec/sample_draws.py from the sample's seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

FORMS = ("uniform", "choice")


class Uniform(BaseModel):
    """A value drawn uniformly from [lo, hi]."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    uniform: tuple[float, float]


class Choice(BaseModel):
    """One of the listed values, each equally likely."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    choice: tuple[Any, ...]


def per_sample_schema(item: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A field's JSON Schema edit: its plain value and its choice's values are `item` (the shared
    Choice model takes any values; parse_number and parse_text check them per field)."""

    def edit(schema: dict[str, Any]) -> None:
        choice = {"type": "object", "properties": {"choice": {"type": "array", "items": item, "minItems": 1}},
                  "required": ["choice"], "additionalProperties": False}
        schema["anyOf"] = [choice if "Choice" in option.get("$ref", "")  # the ref's name while generating
                           else item if option.get("type") == item["type"] else option
                           for option in schema["anyOf"]]

    return edit


def describe(value: Any) -> str:
    """A value or a distribution in words, for the card and `synthgen show`."""
    if isinstance(value, Uniform):
        return f"uniform in [{value.uniform[0]:g}, {value.uniform[1]:g}] per sample"
    if isinstance(value, Choice):
        return "one of " + ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value.choice) \
            + " per sample"
    return str(value)


def _form(value: Any) -> tuple[str, Any] | None:
    """(form name, its argument) for a mapping; None for a plain value."""
    if isinstance(value, Uniform | Choice):
        return None
    if not isinstance(value, dict):
        return None
    if len(value) != 1 or next(iter(value)) not in FORMS:
        keys = ", ".join(map(str, value)) or "(none)"
        raise ValueError(f"unknown distribution {keys!r}; write a value, {{uniform: [lo, hi]}} "
                         "or {choice: [a, b, ...]}")
    return next(iter(value.items()))


def parse_number(value: Any, integer: bool = False, limit: float | None = None) -> Any:
    """A number in [0, limit], or a Uniform / Choice of them; `integer`: steps, integers in
    1..limit that take a value or a choice only."""
    form = _form(value)
    if form is None:
        _check_number(value, integer, limit)
        return value
    name, arg = form
    if name == "uniform":
        if integer:
            raise ValueError("takes a value or {choice: [...]}, not a uniform range")
        if not isinstance(arg, list | tuple) or len(arg) != 2 or not all(_is_number(v) for v in arg):
            raise ValueError(f"uniform takes [lo, hi], two numbers (got {arg!r})")
        lo, hi = float(arg[0]), float(arg[1])
        if lo < 0 or hi < 0:
            raise ValueError(f"the range [{lo:g}, {hi:g}] has a negative value; use values >= 0")
        if lo > hi:
            raise ValueError(f"the range [{lo:g}, {hi:g}] has lo > hi; write it as [{hi:g}, {lo:g}]")
        if limit is not None and hi > limit:
            raise ValueError(f"the range [{lo:g}, {hi:g}] goes past {limit:g}; keep it within [0, {limit:g}]")
        return Uniform(uniform=(lo, hi))
    values = _choices(arg)
    for v in values:
        _check_number(v, integer, limit)
    return Choice(choice=tuple(int(v) if integer else float(v) for v in values))


def parse_text(value: Any) -> Any:
    """A string (or None), or a Choice of strings: negative prompts."""
    form = _form(value)
    if form is None:
        return value
    name, arg = form
    if name != "choice":
        raise ValueError("a text takes a value or {choice: [...]}, not a uniform range")
    values = _choices(arg)
    if not all(isinstance(v, str) for v in values):
        raise ValueError(f"choice takes a list of strings (got {arg!r})")
    return Choice(choice=tuple(values))


def _check_number(value: Any, integer: bool, limit: float | None) -> None:
    if isinstance(value, Uniform | Choice):
        return
    if isinstance(value, bool):
        raise ValueError("a boolean where a number belongs; write the value itself")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if not _is_number(value) or value < 0 or (integer and (int(value) != value or value <= 0)):
        raise ValueError(f"{value!r} is not {'a positive integer' if integer else 'a number >= 0'}")
    if limit is not None and value > limit:
        raise ValueError(f"{value!r} is more than {limit:g}")


def _choices(arg: Any) -> list[Any]:
    if not isinstance(arg, list | tuple) or not arg:
        raise ValueError(f"choice takes a non-empty list (got {arg!r})")
    return list(arg)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
