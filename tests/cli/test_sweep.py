"""`synthgen sweep` before anything runs: the grid's axes and cells, and every refusal (one line,
exit 2, nothing written). The sweeps that run are in tests/run/test_sweep.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from synthgen.cli import main
from synthgen.errors import UserError
from synthgen.spec.grid import cell_spec, grid_cells, parse_axis
from synthgen.spec.load import load_spec
from tests.conftest import ROOT

DIGITS = str(ROOT / "pipelines" / "digits.yaml")


def test_axis_values_read_as_yaml_like_set() -> None:
    assert parse_axis("sampler.guidance_scale=1.0,2.5").values == (1.0, 2.5)
    assert parse_axis("sampler.steps=5, 10").values == (5, 10)
    assert parse_axis("sampler.scheduler=ddim,dpm++,euler-a").values == ("ddim", "dpm++", "euler-a")
    templates = parse_axis('classes.templates=["a {name}"],["a {name}", "the {name}"]')
    assert templates.values == (["a {name}"], ["a {name}", "the {name}"])


def test_cells_are_the_product_in_order_and_each_a_whole_valid_spec() -> None:
    axes = [parse_axis("sampler.guidance_scale=1.0,2.5"), parse_axis("sampler.steps=5,10,20")]
    cells = grid_cells(axes)
    assert [c.settings for c in cells[:2]] == [{"sampler.guidance_scale": 1.0, "sampler.steps": 5},
                                               {"sampler.guidance_scale": 1.0, "sampler.steps": 10}]
    assert len(cells) == 6 and [c.index for c in cells] == list(range(6))
    base = load_spec(DIGITS).model_dump(mode="json")
    spec = cell_spec(base, cells[5])
    assert (spec.sampler.guidance_scale, spec.sampler.steps, spec.sampler.scheduler) == (2.5, 20, "dpm++")
    assert base["sampler"]["steps"] == 10, "a cell never changes the base it starts from"


@pytest.mark.parametrize(("item", "words"), [
    ("model.device=cpu,cuda", "shapes the pool"),
    ("compute.workers=1,2", "shapes the pool"),
    ("classes.count=10,20", "--per-class"),
    ("sampler.steps=5,5", "listed twice"),
    ("sampler.steps", "dotted.key=v1,v2"),
])
def test_axes_that_a_shared_model_pool_cannot_run_are_refused(item: str, words: str) -> None:
    with pytest.raises(UserError, match=words):
        parse_axis(item)


def test_the_generator_is_an_axis(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    axis = parse_axis(f"model.source=builtin:digits,{tmp_path / 'mine'}")
    assert axis.values == ("builtin:digits", str(tmp_path / "mine"))
    assert parse_axis("model.dtype=float32,bfloat16").values == ("float32", "bfloat16")


@pytest.mark.parametrize(("make", "words"), [
    ("abc", "cell 1: source="),  # a class model without the spec's class names "0".."9"
    ("missing", "cell 1: source="),
])
def test_a_generator_that_cannot_serve_the_spec_is_refused_naming_it(
        tmp_path: Path, make: str, words: str) -> None:
    from tests.conftest import _tiny_models

    model = tmp_path / "other"
    if make == "abc":
        _tiny_models().class_unet(model)
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", DIGITS, "--per-class", "2", "--output", str(out),
                                       "--grid", f"model.source=builtin:digits,{model}"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and str(model) in lines[0], lines
    assert not out.exists()


def test_max_cells_caps_the_grid() -> None:
    axes = [parse_axis("sampler.steps=1,2,3"), parse_axis("seed=1,2,3")]
    with pytest.raises(UserError, match=r"9 cells \(3 x 3\).*raise --max-cells"):
        grid_cells(axes, max_cells=8)


@pytest.mark.parametrize(("grid", "words"), [
    (["sampler.stepz=5,10"], "sampler.stepz: unknown field"),
    (["sampler.steps=5,ten"], "sampler.steps"),
    (["sampler.scheduler=ddim,nope"], "unknown scheduler"),
    (["model.dtype=float32,float64"], "model.dtype"),
    (["sampler.steps=5,10", "seed=1,2,3"], "--max-cells"),
])
def test_bad_grids_are_one_line_exit_2_and_write_nothing(tmp_path: Path, grid: list[str],
                                                         words: str) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", DIGITS, "--per-class", "2", "--output", str(out), "--max-cells", "4"]
    for axis in grid:
        args += ["--grid", axis]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0], lines
    assert not out.exists()


def test_rank_without_real_and_a_users_file_are_refused(tmp_path: Path) -> None:
    base = ["sweep", DIGITS, "--grid", "sampler.steps=5,10", "--per-class", "2",
            "--output", str(tmp_path / "sweep")]
    result = CliRunner().invoke(main, [*base, "--rank", "cas"])
    assert result.exit_code == 2 and "give --real" in result.output
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\n")
    result = CliRunner().invoke(main, [*base, "--write-best", str(mine)])
    assert result.exit_code == 2 and "not written by synthgen sweep" in result.output
    assert mine.read_text() == "name: mine\n" and not (tmp_path / "sweep").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, [*base[:-1], str(tmp_path / "full")])
    assert result.exit_code == 2 and "holds no synthgen sweep" in result.output
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["notes.txt"]


def sweep_results(cells: int) -> dict[str, Any]:
    """What `sweep_results` returns for a grid of long settings (a template axis), with a real set."""
    templates = ["a photo of a {name}, centered, high detail", "a hand-drawn {name} on lined paper"]
    axes = [{"key": "classes.templates", "values": [templates, templates[:1]]},
            {"key": "sampler.guidance_scale", "values": [1.0, 2.5]},
            {"key": "sampler.steps", "values": [5, 10]}]
    rows = []
    for i in range(cells):
        settings = {"classes.templates": axes[0]["values"][i % 2], "sampler.guidance_scale": 1.0 + i,
                    "sampler.steps": 5 * (i + 1)}
        scored = {"accuracy": 0.9123, "ratio": 0.9531, "real_accuracy": 0.957}
        rows.append({"cell": i, "settings": settings, "filter": None,
                     "classifiers": {"logistic_regression": scored, "svm_rbf": scored},
                     "diversity": {"mean_distance": 0.4321, "near_duplicate_share": 0.012},
                     "speed": {"images_per_s": 12.34, "s_per_1000_images": 81.03},
                     "full_job": {"device": "cuda", "estimates": [{"workers": 4, "wall_s": 3725.0,
                                                                   "device_hours": 4.139}]}})
    return {"output": "s3://a-bucket/with/a/long/prefix/digits-sweep", "cells": rows, "per_class": 20,
            "rank": "cas", "real": "builtin:digits", "axes": axes, "pool": {"workers": 4},
            "order": list(range(cells)), "best": 0, "best_spec": None,
            "actors": [{"actor": f"{a:032x}", "model_loads": 1, "cells": list(range(cells)),
                        "loads": {"runwayml/stable-diffusion-v1-5": {"loads": 1}}} for a in range(3)]}


def test_the_table_into_a_pipe_keeps_within_120_columns(capsys: pytest.CaptureFixture[str]) -> None:
    from synthgen.cli.sweep import _table

    _table(sweep_results(4))
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 120, max(lines, key=len)
    assert sum(line.count("0.912 (0.953)") for line in lines) == 8  # whole: both CAS, every cell
    assert sum("62m05s, 4.14 CUDA-h" in line for line in lines) == 4  # the full job's cost, whole
    assert sum('"a hand-drawn {name} on lined paper"]' in line for line in lines) == 2  # settings too
