"""`synthgen show`: a human view of an output. Rich tables on a terminal, plain text otherwise.

Everything comes from job.json, the commit markers and the failure records: it works on a
finished output and on one still being written.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from synthgen.card import human_bytes
from synthgen.status import committed_markers, job_status
from synthgen.storage import JOB_FILE, Store

MAX_CLASS_ROWS = 50


@dataclass(frozen=True)
class Section:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]


def sections(store: Store) -> list[Section]:
    state = job_status(store)
    record = store.read_json(JOB_FILE)
    markers = committed_markers(store)
    result = [_overview(state, record), _classes(state), _shards(markers),
              _provenance(record)]
    if state["failed_shards"]:
        result.append(Section("Failed shards", ("shard", "attempts", "error"),
                              [(str(f["shard"]), str(f["attempts"]), str(f["error"]))
                               for f in state["failed_shards"]]))
    return result


def show(store: Store, echo: Callable[[str], None] = print, terminal: bool | None = None) -> None:
    """Rich tables when `terminal` (by default: when stdout is one), else plain text to `echo`."""
    parts = sections(store)
    if sys.stdout.isatty() if terminal is None else terminal:
        _rich(parts)
    else:
        for part in parts:
            echo(plain(part))


def plain(section: Section) -> str:
    rows = [section.columns, *section.rows] if any(section.columns) else section.rows
    widths = [max(len(r[i]) for r in rows) for i in range(len(section.columns))]
    lines = [section.title]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _rich(parts: list[Section]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for part in parts:
        table = Table(title=part.title, title_justify="left", show_header=any(part.columns))
        for column in part.columns:
            table.add_column(column)
        for row in part.rows:
            table.add_row(*row)
        console.print(table)


def _overview(state: dict[str, Any], record: dict[str, Any]) -> Section:
    spec = record["spec"]
    done = "complete" if state["complete"] else "incomplete"
    return Section(f"{spec['name']} ({done})", ("", ""), [
        ("output", state["uri"]),
        ("job_id", state["job_id"]),
        ("images", f"{state['samples_committed']} of {state['samples_total']}"),
        ("shards", f"{state['shards_committed']} of {state['shards_total']} committed"),
        *([("prompts", str(len(record["manifest"]["entries"])))] if spec.get("prompts") else []),
        ("failed shards", str(len(state["failed_shards"]))),
    ])


def _classes(state: dict[str, Any]) -> Section:
    items = list(state["per_class"].items())
    rows = [(name, str(n["committed"]), str(n["planned"])) for name, n in items[:MAX_CLASS_ROWS]]
    if len(items) > MAX_CLASS_ROWS:
        rows.append((f"... {len(items) - MAX_CLASS_ROWS} more", "", ""))
    return Section("Images per class", ("class", "committed", "planned"), rows)


def _shards(markers: dict[int, dict[str, Any]]) -> Section:
    """Time per shard and throughput, from the seconds and timestamps in the markers."""
    if not markers:
        return Section("Shards", ("", ""), [("committed", "none yet")])
    done = list(markers.values())
    seconds = [float(m.get("seconds", 0.0)) for m in done]
    rows = sum(int(m["rows"]) for m in done)
    started = min(float(m["committed_at"]) - float(m.get("seconds", 0.0)) for m in done)
    wall = max(float(m["committed_at"]) for m in done) - started
    retried = sum(1 for m in done if int(m.get("attempt_no", 0)) > 0)
    table = [
        ("time per shard", f"mean {statistics.fmean(seconds):.1f}s, min {min(seconds):.1f}s, "
                           f"max {max(seconds):.1f}s"),
        ("throughput", f"{_rate(rows, sum(seconds))} img/s per worker, "
                       f"{_rate(rows, wall)} img/s overall ({wall:.0f}s first start to last commit)"),
        ("data", f"{human_bytes(sum(int(m['bytes']) for m in done))} in {len(done)} files"),
        ("retried shards", str(retried)),
    ]
    by_host: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for m in done:
        by_host[m.get("host", "?")][0] += int(m["rows"])
        by_host[m.get("host", "?")][1] += float(m.get("seconds", 0.0))
    if len(by_host) > 1:
        table += [(f"host {host}", f"{int(r)} images, {_rate(r, s)} img/s per worker")
                  for host, (r, s) in sorted(by_host.items())]
    return Section("Shards", ("", ""), table)


def _provenance(record: dict[str, Any]) -> Section:
    spec, model = record["spec"], record.get("model", {})
    sampler, output = spec["sampler"], spec["output"]
    versions = record.get("versions", {})
    return Section("Provenance", ("", ""), [
        ("model", f"{model.get('source', spec['model']['source'])} ({model.get('family', '?')})"),
        ("revision", str(model.get("revision"))),
        ("license", str(model.get("license") or "not stated")),
        ("sampler", f"{sampler['scheduler']}, {sampler['steps']} steps, guidance "
                    f"{sampler['guidance_scale']}, eta {sampler.get('eta', 0.0)}"),
        ("seeds", f"job seed {spec['seed']}; per image in the `seed` column"),
        ("images", f"{output['image_format']}, {output['shard_size']} per shard, "
                   f"dtype {spec['model']['dtype']}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("created", str(record.get("created_at"))),
    ])


def _rate(images: float, seconds: float) -> str:
    return f"{images / seconds:.1f}" if seconds > 0 else "?"
