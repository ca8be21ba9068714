"""No code from data unless asked: pickled models and classifiers, and model_index.json
libraries other than diffusers/transformers, are refused unless the spec says `trusted: true`."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import torch

from synthgen.errors import UserError
from synthgen.models.registry import inspect_model
from synthgen.models.trust import pickled_files
from synthgen.quality.classifiers import inspect_classifier
from synthgen.spec.job_spec import FilterSpec, ModelSpec
from tests.helpers import tiny_models
from tests.helpers.s3server import BUCKET, S3


def pickled_model(class_model: Path, out: Path) -> Path:
    shutil.copytree(class_model, out)
    weights = out / "unet" / "diffusion_pytorch_model.safetensors"
    weights.unlink()
    torch.save({}, out / "unet" / "diffusion_pytorch_model.bin")
    return out


def test_pickled_model_weights_need_trusted(tmp_path: Path, class_model: Path) -> None:
    model = pickled_model(class_model, tmp_path / "m")
    with pytest.raises(UserError, match=r"model.trusted: .*is a pickle"):
        inspect_model(ModelSpec(source=str(model)), "configs")
    assert inspect_model(ModelSpec(source=str(model), trusted=True), "configs").family == "unet"


def test_pickled_remote_model_is_refused_from_its_listing(s3: S3, tmp_path: Path, class_model: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNTHGEN_CACHE", str(tmp_path / "cache"))
    s3.fs.put(str(pickled_model(class_model, tmp_path / "m")), f"{BUCKET}/m", recursive=True)
    with pytest.raises(UserError, match="is a pickle"):
        inspect_model(ModelSpec(source=f"s3://{BUCKET}/m"), "configs")
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").rglob("*.bin"))


def test_unknown_libraries_in_model_index_need_trusted(tmp_path: Path, class_model: Path) -> None:
    model = tmp_path / "m"
    shutil.copytree(class_model, model)
    index = json.loads((model / "model_index.json").read_text())
    index["unet"] = ["evil_module", "UNet2DModel"]
    (model / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match="library 'evil_module'"):
        inspect_model(ModelSpec(source=str(model)), "configs")
    inspect_model(ModelSpec(source=str(model), trusted=True), "configs")  # asked for: allowed


def test_a_torch_saved_classifier_needs_trusted_torchscript_does_not(tmp_path: Path) -> None:
    scripted = tiny_models.linear_classifier(tmp_path / "scripted")
    assert inspect_classifier(FilterSpec(classifier=str(scripted))).kind == "torch"
    pickled = tmp_path / "pickled.pt"
    torch.save(tiny_models.PixelLinear(3), pickled)
    with pytest.raises(UserError, match="filter.trusted"):
        inspect_classifier(FilterSpec(classifier=str(pickled)))
    assert inspect_classifier(FilterSpec(classifier=str(pickled), trusted=True)).kind == "torch"


def test_pickles_beside_safetensors_are_never_read() -> None:
    names = ["unet/a.bin", "unet/a.safetensors", "vae/b.bin", "c.ckpt"]
    assert pickled_files(names) == ["c.ckpt", "vae/b.bin"]


class _Opens:
    """Unpickling this runs code: it creates the file it names (the proof of execution)."""

    def __init__(self, proof: Path) -> None:
        self.proof = proof

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.proof), "w")


def disguised_pickle(path: Path, proof: Path, members: tuple[str, ...]) -> Path:
    """A torch.save pickle that runs code when loaded, with zip members named like TorchScript's."""
    torch.save(_Opens(proof), path)
    root = zipfile.ZipFile(path).namelist()[0].split("/", 1)[0]
    with zipfile.ZipFile(path, "a") as archive:
        for member in members:
            archive.writestr(f"{root}/{member}", "def forward(self, x):\n  return x\n")
    return path


def test_a_zip_named_like_torchscript_is_not_torchscript(tmp_path: Path) -> None:
    proof = tmp_path / "ran"
    fake = disguised_pickle(tmp_path / "m.pt", proof, ("code/__torch__/m.py",))
    with pytest.raises(UserError, match="filter.trusted"):
        inspect_classifier(FilterSpec(classifier=str(fake)))
    assert not proof.exists()


def test_an_untrusted_torch_file_never_falls_back_to_unpickling(tmp_path: Path) -> None:
    from synthgen.quality.judges import TorchJudge

    proof = tmp_path / "ran"
    fake = disguised_pickle(tmp_path / "m.pt", proof, ("code/__torch__/m.py", "constants.pkl"))
    inspect_classifier(FilterSpec(classifier=str(fake)))  # its names pass; its load must not
    with pytest.raises(UserError, match="not a TorchScript archive"):
        TorchJudge(fake, torch.device("cpu"), trusted=False)
    assert not proof.exists()
    TorchJudge(tiny_models.linear_classifier(tmp_path / "s"), torch.device("cpu"), trusted=False)
