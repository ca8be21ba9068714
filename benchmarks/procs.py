"""Whole-process timing, and peak memory per process of a process tree, read from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ProcStat:
    """One process of a tree, as last seen: its peak RSS and the CPU time it had used."""

    name: str
    peak_mb: float
    cpu_s: float


@dataclass
class Timed:
    """A finished process: its wall time from start to exit, its output, and peak memory."""

    wall_s: float
    returncode: int
    stdout: str
    stderr: str
    started_at: float  # time.time() at the start, to line up with timestamps written by workers
    pid: int
    procs: dict[int, ProcStat] = field(default_factory=dict)  # with `watch_every_s`: its tree

    def report(self) -> dict:
        """The last stdout line, where the contenders print their JSON timings."""
        if self.returncode != 0:
            raise RuntimeError(f"exit {self.returncode}: {self.stderr[-3000:]}")
        return json.loads(self.stdout.strip().splitlines()[-1])


def env_without_ray_address(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for an embedded local Ray, as a user without a cluster has it."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return {**env, "PYTHONPATH": str(ROOT), **(extra or {})}


def run_timed(cmd: list[str], env: dict[str, str] | None = None, watch_every_s: float | None = None,
              timeout: float = 7200) -> Timed:
    """Run `cmd` from the repository root; with `watch_every_s`, poll its tree's memory and CPU.

    (wait4's ru_maxrss would not do: after a fork the child starts with its parent's high-water
    mark, so a small command run from a big process reports the big one.)
    """
    watcher = TreeWatcher(watch_every_s) if watch_every_s else None
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started_at, start = time.time(), time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env or env_without_ray_address(), stdout=out,
                                stderr=err, text=True)
        if watcher:
            watcher.start(proc.pid)
        watchdog = threading.Timer(timeout, proc.kill)
        watchdog.start()
        try:
            _, status = os.waitpid(proc.pid, 0)
        finally:
            watchdog.cancel()
            if watcher:
                watcher.stop()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Timed(wall, proc.returncode, out.read(), err.read(), started_at, proc.pid,
                     watcher.procs if watcher else {})


def run_python(module: str, *args: str, **kwargs) -> Timed:
    return run_timed([sys.executable, "-m", module, *args], **kwargs)


class TreeWatcher:
    """Peak RSS (VmHWM) and CPU time of every process under a root pid, polled every `every_s`.

    VmHWM is the kernel's own high-water mark, so polling misses only what a process does in
    its last `every_s`. Reads /proc/PID/task/*/children, so a
    poll costs a few small reads per process of the tree, never a scan of /proc.
    """

    def __init__(self, every_s: float) -> None:
        self.every_s = every_s
        self.procs: dict[int, ProcStat] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self._thread = threading.Thread(target=self._poll, args=(pid,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _poll(self, root: int) -> None:
        while not self._stop.is_set():
            for pid in _tree(root):
                peak, cpu = _peak_mb(pid), _cpu_s(pid)
                if peak is None or cpu is None:
                    continue
                old = self.procs.get(pid)
                name = _name(pid)  # re-read: an idle Ray worker becomes an actor
                self.procs[pid] = ProcStat(name, max(peak, old.peak_mb if old else 0.0), cpu)
            self._stop.wait(self.every_s)


def _tree(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                todo += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def _peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _cpu_s(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _name(pid: int) -> str:
    """Ray renames its workers (`ray::WorkerActor`); other processes by their command line."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [a.decode(errors="replace") for a in args if a]
    if not words:
        return "?"
    if words[0].startswith("ray::"):
        return words[0].split()[0].split(".")[0]  # ray::WorkerActor.run_shard() -> ray::WorkerActor
    tail = [w for w in words[1:] if not w.startswith("-")][:2]
    return " ".join([Path(words[0]).name, *(Path(w).name for w in tail)])
