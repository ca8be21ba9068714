"""Export of an unfinished job is refused unless --partial, which names what is missing
(through the CLI, a job on local disk and on S3)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from synthgen.engine.driver import prepare
from synthgen.engine.lifecycle import claim_output
from synthgen.engine.worker import Worker
from synthgen.spec.load import validate_spec
from tests.conftest import ROOT, tiny_spec


def test_export_of_an_unfinished_job(backend: Callable[[str], str], class_model: Path, tmp_path: Path,
                                     one_torch_thread: None) -> None:
    uri = backend("half")
    prepared = prepare(validate_spec(tiny_spec(class_model, uri, classes__count=4, output__shard_size=4,
                                               sampler__steps=2)))
    claim_output(prepared)
    worker = Worker(prepared.job, threads=1)
    worker.run_shard(0)
    worker.run_shard(2)  # shard 1 of 3 never ran
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def export(dest: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "synthgen.cli", "export", uri, "--format",
                               "imagefolder", "--output", str(dest), *extra], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)

    refused = export(tmp_path / "full")
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert "\n" not in line and "1 of 3 shards (4 of 12 samples)" in line and "shards 1" in line
    assert "--partial" in line and not (tmp_path / "full").exists()

    done = export(tmp_path / "part", "--partial")
    assert done.returncode == 0, done.stderr
    assert "exported 8 images" in done.stdout and "partial: 1 shards missing" in done.stdout
    assert "shards 1" in done.stderr  # the warning names them
    assert sum(len(list(d.iterdir())) for d in (tmp_path / "part").iterdir() if d.is_dir()) == 8
