"""Model sources: hub ids from the local cache, fsspec URLs copied once per node, precision."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from synthgen.engine.driver import prepare
from synthgen.engine.worker import Worker
from synthgen.errors import UserError
from synthgen.models.registry import inspect_model
from synthgen.models.runtime import Precision, pick_precision
from synthgen.spec.job_spec import ModelSpec
from synthgen.spec.load import validate_spec
from tests.conftest import synthgen, tiny_spec, write_spec

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """In-process models on one thread: two threads on this 2-core machine thrash under load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hf_home(tmp_path: Path, class_model: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache holding acme/tiny-unet at COMMIT (main), in the hub's own layout."""
    import huggingface_hub.constants

    home = tmp_path / "hf"
    repo = home / "hub" / "models--acme--tiny-unet"
    shutil.copytree(class_model, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


def test_hub_id_loads_from_the_offline_cache_with_its_commit(tmp_path: Path, hf_home: Path) -> None:
    spec = validate_spec(tiny_spec(Path("acme/tiny-unet"), tmp_path / "out", classes__count=2))
    worker = Worker(prepare(spec).job, threads=1)
    assert (worker.info.family, worker.info.revision) == ("unet", COMMIT)
    marker = worker.run_shard(0).marker
    rows = pq.read_table(worker.store.path(marker.file)).to_pylist()
    assert {(r["model"], r["model_revision"]) for r in rows} == {("acme/tiny-unet", COMMIT)}
    pinned = inspect_model(ModelSpec(source="acme/tiny-unet", revision=COMMIT))
    assert pinned.revision == COMMIT
    with pytest.raises(UserError, match="local hub cache"):
        inspect_model(ModelSpec(source="acme/tiny-unet", revision="v2"))


def test_plan_reports_an_uncached_hub_model_and_run_refuses_it(tmp_path: Path, hf_home: Path) -> None:
    out = tmp_path / "out"
    path = write_spec(tmp_path / "job.yaml", tiny_spec(Path("acme/missing"), out))
    env = {"HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    planned = synthgen("plan", str(path), env=env)
    assert planned.returncode == 0, planned.stderr
    assert "acme/missing (not cached here; resolved on the workers)" in planned.stdout
    assert "samples: 21" in planned.stdout
    ran = synthgen("run", str(path), env=env)
    assert ran.returncode == 2
    assert ran.stderr.strip().splitlines() == [ran.stderr.strip()]
    assert "model.source" in ran.stderr and "acme/missing" in ran.stderr
    assert not out.exists()


def test_plan_checks_what_it_can_without_the_model(tmp_path: Path, hf_home: Path) -> None:
    spec = validate_spec(tiny_spec(Path("acme/missing"), tmp_path / "out"))
    assert prepare(spec, fetch="cached").info is None
    with pytest.raises(UserError, match="local hub cache"):
        prepare(spec)


def test_url_model_is_copied_once_and_fingerprinted(tmp_path: Path, class_model: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGEN_CACHE", str(tmp_path / "cache"))
    remote = tmp_path / "remote"
    shutil.copytree(class_model, remote)
    spec = ModelSpec(source=f"file://{remote}")

    configs = inspect_model(spec, fetch="configs")
    copied = [p for p in configs.path.parent.rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert sorted(p.suffix for p in copied) == [".json"] * 4, "configs only, never weights"
    with ThreadPoolExecutor(4) as pool:  # actors on one node race for the same copy
        infos = list(pool.map(lambda _: inspect_model(spec), range(4)))
    assert len({i.path for i in infos}) == 1
    assert {i.revision for i in infos} == {configs.revision}
    copied = infos[0].path.parent
    assert (copied / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size == \
        (remote / "unet" / "diffusion_pytorch_model.safetensors").stat().st_size

    config = remote / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "num_train_timesteps": 50}))
    changed = inspect_model(spec)
    assert changed.revision != configs.revision and changed.path != infos[0].path
    assert changed.scheduler_config["num_train_timesteps"] == 50


def test_s3_model_source(tmp_path: Path, class_model: Path, s3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGEN_CACHE", str(tmp_path / "cache"))
    s3.fs.put(str(class_model), "bucket/models/tiny", recursive=True)
    info = inspect_model(ModelSpec(source="s3://bucket/models/tiny"))
    assert info.family == "unet" and info.revision.startswith("sha256:")
    assert (info.path / "diffusion_pytorch_model.safetensors").is_file()
    with pytest.raises(UserError, match="no such folder at that URL"):
        inspect_model(ModelSpec(source="s3://bucket/models/none"))


def test_half_precision_on_cpu_falls_back_to_float32(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="synthgen"):
        assert pick_precision("float16", torch.device("cpu")) == Precision(torch.float32)
    assert "float16 on this CPU" in caplog.text
    assert pick_precision("bfloat16", torch.device("cuda")) == Precision(torch.bfloat16)
    assert pick_precision("auto", torch.device("cuda")) == Precision(torch.float16)
