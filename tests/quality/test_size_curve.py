"""`synthgen eval --sizes`: nested stratified subsets, the curve, and its last point equal to
the plain eval of the whole set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from synthgen.cli import main
from synthgen.quality.evaluation import EvalConfig, evaluate
from synthgen.quality.size_curve import nested_subsets
from tests.quality.test_eval import digit_png_pixels


def test_subsets_are_nested_stratified_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [10, 20, 7])
    small, mid, whole = nested_subsets(labels, [0.1, 0.5, 1.0], seed=3)
    assert set(small) <= set(mid) <= set(whole) and sorted(whole) == list(range(37))
    assert np.bincount(labels[small]).tolist() == [1, 2, 1]
    assert np.bincount(labels[mid]).tolist() == [5, 10, 4]
    assert [s.tolist() for s in nested_subsets(labels, [0.5], seed=3)] == [mid.tolist()]
    assert nested_subsets(labels, [0.5], seed=4)[0].tolist() != mid.tolist()


@pytest.fixture(scope="module")
def real_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 real training digits (30 of each) as an image folder: a dataset that is known good."""
    folder = tmp_path_factory.mktemp("digits")
    images, labels = digit_png_pixels(1200)
    taken: dict[int, int] = {}
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        if taken.get(int(label), 0) < 30:
            taken[int(label)] = taken.get(int(label), 0) + 1
            (folder / str(label)).mkdir(exist_ok=True)
            Image.fromarray(image).save(folder / str(label) / f"{i:04d}.png")
    return folder


def test_curve_grows_and_its_whole_point_is_the_plain_eval(real_folder: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(real_folder), "--real", "builtin:digits",
                                       "--sizes", "1,0.1,0.5", "--json"])
    assert result.exit_code == 0, result.output
    curve = json.loads(result.output)
    assert [p["fraction"] for p in curve["sizes"]] == [0.1, 0.5, 1.0]
    assert [p["images"] for p in curve["sizes"]] == [30, 150, 300]
    plain = evaluate(EvalConfig(str(real_folder), "builtin:digits"))
    for key, scored in curve["sizes"][-1]["classifiers"].items():
        assert scored["accuracy"] == plain["classifiers"][key]["accuracy"]
        assert curve["real_accuracy"][key] == plain["classifiers"][key]["real_accuracy"]
        assert scored["ratio"] == round(scored["accuracy"] / curve["real_accuracy"][key], 4)
        assert curve["sizes"][0]["classifiers"][key]["accuracy"] < scored["accuracy"]


def test_bad_sizes_are_one_line_exit_2(real_folder: Path) -> None:
    result = CliRunner().invoke(main, ["eval", str(real_folder), "--real", "builtin:digits",
                                       "--sizes", "0.5,a"])
    assert result.exit_code == 2 and result.output.count("\n") == 1 and "--sizes" in result.output
