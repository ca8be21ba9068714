"""`synthgen show`: a human view of an output. Rich tables on a terminal, plain text otherwise.

Everything comes from job.json, the commit markers and the failure records: it works on a
finished output and on one still being written.
"""

from __future__ import annotations

import statistics
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from synthgen.output.card import human_bytes
from synthgen.output.catalog import Catalog, job_status
from synthgen.output.job_record import JobRecord
from synthgen.spec.distributions import describe
from synthgen.storage.commit import CommitMarker
from synthgen.storage.store import Store

MAX_CLASS_ROWS = 50


@dataclass(frozen=True)
class Section:
    title: str
    columns: tuple[str, ...]
    rows: Sequence[tuple[str, ...]]  # read only: a list of pairs is one too


def sections(store: Store) -> list[Section]:
    catalog = Catalog.read(store)
    state = job_status(catalog)
    result = [_overview(state, catalog.record), _classes(state), _shards(catalog.shards),
              _provenance(catalog.record)]
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
    rows = [section.columns, *section.rows] if any(section.columns) else list(section.rows)
    widths = [max(len(r[i]) for r in rows) for i in range(len(section.columns))]
    lines = [section.title]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


def _rich(parts: list[Section]) -> None:
    console = Console()
    for part in parts:
        table = Table(title=part.title, title_justify="left", show_header=any(part.columns))
        for column in part.columns:
            table.add_column(column)
        for row in part.rows:
            table.add_row(*row)
        console.print(table)


def _overview(state: dict[str, Any], record: JobRecord) -> Section:
    spec = record.plan.spec
    done = "complete" if state["complete"] else "incomplete"
    return Section(f"{spec.name} ({done})", ("", ""), [
        ("output", state["uri"]),
        ("job_id", state["job_id"]),
        ("images", f"{state['samples_committed']} of {state['samples_total']}"),
        ("shards", f"{state['shards_committed']} of {state['shards_total']} committed"),
        *([("prompts", str(len(record.plan.manifest.entries)))] if spec.prompts else []),
        ("failed shards", str(len(state["failed_shards"]))),
    ])


def _classes(state: dict[str, Any]) -> Section:
    items = list(state["per_class"].items())
    rows = [(name, str(n["committed"]), str(n["planned"])) for name, n in items[:MAX_CLASS_ROWS]]
    if len(items) > MAX_CLASS_ROWS:
        rows.append((f"... {len(items) - MAX_CLASS_ROWS} more", "", ""))
    return Section("Images per class", ("class", "committed", "planned"), rows)


def _shards(done: tuple[CommitMarker, ...]) -> Section:
    """Time per shard and throughput, from the seconds and timestamps in the markers."""
    if not done:
        return Section("Shards", ("", ""), [("committed", "none yet")])
    seconds = [m.seconds for m in done]
    rows = sum(m.rows for m in done)
    started = min(m.committed_at - m.seconds for m in done)
    wall = max(m.committed_at for m in done) - started
    retried = sum(1 for m in done if m.attempt_no > 0)
    table = [
        ("time per shard", f"mean {statistics.fmean(seconds):.1f}s, min {min(seconds):.1f}s, "
                           f"max {max(seconds):.1f}s"),
        ("throughput", f"{_rate(rows, sum(seconds))} img/s per worker, "
                       f"{_rate(rows, wall)} img/s overall ({wall:.0f}s first start to last commit)"),
        ("data", f"{human_bytes(sum(m.bytes for m in done))} in {len(done)} files"),
        ("retried shards", str(retried)),
    ]
    by_host: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for m in done:
        by_host[m.host][0] += m.rows
        by_host[m.host][1] += m.seconds
    if len(by_host) > 1:
        table += [(f"host {host}", f"{int(r)} images, {_rate(r, s)} img/s per worker")
                  for host, (r, s) in sorted(by_host.items())]
    return Section("Shards", ("", ""), table)


def _provenance(record: JobRecord) -> Section:
    spec, model = record.plan.spec, record.model
    sampler, output = spec.sampler, spec.output
    return Section("Provenance", ("", ""), [
        ("model", f"{model.source} ({model.family or '?'})"),
        ("revision", str(model.revision)),
        ("license", str(model.license or "not stated")),
        ("sampler", f"{sampler.scheduler}, {describe(sampler.steps)} steps, guidance "
                    f"{describe(sampler.guidance_scale)}, eta {sampler.eta}"),
        ("seeds", f"job seed {spec.seed}; per image in the `seed` column"),
        ("images", f"{output.image_format}, {output.shard_size} per shard, dtype {spec.model.dtype}"),
        ("versions", ", ".join(f"{k} {v}" for k, v in record.versions.items())),
        ("created", str(record.created_at)),
    ])


def _rate(images: float, seconds: float) -> str:
    return f"{images / seconds:.1f}" if seconds > 0 else "?"
