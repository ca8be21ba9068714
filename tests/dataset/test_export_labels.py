"""An ImageFolder export keeps synthgen's label ids: read back by the real Hugging Face
`imagefolder` builder (which numbers classes by sorting folder names, as torchvision does)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import synthgen
from tests.conftest import synthgen as cli
from tests.conftest import tiny_spec

NAMES = ("zero", "one", "two")  # sorted by name: one, two, zero


@pytest.fixture(scope="module")
def unsorted_output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 classes whose names do not sort in label order, 2 images each, built in-process."""
    from synthgen.engine.driver import prepare
    from synthgen.engine.lifecycle import claim_output
    from synthgen.engine.worker import Worker
    from synthgen.output.catalog import Catalog
    from synthgen.output.finalize import finalize
    from synthgen.spec.load import validate_spec
    from tests.helpers.tiny_models import class_unet

    root = tmp_path_factory.mktemp("unsorted")
    model = class_unet(root / "model", classes=NAMES)
    spec = tiny_spec(model, root / "out", classes__names=list(NAMES), classes__count=2,
                     output__shard_size=6, sampler__steps=2)
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    Worker(prepared.job, threads=1).run_shard(0)
    finalize(Catalog.read(prepared.store))
    return root / "out"


def stored_labels(out: Path) -> dict[int, int]:
    """sample_id -> synthgen's label, read straight from the shards."""
    labels = {}
    for f in synthgen.data_files(str(out)):
        table = pq.read_table(f, columns=["sample_id", "label"]).to_pydict()
        labels.update(zip(table["sample_id"], table["label"], strict=True))
    return labels


def read_back(dest: Path) -> tuple[list[str], dict[int, int]]:
    """The real `imagefolder` builder: its class names, and sample_id -> the label it gives."""
    import datasets

    ds = datasets.load_dataset("imagefolder", data_dir=str(dest), split="train")
    ds = ds.cast_column("image", datasets.Image(decode=False))
    ids = {int(Path(row["image"]["path"]).stem): row["label"] for row in ds}
    return ds.features["label"].names, ids


def test_default_export_reads_back_with_synthgens_ids(unsorted_output: Path, tmp_path: Path) -> None:
    dest = tmp_path / "folder"
    run = cli("export", str(unsorted_output), "--format", "imagefolder", "--output", str(dest))
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in dest.iterdir() if p.is_dir()) == ["00_zero", "01_one", "02_two"]
    assert json.loads((dest / "classes.json").read_text()) == {"0": "zero", "1": "one", "2": "two"}
    names, labels = read_back(dest)
    assert names == ["00_zero", "01_one", "02_two"]
    assert labels == stored_labels(unsorted_output) and len(labels) == 6


def test_plain_names_warn_and_classes_json_maps_them_back(unsorted_output: Path, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    from synthgen.output.export import ExportOptions, export

    dest = tmp_path / "plain"
    with caplog.at_level(logging.WARNING, logger="synthgen"):
        done = export(str(unsorted_output), "imagefolder", str(dest), ExportOptions(names="plain"))
    assert done.counts == {"one": 2, "two": 2, "zero": 2}
    assert "3 of 3 classes differently" in caplog.text and "classes.json" in caplog.text
    names, labels = read_back(dest)
    stored = stored_labels(unsorted_output)
    assert labels != stored  # the reader renumbered them: what the warning said
    classes = json.loads((dest / "classes.json").read_text())
    to_id = {name: int(i) for i, name in classes.items()}
    assert {sid: to_id[names[label]] for sid, label in labels.items()} == stored


def test_prefix_width_follows_the_class_count_and_plain_in_order_is_quiet(
        caplog: pytest.LogCaptureFixture) -> None:
    from synthgen.output.export import class_folders

    many = tuple(f"c{i}" for i in range(120))
    assert class_folders(many, unlabeled=False)[7] == "007_c7"
    assert class_folders(("a", "b"), unlabeled=True) == {0: "00_a", 1: "01_b", -1: "unlabeled"}
    with caplog.at_level(logging.WARNING, logger="synthgen"):
        assert class_folders(("a", "b"), unlabeled=False, style="plain") == {0: "a", 1: "b"}
    assert caplog.text == ""
