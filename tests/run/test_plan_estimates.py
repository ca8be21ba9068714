"""`synthgen plan`'s estimates: the size on disk (a measured table, no model) and `--calibrate`
(a batch timed on this machine with the tiny class model, projected over the job's shards)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.commands.estimate import (
    INDEX_FILE_BYTES,
    INDEX_ROW_BYTES,
    SHARD_FILE_BYTES,
    estimate_size,
    project,
)
from synthgen.models.registry import inspect_model
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan
from tests.conftest import tiny_spec, write_spec


def size_of(model: Path, tmp_path: Path, **changes) -> int:
    """The estimate's bytes of rows (the files' fixed costs left out), checked against its parts."""
    spec = validate_spec(tiny_spec(model, tmp_path / "out", **changes))
    estimate = estimate_size(Plan.build(spec), inspect_model(spec.model))
    assert estimate is not None
    plan = Plan.build(spec)
    files = plan.num_shards * SHARD_FILE_BYTES + INDEX_FILE_BYTES
    assert estimate.bytes == files + plan.total * (estimate.bytes_per_image + INDEX_ROW_BYTES)
    return estimate.bytes - files


def test_size_follows_count_format_quality_and_image_size(class_model: Path, plain_model: Path,
                                                           tmp_path: Path) -> None:
    png = size_of(class_model, tmp_path)
    assert size_of(class_model, tmp_path, classes__count=14) == 2 * png
    big = {"sampler__width": 512, "sampler__height": 512}
    photos = {fmt: size_of(plain_model, tmp_path, output__image_format=fmt, **big)
              for fmt in ("png", "jpeg", "webp")}
    assert photos["png"] > photos["jpeg"] > photos["webp"] > 50 * png
    low = size_of(plain_model, tmp_path, output__image_format="jpeg", output__quality=50, **big)
    high = size_of(plain_model, tmp_path, output__image_format="jpeg", output__quality=100, **big)
    assert low < photos["jpeg"] < high
    gray = size_of(class_model, tmp_path, **big)  # 1 channel: a third of the pixels' bytes
    assert gray == pytest.approx(photos["png"] / 3, rel=0.01)


def test_plan_calibrate_projects_the_timed_batch(class_model: Path, tmp_path: Path,
                                                 one_torch_thread: None) -> None:
    spec_file = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, tmp_path / "out"))
    result = CliRunner().invoke(main, ["plan", str(spec_file), "--calibrate", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    timing = summary["calibration"]
    assert timing["device"] == "cpu" and timing["workers"] == 1 and timing["threads"] == 1
    assert timing["batch_size"] == 4 and timing["load_s"] > 0 and timing["warmup_s"] > 0
    assert timing["batch_s"] > 0 and timing["images_per_s"] == pytest.approx(4 / timing["batch_s"], rel=0.01)
    # 21 samples in shards of 5,5,5,5,1 at batches of 4: 2+2+2+2+1 batches, after the model load
    assert timing["projected_s"] == pytest.approx(timing["load_s"] + 9 * timing["batch_s"], abs=0.1)
    assert summary["estimate"]["bytes"] > 0
    assert not (tmp_path / "out").exists()  # planning writes nothing, calibrated or not
    text = CliRunner().invoke(main, ["plan", str(spec_file)]).output
    assert "disk: ~" in text and "calibration" not in text


def test_projection_spreads_shards_over_workers(class_model: Path, tmp_path: Path) -> None:
    plan = Plan.build(validate_spec(tiny_spec(class_model, tmp_path / "out", classes__count=40)))
    assert plan.num_shards == 24  # 120 samples in shards of 5: 2 batches of 4 each
    assert project(plan, 1, 1.0, 0.5) == pytest.approx(1.0 + 24 * 2 * 0.5)
    assert project(plan, 5, 1.0, 0.5) == pytest.approx(1.0 + math.ceil(24 / 5) * 2 * 0.5)
