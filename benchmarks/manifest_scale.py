"""A prompt manifest of ROWS rows: job.json's size, the manifest file's, and the peak RSS and
time of `synthgen plan`, `status` and `verify` on an output holding the job and no shard.

`python -m benchmarks.manifest_scale [ROWS ...]` (default 200,000 and 1,000,000) prints one JSON
line per size. No model is loaded and no image made: the job names a hub model that is not on
this machine, so planning checks what it can without it (as `synthgen plan` does), and the
output is claimed as a run's first write leaves it. Each command runs in its own process, its
memory polled (benchmarks/procs.py), so the figures are what a user's command costs.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from benchmarks.procs import run_timed

ROWS = (200_000, 1_000_000)
SYNTHGEN = [sys.executable, "-m", "synthgen"]  # this checkout's code (PYTHONPATH), not an install
CLAIM = ("from synthgen.engine.driver import prepare; from synthgen.engine.lifecycle import claim_output; "
         "from synthgen.spec.load import load_spec; import sys; "
         "claim_output(prepare(load_spec(sys.argv[1]), fetch='cached'))")


def write_job(base: Path, rows: int) -> Path:
    """A prompt manifest of `rows` prompts under 1,000 labels, 2 images each."""
    with open(base / "prompts.jsonl", "w") as f:
        for i in range(rows):
            f.write(json.dumps({"prompt": f"a photo of thing number {i}", "label": f"l{i % 1000}"}) + "\n")
    spec = {"name": "manifest-scale", "model": {"source": "example-org/not-a-cached-model"},
            "prompts": {"source": str(base / "prompts.jsonl"), "count": 2},
            "output": {"uri": str(base / "out"), "shard_size": 500}}
    path = base / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def timed(args: list[str]) -> dict[str, float]:
    """Peak RSS (MiB) and wall seconds of one command; it must succeed."""
    result = run_timed(args, watch_every_s=0.02)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])}: exit {result.returncode}: {result.stderr[-2000:]}")
    return {"peak_mb": round(result.procs[result.pid].peak_mb), "s": round(result.wall_s, 2)}


def measure(rows: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        spec = write_job(base, rows)
        plan = timed([*SYNTHGEN, "plan", str(spec), "--json"])
        claim = timed([sys.executable, "-c", CLAIM, str(spec)])
        out = base / "out"
        status = timed([*SYNTHGEN, "status", str(out), "--json"])
        verify = timed([*SYNTHGEN, "verify", str(out)])
        manifests = [p.stat().st_size for p in out.glob("manifest-*.parquet")]
        return {"rows": rows, "job_json_bytes": (out / "job.json").stat().st_size,
                "manifest_bytes": sum(manifests) or None,
                "plan": plan, "claim": claim, "status": status, "verify": verify}


def main(rows: tuple[int, ...] = ROWS) -> list[dict[str, Any]]:
    found = []
    for n in rows:
        found.append(measure(n))
        print(json.dumps(found[-1]), flush=True)
    return found


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or ROWS)
