"""`synthgen sample`: one stored sample regenerated in its original batch, compared byte for byte.

On the session's class job (3 classes x 7, shards of 5, batches of 4, one torch thread per
worker), run by the real `synthgen run` on a local Ray; and on a filtered job whose redrawn
samples sit in batches of their draw.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner
from PIL import Image

from synthgen.cli import main
from synthgen.commands.regenerate import original_batch, regenerate
from synthgen.engine.driver import prepare
from synthgen.engine.lifecycle import claim_output
from synthgen.engine.worker import Worker
from synthgen.output.catalog import Catalog
from synthgen.output.readers import load_image
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import sample_seed
from synthgen.storage.store import Store
from tests.conftest import synthgen, tiny_spec
from tests.helpers import tiny_models
from tests.helpers.dataset_outputs import Built, committed_rows


def test_a_sample_mid_batch_matches_and_is_written(class_output: Built, tmp_path: Path) -> None:
    """Sample 6 is the second of the batch 5..8 of shard 1 (ids 5..9, batches of 4)."""
    dest = tmp_path / "six.png"
    result = synthgen("sample", str(class_output.path), "6", "--output", str(dest))
    assert result.returncode == 0, result.stderr
    assert "position 2 of its batch of 4 (sample_ids 5..8)" in result.stdout, result.stdout
    assert "match: the regenerated image's" in result.stdout
    stored = committed_rows(class_output.path)[6]["image"]["bytes"]
    assert dest.read_bytes() == stored


def test_first_last_and_lone_samples_match(class_output: Built) -> None:
    catalog = Catalog.read(Store(str(class_output.path)))
    for sample_id, batch in ((0, [0, 1, 2, 3]), (9, [9]), (20, [20])):
        done = regenerate(catalog, sample_id)
        assert [s.sample_id for s in done.batch.samples] == batch
        assert done.match and done.max_diff == 0 and done.threads == 1, sample_id


def test_a_tampered_image_is_a_mismatch_with_its_difference(class_output: Built, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(class_output.path, out)
    file = out / json.loads((out / "_commits/shard-00001.json").read_text())["file"]
    table = pq.read_table(file)
    rows = table.to_pylist()
    pixels = np.asarray(load_image(rows[1]["image"]["bytes"])).copy()
    pixels[3, 4] = pixels[3, 4] + 3 if pixels[3, 4] < 250 else pixels[3, 4] - 3
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    rows[1]["image"]["bytes"] = buf.getvalue()
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), file)
    result = CliRunner().invoke(main, ["sample", str(out), "6"])
    assert result.exit_code == 1, result.output
    assert "mismatch: max pixel difference 3 (1 pixel values differ)" in result.output
    rows[1]["image"]["bytes"] = b"not an image"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), file)
    result = CliRunner().invoke(main, ["sample", str(out), "6"])
    assert result.exit_code == 1 and "not a readable image" in result.output


def test_unknown_or_uncommitted_samples_exit_2_in_one_line(class_output: Built, tmp_path: Path) -> None:
    out = tmp_path / "copy"
    shutil.copytree(class_output.path, out)
    (out / "_commits/shard-00001.json").unlink()
    for sample_id, words in (("21", "no such sample; this job has sample_ids 0..20"),
                             ("-1", "no such sample"), ("7", "its shard 1 is not committed yet")):
        result = synthgen("sample", str(out), "--", sample_id)
        assert result.returncode == 2 and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_redrawn_samples_match_in_the_batch_of_their_draw(tmp_path: Path, class_model: Path) -> None:
    """With the label filter, shard 1 redraws some samples; each is regenerated in its draw's
    batch (the samples still pending at that draw, with that draw's seeds) and matches."""
    classifier = tiny_models.linear_classifier(tmp_path / "linear")
    spec = tiny_spec(class_model, tmp_path / "out", filter={"classifier": str(classifier), "max_draws": 40})
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    Worker(prepared.job, threads=1).run_shard(1)
    catalog = Catalog.read(prepared.store)
    draws = {r["sample_id"]: r["filter_draws"] - 1 for r in committed_rows(tmp_path / "out")}
    redrawn = max(draws, key=draws.get)
    assert draws[redrawn] > 0, draws
    batch = original_batch(catalog, redrawn)
    pending = [sid for sid in range(5, 10) if draws[sid] >= draws[redrawn]]  # in shard order
    first = pending.index(redrawn) // 4 * 4
    assert [s.sample_id for s in batch.samples] == pending[first : first + 4]
    assert all(s.seed == sample_seed(0, s.sample_id, batch.draw) for s in batch.samples)
    for sample_id in (redrawn, min(draws, key=draws.get)):
        done = regenerate(catalog, sample_id, threads=1)
        assert done.match, (sample_id, done.max_diff)
