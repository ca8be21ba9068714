"""The fast paths end to end, as a user runs them: `synthgen run` on the embedded local Ray with
`workers: auto` (one single-threaded actor per core) and `model.dtype: auto`. Every sample is
committed exactly once, the layout and the resolved dtype are reported and recorded, the actors
run at the default priority, and the bytes equal a bare Worker's with the same threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthgen.engine.driver import prepare
from synthgen.models.runtime import resolve_dtype
from synthgen.spec.load import validate_spec
from tests.conftest import ROOT, tiny_spec, write_spec


@pytest.mark.slow
def test_auto_layout_and_dtype_commit_every_sample_once(tmp_path: Path, class_model: Path) -> None:
    from synthgen.engine.worker import Worker  # torch: the reference images only

    out = tmp_path / "out"
    spec = tiny_spec(class_model, out, model__dtype="auto", compute__workers="auto",
                     compute__cpus_per_worker="auto")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "synthgen.cli", "run", str(write_spec(tmp_path / "s.yaml", spec))]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    cores = os.cpu_count() or 1
    assert f"workers auto: {cores} CPU actor(s), one per 1 core(s) of {cores}" in result.stderr

    dtype = resolve_dtype("auto", "auto")
    assert json.loads((out / "job.json").read_text())["spec"]["model"]["dtype"] == dtype
    assert f"dtype {dtype}" in (out / "README.md").read_text()

    markers = sorted((out / "_commits").glob("shard-*.json"))
    assert len(markers) == 5 and (out / "_SUCCESS").is_file()
    rows = [row for m in markers
            for row in pq.read_table(out / json.loads(m.read_text())["file"]).to_pylist()]
    assert sorted(r["sample_id"] for r in rows) == list(range(21))  # each exactly once
    assert len(list((out / "data").iterdir())) == 5  # no orphan, no second attempt

    ref = tmp_path / "ref"
    reference = Worker(prepare(validate_spec({**spec, "output": {**spec["output"], "uri": str(ref)}})).job,
                       threads=1)
    for index in range(5):
        reference.run_shard(index)
    ref_rows = {r["sample_id"]: r["image"]["bytes"] for m in sorted((ref / "_commits").glob("*.json"))
                for r in pq.read_table(ref / json.loads(m.read_text())["file"]).to_pylist()}
    assert {r["sample_id"]: r["image"]["bytes"] for r in rows} == ref_rows
