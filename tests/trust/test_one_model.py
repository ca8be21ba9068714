"""A job is one model: job.json pins the revision the first run resolved; a resume or a worker
whose model resolves to another is refused with exit 2, naming both (disk and S3 models)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.engine.driver import prepare
from synthgen.engine.lifecycle import claim_output
from synthgen.engine.worker import Worker
from synthgen.errors import ModelChanged, UserError
from synthgen.models.registry import inspect_model
from synthgen.spec.job_spec import ModelSpec
from synthgen.spec.load import validate_spec
from tests.conftest import ROOT, tiny_spec, write_spec
from tests.helpers.s3server import BUCKET, S3


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "synthgen.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def change(model: Path) -> None:
    config = model / "scheduler" / "scheduler_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "steps_offset": 1}))


def test_a_changed_model_folder_is_refused_on_resume(tmp_path: Path, class_model: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(class_model, model)
    spec = tiny_spec(model, tmp_path / "out")
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)  # the first run's job.json, then a crash
    pinned = json.loads((tmp_path / "out" / "job.json").read_text())["model"]["revision"]
    assert pinned.startswith("sha256:") and pinned == prepared.info.revision
    change(model)
    before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    done = cli("resume", str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip()
    assert "\n" not in line and pinned in line and "resolves to revision sha256:" in line
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == before
    rerun = cli("run", str(write_spec(tmp_path / "spec.yaml", spec)))  # `run` again: the same check
    assert rerun.returncode == 2 and pinned in rerun.stderr


def test_a_changed_remote_model_is_refused_on_resume(s3: S3, tmp_path: Path, class_model: Path) -> None:
    s3.fs.put(str(class_model), f"{BUCKET}/models/m", recursive=True)
    spec = tiny_spec(f"s3://{BUCKET}/models/m", f"s3://{BUCKET}/out")
    claim_output(prepare(validate_spec(spec)))
    s3.fs.pipe_file(f"{BUCKET}/models/m/scheduler/scheduler_config.json", b'{"_class_name": "DDPMScheduler"}')
    done = cli("resume", f"s3://{BUCKET}/out", env=s3.env)
    assert done.returncode == 2 and "a job is one model" in done.stderr, done.stderr


def test_a_worker_whose_model_differs_refuses(tmp_path: Path, class_model: Path,
                                              one_torch_thread: None) -> None:
    model = tmp_path / "model"
    shutil.copytree(class_model, model)
    prepared = prepare(validate_spec(tiny_spec(model, tmp_path / "out")))
    pinned = prepared.info.revision
    change(model)  # this node's copy of the folder is another model
    from dataclasses import replace

    with pytest.raises(ModelChanged) as caught:
        Worker(replace(prepared.job, model_revision=pinned), threads=1)
    assert pinned in str(caught.value) and caught.value.found != pinned
    # it reaches the driver through Ray's pickling with its fields
    again = pickle.loads(pickle.dumps(caught.value))
    assert isinstance(again, UserError) and str(again) == str(caught.value)


def linked_model(class_model: Path, root: Path) -> Path:
    """A model whose unet folder is a symlink to a weights folder beside it (`unet -> ../w1`)."""
    model = root / "model"
    shutil.copytree(class_model, model)
    for version in ("w1", "w2"):
        shutil.copytree(model / "unet", root / version)
    config = root / "w2" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "norm_eps": 1e-4}))
    shutil.rmtree(model / "unet")
    (model / "unet").symlink_to("../w1")
    return model


def test_a_linked_component_folder_is_part_of_the_revision(tmp_path: Path, class_model: Path) -> None:
    model = linked_model(class_model, tmp_path)
    spec = tiny_spec(model, tmp_path / "out")
    claim_output(prepare(validate_spec(spec)))
    (model / "unet").unlink()
    (model / "unet").symlink_to("../w2")  # the link moved: another model
    done = cli("resume", str(tmp_path / "out"))
    assert done.returncode == 2 and "resolves to revision sha256:" in done.stderr, done.stderr


def test_a_pickle_in_a_linked_folder_is_refused(tmp_path: Path, class_model: Path) -> None:
    model = linked_model(class_model, tmp_path)
    (tmp_path / "w1" / "diffusion_pytorch_model.safetensors").rename(tmp_path / "w1" / "x.bin")
    with pytest.raises(UserError, match=r"unet/x.bin is a pickle"):
        inspect_model(ModelSpec(source=str(model)), "configs")


@pytest.mark.parametrize("how", ["absolute", "relative", "up", "empty"])
def test_builtin_names_stay_in_the_builtin_folder(tmp_path: Path, class_model: Path, how: str) -> None:
    from synthgen.models.sources import BUILTIN_DIR

    name = {"absolute": str(class_model), "relative": os.path.relpath(class_model, BUILTIN_DIR),
            "up": "../..", "empty": ""}[how]
    spec = {**tiny_spec(class_model, tmp_path / "out"), "model": {"source": f"builtin:{name}"}}
    done = cli("plan", str(write_spec(tmp_path / "spec.yaml", spec)))
    assert done.returncode == 2 and "no such built-in model" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_builtin_models_get_the_pickle_check(tmp_path: Path, class_model: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from synthgen.models import sources

    shutil.copytree(class_model, tmp_path / "evil")
    (tmp_path / "evil" / "unet" / "diffusion_pytorch_model.safetensors").rename(
        tmp_path / "evil" / "unet" / "w.bin")
    monkeypatch.setattr(sources, "BUILTIN_DIR", tmp_path)
    with pytest.raises(UserError, match="is a pickle"):
        inspect_model(ModelSpec(source="builtin:evil"), "configs")
