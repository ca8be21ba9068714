"""Acceptance of the dataset design fields, run as a user runs them: a tiny SD-style model saved to
disk, a spec with attribute axes and sampler ranges, `synthgen run` on Ray, then `datasets`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import datasets
import pytest

from tests.conftest import synthgen, write_spec
from tests.helpers import tiny_models
from tests.helpers.dataset_outputs import committed_rows

AXES = {"background": ["on a beach", {"value": "in a forest", "weight": 2}, "in the snow"],
        "lighting": ["at dawn", "at night"]}
TEMPLATES = ["a photo of a {name} {background} {lighting}", "a {synonym} {lighting}"]


@pytest.fixture(scope="module")
def sd_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.sd_pipeline(tmp_path_factory.mktemp("models") / "tiny-sd")


def design_spec(model: Path, out: Path, **classes: Any) -> dict[str, Any]:
    return {
        "name": "design", "seed": 5, "model": {"source": str(model)},
        "sampler": {"scheduler": "ddim", "steps": {"choice": [2, 3]},
                    "guidance_scale": {"uniform": [1.5, 4]}},
        "classes": {"count": 6, "templates": TEMPLATES, "attributes": AXES,
                    "negative_prompt": {"choice": ["blurry", "red"]},
                    "entries": [{"name": "cat", "synonyms": ["kitty"]}, {"name": "dog"}, {"name": "bird"}],
                    **classes},
        "output": {"uri": str(out), "shard_size": 4},
        "compute": {"batch_size": 4, "workers": 1, "cpus_per_worker": 1},
    }


def test_axes_and_guidance_range(tmp_path: Path, sd_model: Path, ray_address: str) -> None:
    out = tmp_path / "out"
    result = synthgen("run", str(write_spec(tmp_path / "job.yaml", design_spec(sd_model, out))),
                      address=ray_address)
    assert result.returncode == 0, result.stderr
    rows = committed_rows(out)
    assert [r["sample_id"] for r in rows] == list(range(18))
    for row in rows:
        names = {"cat": ("cat", "kitty")}.get(row["label_name"], (row["label_name"],))
        assert any(n in row["prompt"] for n in names), row["prompt"]
        named = set(re.findall(r"\{(\w+)\}", row["template"])) & set(AXES)
        for axis in AXES:
            assert (row["attributes"][axis] in row["prompt"]) == (axis in named), (axis, row)
        assert row["prompt"] == row["template"].replace("{name}", row["label_name"]).replace(
            "{synonym}", next(n for n in names if n in row["prompt"])).format(**row["attributes"])
        assert 1.5 <= row["guidance_scale"] <= 4.0 and row["steps"] in (2, 3)
        assert row["negative_prompt"] in ("blurry", "red")
    assert len({r["guidance_scale"] for r in rows}) == len(rows)
    assert {r["steps"] for r in rows} == {2, 3}

    ds = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.features["attributes"] == {"background": datasets.Value("string"),
                                         "lighting": datasets.Value("string")}
    by_id = {r["sample_id"]: r for r in rows}
    assert all(r["attributes"] == by_id[r["sample_id"]]["attributes"] for r in ds.remove_columns("image"))

    card = (out / "README.md").read_text()
    section = card.split("## Attributes per class", 1)[1].split("\n## ", 1)[0]
    for name in ("cat", "dog", "bird"):
        for axis in AXES:
            line = next(ln for ln in section.splitlines() if ln.startswith(f"| {name} | {axis} |"))
            counts = [int(n) for n in re.findall(r": (\d+)", line)]
            assert sum(counts) == 6, line
    assert "uniform in [1.5, 4] per sample" in card
