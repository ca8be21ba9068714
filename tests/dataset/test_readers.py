"""Reading outputs back with no glue: Hugging Face datasets, Ray Data, DuckDB, pandas/pyarrow,
and synthgen.open_dataset (map-style and streaming, DataLoader workers, ranks, s3://)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from torch.utils.data import DataLoader

import synthgen
from synthgen.output.torch_dataset import assign
from synthgen.spec.sample_order import SampleOrder
from synthgen.storage.commit import CommitMarker
from tests.helpers.dataset_outputs import FOX, Built
from tests.helpers.s3server import BUCKET, KEY_ID, S3, SECRET

# The tiny class job's labels by sample_id: 3 classes x 7 in the default (interleaved) order.
CLASS_LABELS = [SampleOrder.build([7, 7, 7], {"train": 1.0}, True).locate(i)[1] for i in range(21)]


def to_tensor(image) -> torch.Tensor:
    return torch.from_numpy(np.array(image, dtype=np.uint8))


def card_header(path: Path) -> dict:
    text = (path / "README.md").read_text()
    return yaml.safe_load(text.split("---\n")[1])


# Hugging Face datasets ------------------------------------------------------------------------

def test_load_dataset_on_the_folder_gives_image_and_classlabel(class_output: Built, tmp_path: Path) -> None:
    import datasets

    ds = datasets.load_dataset(str(class_output.path), split="train", cache_dir=str(tmp_path))
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds.features["label"] == datasets.ClassLabel(names=["a", "b", "c"])
    assert ds.num_rows == 21
    assert ds["label"] == CLASS_LABELS
    assert ds["sample_id"] == list(range(21))
    assert ds[0]["image"].size == (8, 8)


def test_card_header_is_what_the_hub_and_datasets_accept(class_output: Built) -> None:
    """The split has name, num_examples and num_bytes (datasets warned without num_bytes)."""
    from datasets import Features
    from datasets.info import DatasetInfo
    from datasets.splits import SplitDict
    from huggingface_hub import DatasetCard

    from synthgen.output.shard_schema import hf_features

    card = DatasetCard.load(class_output.path / "README.md")
    info = card.data.to_dict()["dataset_info"]
    splits = SplitDict._from_yaml_list(info["splits"])  # raises on a malformed split
    assert splits["train"].num_examples == 21 and splits["train"].num_bytes > 0
    parsed = DatasetInfo._from_yaml_dict(info)
    assert parsed.features == Features.from_dict(hf_features(["a", "b", "c"]))
    markers = sorted((class_output.path / "_commits").glob("*.json"))
    files = [json.loads(m.read_text())["file"] for m in markers]
    assert card.data.to_dict()["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": files}]}]
    assert card.data.task_categories == ["image-classification"]


def test_load_parquet_data_files_keeps_the_features(class_output: Built, tmp_path: Path) -> None:
    import datasets

    files = synthgen.data_files(str(class_output.path))
    assert len(files) == 5
    ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path))
    assert ds.features["label"] == datasets.ClassLabel(names=["a", "b", "c"])
    assert isinstance(ds.features["image"], datasets.Image)
    assert ds["label"] == CLASS_LABELS


def test_prompt_outputs_load_with_or_without_class_labels(prompt_output: Built, unlabeled_output: Built,
                                                          tmp_path: Path) -> None:
    import datasets

    labeled = datasets.load_dataset(str(prompt_output.path), split="train", cache_dir=str(tmp_path))
    assert labeled.features["label"] == datasets.ClassLabel(names=["fox", "frog"])
    assert labeled["label"] == [0, 0, 0, -1, -1, 1, 1, 1]  # fox x3, whale x2, frog x3, by_class
    assert labeled["prompt"][0] == FOX
    plain = datasets.load_dataset(str(unlabeled_output.path), split="train", cache_dir=str(tmp_path))
    assert plain.features["label"] == datasets.Value("int64")
    assert set(plain["label"]) == {-1} and plain.num_rows == 25
    assert card_header(unlabeled_output.path)["task_categories"] == ["text-to-image"]


# Ray Data, DuckDB, pandas / pyarrow -----------------------------------------------------------

def test_ray_data_reads_the_data_folder(class_output: Built, ray_address: str) -> None:
    """One execution only (Ray Data starts workers): the finished output's `data/` folder."""
    import ray

    rows = ray.data.read_parquet(str(class_output.path / "data")).select_columns(
        ["sample_id", "label", "image"]).take_all()
    assert sorted(r["sample_id"] for r in rows) == list(range(21))
    assert sorted(r["label"] for r in rows) == sorted(CLASS_LABELS)
    assert rows[0]["image"]["bytes"].startswith(b"\x89PNG")


def test_duckdb_counts_rows_and_unique_sample_ids_in_the_index(class_output: Built) -> None:
    import duckdb

    index = f"{class_output.path}/index.parquet"
    counts = duckdb.sql(f"SELECT count(*), count(DISTINCT sample_id) FROM '{index}'").fetchall()
    assert counts == [(21, 21)]
    per_class = duckdb.sql(f"SELECT label_name, count(*) FROM '{index}' GROUP BY 1 ORDER BY 1").fetchall()
    assert per_class == [("a", 7), ("b", 7), ("c", 7)]
    columns = [c[0] for c in duckdb.sql(f"DESCRIBE SELECT * FROM '{index}'").fetchall()]
    assert "image" not in columns and {"file", "seed", "prompt", "model"} <= set(columns)
    files = synthgen.data_files(str(class_output.path))
    joined = duckdb.sql(f"SELECT count(*) FROM read_parquet({files}) d JOIN '{index}' i "
                        "USING (sample_id) WHERE d.seed = i.seed").fetchall()
    assert joined == [(21,)]


def test_pandas_and_pyarrow_read_shards_directly(class_output: Built) -> None:
    import pandas as pd

    files = synthgen.data_files(str(class_output.path))
    frame = pd.concat(pd.read_parquet(f) for f in files)
    assert frame["sample_id"].tolist() == list(range(21))
    table = pq.read_table(files[0])
    meta = json.loads(table.schema.metadata[b"huggingface"])
    assert meta["info"]["features"]["label"]["names"] == ["a", "b", "c"]


# synthgen.open_dataset ------------------------------------------------------------------------

def test_map_style_dataset_matches_what_datasets_decodes(class_output: Built, tmp_path: Path) -> None:
    import datasets

    ds = synthgen.open_dataset(str(class_output.path))
    hf = datasets.load_dataset(str(class_output.path), split="train", cache_dir=str(tmp_path))
    assert len(ds) == 21 and ds.classes == ["a", "b", "c"]
    assert [ds[i][1] for i in range(21)] == CLASS_LABELS
    for i in (0, 9, 20):
        assert np.array_equal(np.array(ds[i][0]), np.array(hf[i]["image"]))
    assert ds[-1][1] == CLASS_LABELS[-1]
    with pytest.raises(IndexError):
        ds[21]
    item = synthgen.open_dataset(str(class_output.path), columns=["sample_id", "prompt"],
                                 transform=to_tensor)[12]
    assert item["sample_id"] == 12 and item["label"] == 1 and item["image"].shape == (8, 8)


def test_map_style_in_a_dataloader_with_two_workers(class_output: Built) -> None:
    ds = synthgen.open_dataset(str(class_output.path), transform=to_tensor)
    loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    labels, images = [], 0
    for batch_images, batch_labels in loader:
        assert batch_images.shape[1:] == (8, 8)
        images += len(batch_images)
        labels += batch_labels.tolist()
    assert images == 21 and sorted(labels) == sorted(CLASS_LABELS)


def test_streaming_with_two_workers_yields_each_sample_once(class_output: Built) -> None:
    stream = synthgen.open_dataset(str(class_output.path), streaming=True, transform=to_tensor,
                                   columns=["sample_id"], shuffle=True, shuffle_buffer=4, seed=1)
    loader = DataLoader(stream, batch_size=3, num_workers=2)
    first = [i for batch in loader for i in batch["sample_id"].tolist()]
    assert sorted(first) == list(range(21))
    assert first != sorted(first)
    again = [i for batch in loader for i in batch["sample_id"].tolist()]
    assert again == first  # same seed and epoch: same order
    stream.set_epoch(1)
    assert [i for batch in loader for i in batch["sample_id"].tolist()] != first


@pytest.mark.parametrize("world_size", [2, 5])
def test_streaming_splits_between_ranks(class_output: Built, world_size: int) -> None:
    """5 shards of 5, 5, 5, 5, 1 samples: ranks get equal shares, to one sample."""
    seen = []
    for rank in range(world_size):
        stream = synthgen.open_dataset(str(class_output.path), streaming=True, columns=["sample_id"],
                                       rank=rank, world_size=world_size)
        ids = [row["sample_id"] for row in stream]
        assert len(ids) in (21 // world_size, 21 // world_size + 1)
        seen += ids
    assert sorted(seen) == list(range(21))


def shard_file(index: int, rows: int, first: int) -> CommitMarker:
    return CommitMarker(shard=index, file=f"f{index}", rows=rows, bytes=0, sha256="", first_sample_id=first,
                        last_sample_id=first + rows - 1, attempt="00", attempt_no=0, job_id="j", host="h",
                        seconds=0.0, batch_size=1, committed_at=0.0)


def test_assignment_partitions_samples_evenly_for_any_ranks_and_workers() -> None:
    """Every sample once over all (rank, worker) readers; ranks differ by one sample at most."""
    for rows in ([3, 3, 3, 3, 3, 3, 1], [4, 4, 4], [2], [5, 5, 5, 5, 1]):
        shards = [shard_file(i, n, sum(rows[:i])) for i, n in enumerate(rows)]
        for world in (1, 2, 3, 4, 5):
            for workers in (1, 2, 3):
                per_rank = []
                for rank in range(world):
                    kept = []
                    for worker in range(workers):
                        for unit in assign(shards, rank, world, worker, workers):
                            first = unit.shard.first_sample_id
                            ids = range(first, first + unit.shard.rows)
                            kept += [sid for i, sid in enumerate(ids) if unit.keeps(i)]
                    per_rank.append(kept)
                assert sorted(sum(per_rank, [])) == list(range(sum(rows))), (rows, world, workers)
                sizes = [len(k) for k in per_rank]
                assert max(sizes) - min(sizes) <= 1, (rows, world, workers, sizes)


def test_readers_follow_markers_not_the_data_folder(class_output: Built, tmp_path: Path) -> None:
    """Mid-run state: an orphan data file and an uncommitted shard are both invisible."""
    copy = tmp_path / "out"
    shutil.copytree(class_output.path, copy)
    last = json.loads((copy / "_commits/shard-00004.json").read_text())
    (copy / "_commits/shard-00004.json").unlink()
    shutil.copy(copy / last["file"], copy / "data/shard-00004-orphan.parquet")
    files = synthgen.data_files(f"file://{copy}")
    assert len(files) == 4 and not any("orphan" in f or last["file"] in f for f in files)
    assert len(synthgen.open_dataset(f"file://{copy}")) == 20
    stream = synthgen.open_dataset(str(copy), streaming=True, columns=["sample_id"])
    assert sorted(r["sample_id"] for r in stream) == list(range(20))


def test_random_access_reads_any_row_group(class_output: Built, tmp_path: Path) -> None:
    """Shards written with several row groups read the same, in any order."""
    copy = tmp_path / "out"
    shutil.copytree(class_output.path, copy)
    for data in (copy / "data").iterdir():
        pq.write_table(pq.read_table(data), data, row_group_size=2)
    # shards of 5 rows (the last holds 1): all but the last now have several row groups
    assert max(pq.ParquetFile(f).num_row_groups for f in (copy / "data").iterdir()) == 3
    original = synthgen.open_dataset(str(class_output.path), columns=["sample_id"], transform=np.array)
    regrouped = synthgen.open_dataset(str(copy), columns=["sample_id"], transform=np.array)
    for i in (20, 0, 13, 14, 1, 9, 8, 19):
        a, b = original[i], regrouped[i]
        assert a["sample_id"] == b["sample_id"] == i and np.array_equal(a["image"], b["image"])


def test_not_an_output_is_a_user_error(tmp_path: Path) -> None:
    from synthgen.errors import UserError

    with pytest.raises(UserError, match="no job.json"):
        synthgen.open_dataset(str(tmp_path))
    with pytest.raises(UserError, match="unknown column"):
        synthgen.open_dataset(str(tmp_path), columns=["colour"])


def test_s3_output_reads_with_open_dataset_and_datasets(class_output: Built, s3: S3,
                                                        tmp_path: Path) -> None:
    """Credentials and endpoint from the environment (set by the s3 fixture), or storage_options."""
    import datasets

    s3.fs.put(str(class_output.path), f"{BUCKET}/digits", recursive=True)
    uri = f"s3://{BUCKET}/digits"
    ds = synthgen.open_dataset(uri)
    assert len(ds) == 21 and ds[20][1] == CLASS_LABELS[20]
    stream = synthgen.open_dataset(uri, streaming=True, columns=["sample_id"], transform=to_tensor)
    ids = [i for batch in DataLoader(stream, batch_size=5, num_workers=2)
           for i in batch["sample_id"].tolist()]
    assert sorted(ids) == list(range(21))
    files = synthgen.data_files(uri)
    assert all(f.startswith(f"s3://{BUCKET}/digits/data/") for f in files)
    options = {"endpoint_url": s3.endpoint, "key": KEY_ID, "secret": SECRET}
    hf = datasets.load_dataset("parquet", data_files=files, storage_options=options, split="train",
                               cache_dir=str(tmp_path))
    assert hf.features["label"] == datasets.ClassLabel(names=["a", "b", "c"])
    assert hf.num_rows == 21
    assert np.array_equal(np.array(hf[3]["image"]), np.array(ds[3][0]))
    assert io.BytesIO(s3.fs.cat_file(f"{BUCKET}/digits/preview.png")).read(4) == b"\x89PNG"
