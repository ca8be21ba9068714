"""Manifest files: rows of a csv, jsonl, json, yaml, parquet or txt file, local or at any URL."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from synthgen.errors import UserError
from synthgen.spec.load import load_yaml
from synthgen.storage.filesystem import MANIFEST_CAP, check_reachable, read_url
from synthgen.storage.store import read_parquet


def read_rows(uri: str, options: dict[str, Any], field_name: str, text_column: str) -> list[dict]:
    """Rows of a csv, jsonl, json, yaml, parquet or txt file, local or at any fsspec URL."""
    kind = uri.lower().rsplit(".", 1)[-1]
    readers = {"csv": _csv, "jsonl": _jsonl, "json": _json, "yaml": _yaml, "yml": _yaml,
               "parquet": _parquet, "txt": _txt}
    if kind not in readers:
        raise UserError(field_name, uri, f"unknown file type; use one of {', '.join(readers)}")
    check_reachable(uri, options, field_name)
    try:
        raw = read_url(uri, options, MANIFEST_CAP, field_name)
    except FileNotFoundError:
        raise UserError(field_name, uri, "no such file; check the path or URL") from None
    try:
        rows = readers[kind](raw, text_column)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parse failure is the user's file
        raise UserError(field_name, uri, f"could not be parsed as {kind}: {exc}") from None
    if not rows:
        raise UserError(field_name, uri, "the manifest file has no rows; add some")
    if not all(isinstance(r, dict) for r in rows):
        raise UserError(field_name, uri, "every row must be a mapping with named columns")
    return rows


def _text(raw: bytes) -> str:
    """UTF-8, without the byte-order mark some editors put first (it would glue to a name)."""
    return raw.decode("utf-8-sig")


def _csv(raw: bytes, _: str) -> list[dict]:
    return [dict(r) for r in csv.DictReader(io.StringIO(_text(raw)))]


def _jsonl(raw: bytes, _: str) -> list[dict]:
    return [json.loads(line) for line in _text(raw).splitlines() if line.strip()]


def _json(raw: bytes, _: str) -> list[dict]:
    data = json.loads(_text(raw))
    return data if isinstance(data, list) else [data]


def _yaml(raw: bytes, text_column: str) -> list[dict]:
    data = load_yaml(_text(raw)) or []
    if isinstance(data, dict):
        data = data.get("entries") or data.get("names") or data.get("items") or []
    return [{text_column: r} if isinstance(r, str) else r for r in data]


def _txt(raw: bytes, text_column: str) -> list[dict]:
    return [{text_column: line.strip()} for line in _text(raw).splitlines() if line.strip()]


def _parquet(raw: bytes, _: str) -> list[dict]:
    return read_parquet(raw).to_pylist()
