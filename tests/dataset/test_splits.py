"""output.splits: one split per shard, a DatasetDict from the card, and split= everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import DatasetDict, load_dataset

from tests.conftest import tiny_spec
from tests.helpers.dataset_outputs import run_in_process

SPLITS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@pytest.fixture(scope="module")
def split_output(tmp_path_factory: pytest.TempPathFactory, class_model: Path) -> Path:
    """3 classes x 20 in splits 0.8/0.1/0.1 (48/6/6), shards of 5, made by a bare Worker."""
    out = tmp_path_factory.mktemp("split-job") / "out"
    run_in_process(tiny_spec(class_model, out, classes__count=20, output__splits=SPLITS, sampler__steps=2))
    return out


def test_load_dataset_gives_a_datasetdict_of_the_splits(split_output: Path, tmp_path: Path) -> None:
    ds = load_dataset(str(split_output), cache_dir=str(tmp_path / "cache"))
    assert isinstance(ds, DatasetDict)
    assert {name: len(part) for name, part in ds.items()} == {"train": 48, "validation": 6, "test": 6}
    for name, part in ds.items():
        assert set(part["split"]) == {name}
        assert sorted(part["label"]).count(0) == {"train": 16, "validation": 2, "test": 2}[name]
    assert len(set(ds["train"]["sample_id"]) | set(ds["test"]["sample_id"])) == 54


def test_open_dataset_data_files_and_eval_take_a_split(split_output: Path) -> None:
    import synthgen
    from synthgen.errors import UserError

    assert len(synthgen.open_dataset(str(split_output), split="validation")) == 6
    assert len(synthgen.open_dataset(str(split_output))) == 60
    assert len(synthgen.data_files(str(split_output), split="test")) == 2  # 6 samples in shards of 5
    with pytest.raises(UserError, match="splits are train, validation, test"):
        synthgen.open_dataset(str(split_output), split="dev")


def test_export_takes_a_split(split_output: Path, tmp_path: Path) -> None:
    from synthgen.output.export import ExportOptions, export

    done = export(str(split_output), "imagefolder", str(tmp_path / "test"), ExportOptions(split="test"))
    assert done.counts == {"00_a": 2, "01_b": 2, "02_c": 2}


def test_the_card_lists_each_split_and_the_label_mapping(split_output: Path) -> None:
    card = (split_output / "README.md").read_text()
    assert "| splits | train (48), validation (6), test (6) |" in card
    assert "- split: validation" in card and "num_examples: 6" in card
    assert "## Labels and the model's classes" in card and "| 0 | a | 0 | id2label |" in card
    assert 'load_dataset("' + str(split_output) + '")  # a DatasetDict: train, validation, test' in card
