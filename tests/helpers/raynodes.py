"""Real Ray nodes for tests, started with `ray start` as users do, on loopback.

Each node lives in its own short temp dir (Ray's socket paths must stay short) and is stopped by
process id: never `ray stop`, which would stop everyone's Ray on a shared machine. A node's
processes are the ones whose command line names its temp dir, their descendants, and the head's
Ray Client server (which names only the head's GCS port).

Every node starts with the fault harness's environment (tests/helpers/faults.py), so the actors
and job drivers it runs obey the fault plan of the test in hand, with nothing forwarded by the
job's submitter.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.helpers import faults

START_TIMEOUT_S = 120
# Token auth, as `ray start --head` turns it on by default (every node needs the token, from
# ~/.ray/auth_token); and a lost node declared dead after ~3 s instead of ~30 s.
NODE_ENV = {"RAY_AUTH_MODE": "token", "RAY_health_check_period_ms": "1000",
            "RAY_health_check_failure_threshold": "3", "RAY_health_check_timeout_ms": "1000"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayNode:
    temp_dir: Path
    gcs_port: int  # the head's GCS port (for a worker: the head it joined)
    dashboard_port: int | None = None  # heads only
    env: dict[str, str] = field(default_factory=dict)

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def processes(self) -> list[psutil.Process]:
        mark, found = str(self.temp_dir), {}
        client_mark = f":{self.gcs_port} " if self.dashboard_port else None
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or []) + " "
            is_client = client_mark and "ray.util.client.server" in cmdline and client_mark in cmdline
            if mark in cmdline or is_client:
                found[proc.pid] = proc
                for child in _children(proc):
                    found[child.pid] = child
        return list(found.values())

    def raylet(self) -> psutil.Process:
        for proc in self.processes():
            try:
                if proc.cmdline()[:1] and proc.cmdline()[0].endswith("/raylet"):
                    return proc
            except psutil.Error:
                continue
        raise AssertionError(f"no raylet for {self.temp_dir}")

    def node_id(self) -> str:
        args = self.raylet().cmdline()
        return next(a.split("=", 1)[1] for a in args if a.startswith("--node_id="))

    def actor_processes(self, class_name: str) -> list[psutil.Process]:
        """This node's worker processes running an actor of `class_name` (Ray's proc title)."""
        found = []
        for proc in _children(self.raylet()):
            try:
                if proc.cmdline() and proc.cmdline()[0].startswith(f"ray::{class_name}"):
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def kill(self) -> None:
        """Lose the node: SIGKILL every process of it at once, as a crashed machine would."""
        procs = self.processes()
        for proc in procs:
            _signal(proc, signal.SIGKILL)
        psutil.wait_procs(procs, timeout=30)

    def stop(self) -> None:
        """Kill the node's processes (nothing of a test node needs a graceful end) and its files."""
        self.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def running_tasks(head: RayNode, name: str) -> list[str]:
    """The node ids of the tasks called `name` running now, from Ray's state API on the head."""
    from ray.util.state.api import StateApiClient
    from ray.util.state.common import ListApiOptions, StateResource

    token = (Path.home() / ".ray" / "auth_token").read_text().strip()
    client = StateApiClient(address=head.dashboard, headers={"Authorization": f"Bearer {token}"})
    options = ListApiOptions(filters=[("name", "=", name), ("state", "=", "RUNNING")])
    tasks = client.list(StateResource.TASKS, options=options, raise_on_missing_output=False)
    return [task.node_id for task in tasks]


def start_head(num_cpus: int = 2, env: dict[str, str] | None = None) -> RayNode:
    node = RayNode(_temp_dir(), free_port(), free_port(), env=env or {})
    _ray_start(node, ["--head", "--port", str(node.gcs_port), "--dashboard-host", "127.0.0.1",
                      "--dashboard-port", str(node.dashboard_port), "--ray-client-server-port",
                      str(free_port()), "--num-cpus", str(num_cpus), "--num-gpus", "0"])
    return node


def start_worker(head: RayNode, num_cpus: int, num_gpus: int = 0,
                 env: dict[str, str] | None = None) -> RayNode:
    """A second node on this machine; `num_gpus` are fake (CUDA stays absent): enough to test
    where GPU actors are scheduled, while torch itself runs on the CPU."""
    node = RayNode(_temp_dir(), head.gcs_port, env=env or {})
    _ray_start(node, ["--address", head.gcs_address, "--num-cpus", str(num_cpus),
                      "--num-gpus", str(num_gpus)])
    return node


def _ray_start(node: RayNode, args: list[str]) -> None:
    command = ["ray", "start", *args, "--node-ip-address", "127.0.0.1", "--temp-dir",
               str(node.temp_dir), "--dashboard-agent-listen-port", str(free_port()),
               "--metrics-export-port", str(free_port()), "--disable-usage-stats"]
    env = faults.child_env({**os.environ, **NODE_ENV, **node.env})
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=START_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        node.stop()
        raise
    if done.returncode != 0:
        node.stop()
        raise RuntimeError(f"ray start failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def _temp_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="sg-ray-", dir="/tmp"))


def _children(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return proc.children(recursive=True)
    except psutil.Error:
        return []


def _signal(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)


def wait_until(condition: Callable[[], object], timeout: float, what: str, every: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
