"""A contact sheet of an output: one labeled row per class (or per prompt), N images a row.

The images are the first committed samples of each class or prompt, so the same output
always gives the same sheet. Tiny images are upscaled by a whole factor with nearest
neighbour, so that 8 or 28 pixel images stay crisp and visible; big ones are shrunk.
"""

from __future__ import annotations

import io
import math
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from synthgen.output.catalog import Catalog
from synthgen.output.readers import RowReader, decode_image
from synthgen.storage.filesystem import write_url
from synthgen.storage.store import Store, check_writable

PAD = 4
FONT_SIZE = 13
LABEL_WIDTH = 220  # at most
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont  # load_default's: bitmap without FreeType
BACKGROUND, INK, MUTED = (255, 255, 255), (20, 20, 20), (110, 110, 110)


@dataclass(frozen=True)
class PreviewOptions:
    per_row: int = 8
    max_rows: int = 20
    min_cell: int = 64
    max_cell: int = 160


@dataclass(frozen=True)
class Row:
    title: str
    sample_ids: tuple[int, ...]


def preview_rows(catalog: Catalog, options: PreviewOptions) -> tuple[list[Row], int]:
    """The rows to draw (first committed samples of each class or prompt), and how many are left out."""
    plan = catalog.plan
    entries = plan.manifest.entries
    rows = []
    for i, entry in enumerate(entries[: options.max_rows]):
        ids = islice(_committed_ids(catalog, i, entry.count), options.per_row)
        rows.append(Row(_title(entry.label_name, entry.prompts, bool(plan.spec.prompts)), tuple(ids)))
    return rows, max(0, len(entries) - options.max_rows)


def render(catalog: Catalog, options: PreviewOptions | None = None) -> Image.Image:
    options = options or PreviewOptions()
    rows, hidden = preview_rows(catalog, options)
    reader = RowReader(catalog.store, ["image"], cache_size=8)
    images = {sid: decode_image(_image_cell(catalog, reader, sid))
              for row in rows for sid in row.sample_ids}
    cell = _cell_size(next(iter(images.values()), None), options)
    font = ImageFont.load_default(size=FONT_SIZE)
    title = f"{catalog.plan.spec.name}: {catalog.rows} of {catalog.plan.total} images"
    columns = max([len(row.sample_ids) for row in rows] + [1])
    left = label_width([row.title for row in rows], font)
    line = FONT_SIZE + 2 * PAD
    width = max(left + columns * (cell[0] + PAD) + PAD, round(font.getlength(title)) + 2 * PAD)
    height = line + len(rows) * (cell[1] + PAD) + PAD + (line if hidden else 0)
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), title, fill=MUTED, font=font)
    for r, row in enumerate(rows):
        top = line + r * (cell[1] + PAD)
        text = _fit(draw, row.title, font, left - 2 * PAD)
        draw.text((PAD, top + (cell[1] - FONT_SIZE) // 2), text, fill=INK, font=font)
        for c, sid in enumerate(row.sample_ids):
            tile = _scale(images[sid], cell).convert("RGB")
            sheet.paste(tile, (left + c * (cell[0] + PAD), top))
    if hidden:
        draw.text((PAD, height - line + PAD), f"... and {hidden} more rows not shown", fill=MUTED,
                  font=font)
    return sheet


def label_width(titles: list[str], font: Font) -> int:
    """The label column: as wide as the longest title, up to LABEL_WIDTH (longer ones are cut)."""
    longest = max([font.getlength(" ".join(t.split())) for t in titles] + [0.0])
    return min(LABEL_WIDTH, round(longest) + 3 * PAD)


def preview_png(catalog: Catalog, options: PreviewOptions | None = None) -> bytes:
    buf = io.BytesIO()
    render(catalog, options).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def write_preview(uri: str, dest: str, options: PreviewOptions | None = None,
                  storage_options: dict[str, Any] | None = None) -> int:
    """Write the sheet of the output at `uri` to `dest` (a path or URL); returns its byte size."""
    check_writable(Store(posixpath.dirname(dest) or ".", dict(storage_options or {})), "--output")
    data = preview_png(Catalog.open(uri, storage_options), options)
    write_url(dest, dict(storage_options or {}), data)
    return len(data)


def _committed_ids(catalog: Catalog, entry: int, count: int) -> Iterator[int]:
    """The entry's sample ids, in their order within it, whose shard is committed."""
    order = catalog.plan.order
    for k in range(count):
        sid = order.sample_id(entry, k)
        if catalog.shard_of(sid) is not None:
            yield sid


def _image_cell(catalog: Catalog, reader: RowReader, sample_id: int) -> dict[str, Any]:
    shard = catalog.shard_of(sample_id)
    assert shard is not None
    return reader.row(shard, sample_id - shard.first_sample_id)["image"]


def _title(label_name: str | None, prompts: tuple[str, ...], prompt_job: bool) -> str:
    if not prompt_job:
        return label_name or "(unlabeled)"
    prompt = prompts[0] if prompts else ""
    return f"[{label_name}] {prompt}" if label_name else prompt


def _cell_size(image: Image.Image | None, options: PreviewOptions) -> tuple[int, int]:
    if image is None:
        return options.min_cell, options.min_cell
    w, h = image.size
    longest = max(w, h)
    if longest < options.min_cell:
        factor = math.ceil(options.min_cell / longest)
        return w * factor, h * factor
    scale = min(1.0, options.max_cell / longest)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _scale(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    grow = size[0] > image.size[0]
    return image.resize(size, Image.Resampling.NEAREST if grow else Image.Resampling.LANCZOS)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    text = " ".join(text.split())
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."
