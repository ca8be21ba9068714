"""The randomized fault soak: a seeded RNG kills the driver or an actor and injects store faults
(503s, resets, stalls, lost replies through the fault proxy); the job is resumed until done.

After every round it checks the invariants: every committed shard verifies, no sample_id twice,
nothing partial visible (every object under data/ is a whole Parquet file), no user file
touched, no secret in any object. Used short by tests/trust/test_soak.py and long by
benchmarks/soak.py; `Soak.run` returns what was survived.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthgen.output.catalog import Catalog
from synthgen.output.verify import check_shard
from synthgen.storage.store import Store, read_parquet
from tests.helpers.faults import child_env
from tests.helpers.s3server import BUCKET, FAULTS, S3, SECRET, FaultPlan, committed_ids

ROOT = Path(__file__).resolve().parents[2]
USER_FILES = {"user/notes.txt": b"the user's notes", "user/data/train.parquet": b"not synthgen's"}
INSIDE_FILES = {"mine.txt": b"a file of the user's inside the output",
                "data/mine.bin": b"theirs, under data/"}


@dataclass
class Survived:
    """What the soak lived through."""

    rounds: int = 0
    driver_kills: int = 0
    actor_kills: int = 0
    faults: Counter = field(default_factory=Counter)
    complete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"rounds": self.rounds, "driver_kills": self.driver_kills,
                "actor_kills": self.actor_kills, "store_faults": dict(self.faults),
                "complete": self.complete}


class Soak:
    """One job on S3 behind the fault proxy, driven round by round."""

    def __init__(self, s3: S3, spec: Path, address: str, seed: int, prefix: str = "soak") -> None:
        self.s3, self.spec, self.address = s3, spec, address
        self.rng = random.Random(seed)
        self.uri = f"s3://{BUCKET}/{prefix}"
        self.prefix = prefix
        self.survived = Survived()
        for key, data in USER_FILES.items():
            s3.fs.pipe_file(f"{BUCKET}/{key}", data)

    def run(self, max_rounds: int, timeout: float = 240) -> Survived:
        while self.survived.rounds < max_rounds and not self.survived.complete:
            self.round(timeout)
        return self.survived

    def round(self, timeout: float) -> None:
        self.survived.rounds += 1
        plan = self._store_faults()
        first = self.survived.rounds == 1
        args = ["run", str(self.spec)] if first else ["resume", self.uri]
        driver = subprocess.Popen([sys.executable, "-m", "synthgen.cli", *args], cwd=ROOT,
                                  env=child_env({**os.environ, **self.s3.env,
                                                 "RAY_ADDRESS": self.address}),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # the first round always loses its driver, so every soak resumes at least once
        kill = "driver" if first else self.rng.choice(["driver", "actor", "driver", "actor", "none"])
        try:
            if kill != "none":
                self._kill_later(driver, kill, self._markers() + self.rng.randint(0, 2))
            _, err = driver.communicate(timeout=timeout)
        finally:
            if driver.poll() is None:
                driver.kill()
                driver.communicate()
        self.s3.proxy.plan = FaultPlan()  # the checks read a quiet store
        self.survived.faults.update(plan.injected)
        if first and self._store().exists("job.json"):
            for key, data in INSIDE_FILES.items():
                self.s3.fs.pipe_file(f"{BUCKET}/{self.prefix}/{key}", data)
        assert SECRET not in (err or ""), "the secret was printed"
        self.check()
        self.survived.complete = self._store().exists("_SUCCESS")

    def check(self) -> None:
        """The invariants, after every round."""
        store = self._store()
        objects = self.s3.objects(self.prefix)
        assert not [k for k, blob in objects.items() if SECRET.encode() in blob], "a secret is stored"
        for key, data in USER_FILES.items():
            assert self.s3.fs.cat_file(f"{BUCKET}/{key}") == data, f"user file {key} was touched"
        if "job.json" not in objects:
            return
        for key, data in INSIDE_FILES.items():
            if key in objects:
                assert objects[key] == data, f"user file {key} inside the output was touched"
        for key, blob in objects.items():
            if key.startswith("data/shard-"):
                read_parquet(blob, ["sample_id"])  # whole, never partial
        catalog = Catalog.read(store)
        for marker in catalog.shards:
            assert check_shard(store, catalog.plan, marker) == [], f"shard {marker.shard} is bad"
        ids = committed_ids(store)
        assert len(ids) == len(set(ids)), "a sample_id appears twice"

    def _store(self) -> Store:
        return Store(self.uri)

    def _store_faults(self) -> FaultPlan:
        kinds = tuple(k for k in FAULTS if k != "deny" and self.rng.random() < 0.6) or ("slowdown",)
        plan = FaultPlan(every=self.rng.choice([0, 9, 13, 23]), background=kinds)
        self.s3.proxy.plan = plan
        return plan

    def _markers(self) -> int:
        try:
            return len(self.s3.fs.ls(f"{BUCKET}/{self.prefix}/_commits", refresh=True))
        except FileNotFoundError:
            return 0

    def _kill_later(self, driver: subprocess.Popen[str], what: str, markers: int) -> None:
        """Once `markers` shards are committed (mid-job), after a random fraction of a second."""
        while driver.poll() is None and self._markers() < markers:
            time.sleep(0.3)
        time.sleep(self.rng.uniform(0.0, 1.5))
        if driver.poll() is not None:
            return
        if what == "driver":
            driver.send_signal(signal.SIGKILL)
            self.survived.driver_kills += 1
            return
        actors = actor_pids()
        if actors:
            os.kill(self.rng.choice(actors), signal.SIGKILL)
            self.survived.actor_kills += 1


def actor_pids() -> list[int]:
    """The synthgen actor processes of this test session's own Ray (Ray names them
    ray::WorkerActor...; they inherit this session's HOME, which other users' Rays do not)."""
    home = f"HOME={os.environ.get('HOME', '')}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmdline.startswith(b"ray::WorkerActor") and home in environ:
                found.append(int(entry.name))
    return found
