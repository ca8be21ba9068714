"""The store: whole-object puts that never publish a partial file, on S3 and on a full disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from synthgen.storage.store import Store
from tests.helpers.s3server import BUCKET, FLAKY_ON_BOTH_STORES, S3, FaultPlan, Rule


@FLAKY_ON_BOTH_STORES
def test_upload_failing_half_way_leaves_no_object_and_no_pending_upload(flaky_s3: S3) -> None:
    store = Store("s3://bucket/j")
    store.part_size = 5 << 20  # 11 MiB goes up as a multipart upload of 3 parts
    flaky_s3.proxy.plan = FaultPlan(rules=[Rule("deny", "PUT", r"partNumber=2")])
    with pytest.raises(PermissionError):
        store.put_bytes("data/shard-00000-x.parquet", b"\1" * (11 << 20))
    assert flaky_s3.proxy.plan.injected["deny"] == 1
    assert not store.exists("data/shard-00000-x.parquet")
    assert flaky_s3.pending_uploads() == []
    # A writer killed mid-upload cannot abort: the job's end does it for it.
    fs = flaky_s3.fs
    fs.call_s3("create_multipart_upload", Bucket=BUCKET, Key="j/data/shard-00001-00aabbccdd00.parquet")
    assert store.abort_uploads("data") == ["j/data/shard-00001-00aabbccdd00.parquet"]
    assert flaky_s3.pending_uploads() == []


FULL_DISK = """
import resource, sys
from synthgen.storage.store import Store
store = Store(sys.argv[1])
resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, resource.RLIM_INFINITY))
for write in (lambda: store.put_bytes("data/shard-00000-x.parquet", bytes(1 << 20)),
              lambda: store.create_only("_commits/shard-00000.json", bytes(1 << 20))):
    try:
        write()
    except OSError as exc:
        print(exc)
"""


def test_full_disk_leaves_no_partial_file_under_a_final_name(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes the kernel refuse a write past 64 KiB (EFBIG), as a full disk would.
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-c", FULL_DISK, str(out)], capture_output=True,
                            text=True, check=True)
    lines = result.stdout.splitlines()
    assert lines == [f"[Errno 27] File too large while writing {out}/data/shard-00000-x.parquet",
                     f"[Errno 27] File too large while writing {out}/_commits/shard-00000.json"]
    assert [p for p in out.rglob("*") if p.is_file()] == []


# The harness itself: faults live in tests/helpers/faults.py, never in the product.
