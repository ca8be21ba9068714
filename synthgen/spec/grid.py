"""A sweep's grid: `--grid KEY=V1,V2,...` axes over the spec's dotted keys, and its cells.

An axis takes any dotted key `--set` takes, and its values are read the way `--set` reads one
value (YAML), as the items of one flow list: `sampler.steps=10,25`, `sampler.scheduler=ddim,dpm++`,
`classes.templates=["a {name}"],["a photo of a {name}"]` (quote what YAML would read as a
mapping). The cells are the product of the axes, in order (the last axis varies fastest), and
each one is validated as a whole spec by the spec's own schema: no list of fields here.

The generator is an axis like any other (`model.source=builtin:digits,./digits-small`, and
`model.revision`, `model.dtype`): each value is a whole model, checked as a spec's model is, and
the actors load each once (commands/sweep.py). Refused, since every cell of a sweep shares one
pool of actors: axes over the pool's shape (compute.workers, gpus_per_worker, cpus_per_worker,
model.device), and over what the sweep sets itself (the counts: --per-class; the output).
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synthgen.errors import UserError
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.limits import MAX_CELLS
from synthgen.spec.load import parse_override, set_dotted, validate_spec

REFUSED = {
    "model.device": "shapes the pool that every cell shares; set it once with --set",
    "model.storage_options": "set it once with --set",
    "compute.workers": "shapes the pool that every cell shares; set it once with --set",
    "compute.gpus_per_worker": "shapes the pool that every cell shares; set it once with --set",
    "compute.cpus_per_worker": "shapes the pool that every cell shares; set it once with --set",
    "classes.count": "--per-class sets the size of every cell",
    "prompts.count": "--per-class sets the size of every cell",
    "output.uri": "--output places the cells (in URI/cells/<k>/)",
    "output.storage_options": "set it once with --set",
}


@dataclass(frozen=True)
class Axis:
    key: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Cell:
    """One point of the grid: its number and the value of each axis."""

    index: int
    settings: dict[str, Any]

    def apply(self, data: dict[str, Any]) -> dict[str, Any]:
        """A copy of a spec dict with this cell's settings."""
        data = copy.deepcopy(data)
        for key, value in self.settings.items():
            set_dotted(data, key, copy.deepcopy(value))
        return data

    def label(self) -> str:
        return ", ".join(f"{key.rsplit('.', 1)[-1]}={_text(v)}" for key, v in self.settings.items())


def parse_axis(item: str) -> Axis:
    """`KEY=V1,V2,...` -> Axis; each value read as YAML, as `--set` reads one."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise UserError("--grid", item, "write it as dotted.key=v1,v2,..., e.g. sampler.steps=10,25")
    _, values = parse_override(f"{key}=[{raw}]")
    if not isinstance(values, list):
        raise UserError("--grid", item, "its values do not read as a YAML list; quote values "
                                        "holding {, [ or :, e.g. '[\"a {name}\"]'")
    refused = next((why for prefix, why in REFUSED.items()
                    if key == prefix or key.startswith(prefix + ".")), None)
    if refused:
        raise UserError("--grid", key, refused)
    seen: list[Any] = []
    for value in values:
        if value in seen:
            raise UserError(f"--grid {key}", value, "listed twice; give each value once")
        seen.append(value)
    return Axis(key, tuple(_local_model(v) for v in values) if key == "model.source" else tuple(values))


def grid_cells(axes: list[Axis], max_cells: int = MAX_CELLS) -> list[Cell]:
    """The product of the axes, capped by --max-cells."""
    if not axes:
        raise UserError("--grid", "(none)", "give at least one axis, e.g. --grid sampler.steps=10,25")
    keys = [axis.key for axis in axes]
    for key in keys:
        if keys.count(key) > 1:
            raise UserError("--grid", key, "given twice; list all its values in one --grid")
    count = math.prod(len(axis.values) for axis in axes)
    if count > max_cells:
        shape = " x ".join(str(len(axis.values)) for axis in axes)
        raise UserError("--max-cells", max_cells, f"the grid has {count} cells ({shape}); "
                                                  "give fewer values or raise --max-cells")
    combos = itertools.product(*(axis.values for axis in axes))
    return [Cell(i, dict(zip(keys, combo, strict=True))) for i, combo in enumerate(combos)]


def cell_spec(base: dict[str, Any], cell: Cell) -> JobSpec:
    """The cell's whole spec, validated; an error names the cell and the schema's complaint."""
    with in_cell(cell):
        return validate_spec(cell.apply(base))


@contextmanager
def in_cell(cell: Cell) -> Iterator[None]:
    """A mistake found in a cell's job, as one line naming the cell (its generator, say)."""
    try:
        yield
    except UserError as exc:
        raise UserError(f"--grid (cell {cell.index}: {cell.label()})", exc.value,
                        f"{exc.field}: {exc.fix}") from None


def _local_model(value: Any) -> Any:
    """A model folder given relative to where the user stands, made absolute: the actors run
    elsewhere, and a cell's job.json must name the same folder from anywhere."""
    if not isinstance(value, str) or "://" in value or value.startswith("builtin:"):
        return value
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, list | dict) else f"{value}"
