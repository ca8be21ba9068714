"""The one reader of labeled image sources: eval's features and train's tensors read the same
rows, labels and class names from every kind of source."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from synthgen.errors import UserError
from synthgen.inputs.labeled_sources import DIGITS_TRAIN_END, load_digits_split, open_labeled
from synthgen.quality.features import DIGITS_SPACE, GENERIC_SPACE, load_labeled
from synthgen.train.data import load_source

VALUES = {"cat": (10, 20), "dog": (200,), "eel": (90, 100, 110)}  # gray levels, one image each


def png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), value).save(buffer, format="PNG")
    return buffer.getvalue()


def image_folder(root: Path) -> Path:
    for name, values in VALUES.items():
        (root / name).mkdir(parents=True)
        for i, value in enumerate(values):
            (root / name / f"{i}.png").write_bytes(png(value))
    (root / ".hidden").mkdir()
    return root


def parquet_dataset(root: Path, with_paths: bool) -> Path:
    """A Hugging Face-style dataset: ClassLabel names in the schema, a repeated sample_id (a losing
    retry's leftover file) and, optionally, images by path instead of bytes."""
    names = list(VALUES)
    rows = [(names.index(n), v) for n, values in VALUES.items() for v in values]
    (root / "data").mkdir(parents=True)
    cells = []
    for i, (_, value) in enumerate(rows):
        if with_paths:
            (root / "data" / f"{i}.png").write_bytes(png(value))
            cells.append({"bytes": None, "path": f"{i}.png"})
        else:
            cells.append({"bytes": png(value), "path": None})
    features = {"label": {"_type": "ClassLabel", "names": names}}
    table = pa.table({"image": cells + cells[:1], "label": [label for label, _ in rows] + [rows[0][0]],
                      "sample_id": list(range(len(rows))) + [0]})
    table = table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})})
    pq.write_table(table, root / "data" / "shard-00000-a.parquet")
    return root


@pytest.mark.parametrize("kind", ["folder", "parquet", "parquet-paths"])
def test_every_consumer_reads_the_same_rows(tmp_path: Path, kind: str) -> None:
    source = str(image_folder(tmp_path / "src") if kind == "folder"
                 else parquet_dataset(tmp_path / "src", with_paths=kind == "parquet-paths"))
    opened = open_labeled(source)
    rows = [(np.asarray(image).mean(), label) for image, label in opened.items]
    expected = [(v, list(VALUES).index(n)) for n, values in VALUES.items() for v in values]
    assert opened.class_names == tuple(VALUES) and rows == expected  # the repeated sample_id once
    features = load_labeled(source, GENERIC_SPACE)
    assert features.class_names == tuple(VALUES) and features.labels.tolist() == [e[1] for e in expected]
    tensors = load_source(source, image_size=None, channels=None)
    assert tensors.class_names == list(VALUES) and tensors.labels.tolist() == [e[1] for e in expected]
    gray = ((tensors.images[:, 0, 0, 0] + 1) * 127.5).round().tolist()
    assert gray == [e[0] for e in expected]


def test_builtin_digits_splits_are_the_same_for_eval_and_train() -> None:
    train, test = load_digits_split("train"), load_digits_split("test")
    assert len(train.labels) == DIGITS_TRAIN_END and len(test.labels) == 1797 - DIGITS_TRAIN_END
    features = load_labeled("builtin:digits", DIGITS_SPACE, role="train")
    tensors = load_source("builtin:digits", image_size=None, channels=None)
    assert np.array_equal(features.labels, tensors.labels.numpy())
    # eval's 0..16 scale and train's [-1, 1] are the same unquantized values
    assert np.allclose(features.features / 16, (tensors.images.numpy().reshape(len(tensors), -1) + 1) / 2)
    assert load_labeled("builtin:digits", DIGITS_SPACE, role="test").labels.tolist() == test.labels.tolist()


@pytest.mark.parametrize("source", ["builtin:digits:validation", "builtin:cats"])
def test_unknown_builtin_sources_are_one_clear_error(source: str) -> None:
    with pytest.raises(UserError, match="builtin:digits"):
        load_labeled(source, DIGITS_SPACE)


def test_train_refuses_the_held_out_digits() -> None:
    with pytest.raises(UserError, match="training split"):
        load_source("builtin:digits:test", image_size=None, channels=None)


def test_a_folder_without_class_folders_is_refused(tmp_path: Path) -> None:
    (tmp_path / "flat.png").write_bytes(png(1))
    with pytest.raises(UserError, match="one sub-folder of images per class"):
        open_labeled(str(tmp_path))
