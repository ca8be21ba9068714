"""What differs between two jobs: the dotted spec fields (then manifest fields) that change the
data, as `key: old -> new`. The fingerprint's fields are redacted (storage/redact.py), so no
credential is ever printed."""

from __future__ import annotations

import json
from typing import Any

from synthgen.spec.fingerprint import data_fields
from synthgen.spec.plan import Plan

MAX_VALUE = 60  # characters of a value shown, the rest elided
MAX_CHANGES = 8  # fields listed, then "and N more"
ABSENT = object()


def plan_diff(old: Plan, new: Plan) -> str:
    """`sampler.steps: 10 -> 20, classes.count: 100 -> 200` for the fields that differ."""
    changes = dotted_changes(data_fields(old.spec), data_fields(new.spec))  # redacted already
    if not changes:
        changes = dotted_changes(old.manifest.to_json(), new.manifest.to_json(), "manifest.")
    if not changes:
        return ("no spec or manifest field differs: another synthgen version fingerprinted that job "
                "(see the versions in its job.json)")
    shown = [f"{key}: {_show(a)} -> {_show(b)}" for key, a, b in changes[:MAX_CHANGES]]
    more = len(changes) - MAX_CHANGES
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def dotted_changes(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(dotted key, old value, new value) for every leaf that differs; dicts are walked, any
    other value (lists included) is compared whole. A key missing on one side shows as absent."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            changes += dotted_changes(old.get(key, ABSENT), new.get(key, ABSENT), f"{prefix}{key}.")
        return changes
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE - 3] + "..."
