"""The Python API as a notebook user calls it: a dict spec planned and run from Python agrees
with the CLI (same job_id, same plan), the results are typed and frozen, the output reads with
`synthgen.open_dataset`, a mistake raises the CLI's UserError, and progress reaches a caller
that configured no logging as plain lines."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import synthgen
from synthgen.api import Interrupted, PlanResult, RunResult, load
from synthgen.engine.driver import prepare
from synthgen.engine.progress import Progress, console_lines
from synthgen.errors import UserError
from tests.conftest import ROOT, write_spec

# the builtin digits model, 3 classes x 2 images in shards of 4 (2 steps in the run): seconds on CPU
DIGITS: dict[str, Any] = {
    "name": "api", "seed": 0, "model": {"source": "builtin:digits"},
    "sampler": {"scheduler": "ddim", "steps": 10},
    "classes": {"count": 2, "names": ["0", "1", "2"]},
    "output": {"shard_size": 4},
    "compute": {"workers": 1, "batch_size": 8, "cpus_per_worker": 1},
}


def cli_plan(spec: Path, *args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "synthgen.cli", "plan", str(spec), "--json", *args],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_plan_and_run_from_python_agree_with_the_cli(tmp_path: Path, ray_address: str) -> None:
    out = str(tmp_path / "digits")
    planned = synthgen.plan(DIGITS, sampler__steps=2, **{"output.uri": out})  # both spellings
    assert isinstance(planned, PlanResult)
    assert planned.to_json() == cli_plan(write_spec(tmp_path / "spec.yaml", DIGITS), "--output", out,
                                         "--set", "sampler.steps=2")
    assert (planned.samples, planned.shards, planned.uri) == (6, 2, out)
    assert planned.per_class == {"0": 2, "1": 2, "2": 2} and planned.model_family == "unet"
    assert [(label.name, label.model_class, label.source) for label in planned.labels] == [
        ("0", 0, "id2label"), ("1", 1, "id2label"), ("2", 2, "id2label")]

    done = synthgen.run(DIGITS, output=out, overrides={"sampler.steps": 2}, address=ray_address)
    assert done == RunResult(job_id=planned.job_id, uri=out, complete=True, samples=6, shards=2,
                             samples_planned=6, shards_planned=2, per_class={"0": 2, "1": 2, "2": 2})
    with pytest.raises(dataclasses.FrozenInstanceError):
        done.samples = 0  # type: ignore[misc]
    dataset = synthgen.open_dataset(done.uri)
    assert len(dataset) == 6 and sorted(int(label) for _, label in dataset) == [0, 0, 1, 1, 2, 2]
    assert synthgen.resume(out, address=ray_address) == done  # complete: nothing to run


def test_a_jobspec_a_dict_and_a_yaml_file_are_one_job(tmp_path: Path) -> None:
    spec = load(DIGITS, ["sampler.steps=3"])
    path = write_spec(tmp_path / "spec.yaml", DIGITS)
    ids = {synthgen.plan(spec).job_id, synthgen.plan(DIGITS, sampler__steps=3).job_id,
           synthgen.plan(path, **{"sampler.steps": 3}).job_id}
    assert len(ids) == 1


def test_a_mistake_raises_the_user_error_the_cli_prints(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        synthgen.plan(DIGITS, sampler__steps=0)
    assert caught.value.field == "sampler.steps" and caught.value.value == 0
    with pytest.raises(UserError, match="no such file"):
        synthgen.run(tmp_path / "missing.yaml")
    assert list(tmp_path.iterdir()) == []


def test_interrupted_before_the_first_write_says_so(tmp_path: Path) -> None:
    interrupted = Interrupted(prepare(load(DIGITS, output=str(tmp_path / "out"))))
    assert isinstance(interrupted, KeyboardInterrupt)
    assert str(interrupted) == (f"interrupted before anything was written to {tmp_path / 'out'}; "
                                "rerun: the same call")


def test_importing_synthgen_loads_no_torch_pyarrow_or_ray() -> None:
    probe = "import sys, synthgen; print(sorted(m for m in ('torch', 'pyarrow', 'ray') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_progress_without_a_terminal_is_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A script or a notebook without ipywidgets: no bar, no control codes, readable lines."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # a caller that configured no logging (pytest did)
    with console_lines(), Progress(total=6, done=0, shards_total=2, shards_done=0) as progress:
        progress.in_flight(3)
    assert progress.bar is None
    lines = stream.getvalue().splitlines()
    assert lines and lines[-1].startswith("synthgen: images 3/6 (50%)"), lines
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()
    assert not logging.getLogger("synthgen").handlers  # and it cleans up after itself
