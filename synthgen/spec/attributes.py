"""Attribute axes: named lists of values (with optional weights) that templates name as `{axis}`.

Axes come inline (`classes.attributes: {background: [on a beach, {value: in a forest, weight: 2}]}`),
per entry (`entries[].attributes`, which adds or overrides axes), or from a file: a YAML or JSON
mapping like the inline one, or csv / jsonl / parquet rows with columns `axis`, `value` and an
optional `weight`. They are resolved once, on the driver, into the manifest's entries.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from synthgen.errors import UserError
from synthgen.spec.load import load_yaml, yaml_problem
from synthgen.spec.manifest_files import read_rows
from synthgen.storage.filesystem import MANIFEST_CAP, read_url

# (axis name, ((value, weight), ...)), in the order given
Axis = tuple[str, tuple[tuple[str, float], ...]]

# Placeholders a class template may name besides its axes; axes may not take these names.
RESERVED = ("name", "description", "synonym", "caption", "negative_prompt")
AXIS_NAME = re.compile(r"[A-Za-z_]\w*")


def parse_axes(value: Any, field: str, options: dict[str, Any] | None = None) -> tuple[Axis, ...]:
    """Axes from an inline mapping or a file (a string: its path or URL)."""
    if value is None:
        return ()
    if isinstance(value, str) and value.strip().startswith("{"):
        value = _json(value, field)  # a csv column holding the axes as JSON
    if isinstance(value, str):
        value = _axes_file(value, field, options or {})
    if not isinstance(value, dict):
        raise UserError(field, value, "give a mapping of axis name -> list of values, or a file")
    return tuple(_axis(str(name), values, f"{field}.{name}") for name, values in value.items())


def merge_axes(base: tuple[Axis, ...], own: tuple[Axis, ...]) -> tuple[Axis, ...]:
    """An entry's own axes add to the manifest's, or replace the axis of the same name."""
    merged = dict(base)
    merged.update(dict(own))
    return tuple(merged.items())


def _axis(name: str, values: Any, field: str) -> Axis:
    if not AXIS_NAME.fullmatch(name) or name in RESERVED:
        raise UserError(field, name, "an axis name is a word (letters, digits, _) and not one of "
                        f"{', '.join(RESERVED)}; rename the axis")
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list | tuple) or not values:
        raise UserError(field, values, "the axis is empty; give it at least one value")
    return name, tuple(_value(v, f"{field}[{i}]") for i, v in enumerate(values))


def _value(item: Any, field: str) -> tuple[str, float]:
    weight: Any = 1.0
    if isinstance(item, dict):
        unknown = set(item) - {"value", "weight"}
        if unknown or "value" not in item:
            raise UserError(field, item, "write a value, or {value: ..., weight: 2}")
        item, weight = item["value"], item.get("weight", 1.0)
    if item is None or (isinstance(item, str) and not item.strip()) or isinstance(item, dict | list):
        raise UserError(field, item, "an axis value is a non-empty text")
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        raise UserError(f"{field}.weight", weight, "a weight is a number > 0")
    return str(item).strip(), float(weight)


def _axes_file(uri: str, field: str, options: dict[str, Any]) -> Any:
    kind = uri.lower().rsplit(".", 1)[-1]
    if kind in ("yaml", "yml", "json"):
        try:
            raw = read_url(uri, options, MANIFEST_CAP, field)
        except FileNotFoundError:
            raise UserError(field, uri, "no such file; check the path or URL") from None
        try:
            data = load_yaml(raw)  # JSON is YAML
        except yaml.YAMLError as exc:
            raise UserError(field, uri, yaml_problem(exc)) from None
        return data
    axes: dict[str, list[Any]] = {}
    for i, row in enumerate(read_rows(uri, options, field, text_column="value")):
        if not row.get("axis") or row.get("value") in (None, ""):
            raise UserError(f"{field}[{i}]", row, "every row needs the columns axis and value")
        weight = row.get("weight")
        value = row["value"] if weight in (None, "") else {"value": row["value"], "weight": _float(weight)}
        axes.setdefault(str(row["axis"]).strip(), []).append(value)
    return axes


def _float(value: Any) -> Any:
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(field, text, f"not valid JSON: {exc}") from None
