"""Fault injection for the tests, from outside the product: synthgen itself holds no fault code.

A test sets a *plan*: rules `point:shard:attempt` (shard and attempt a number or `*`) and, for
`hold`, a gate file. `install()` wraps the seams of `synthgen.engine.worker.Worker` in a process so
that they obey the plan:

- `raise`: before each batch of the shard, an InjectedFault.
- `hold`: before each batch, wait (at most HOLD_MAX_S) while the gate file exists, so that a
  test can act while a job is surely still running, then let it go.
- `crash`: after a batch, the process dies (`os._exit(17)`) mid-shard.
- `crash_after_upload`: the data file is put, no marker written yet: the process dies.
- `crash_after_marker`: the marker is written, the result not yet returned: the process dies.
- `oom`: every model call of more than 1 sample raises torch.OutOfMemoryError (the worker
  halves its batch size and retries).

Why a file: the plan must reach processes that outlive a test (Ray workers of the session's
Ray, actors on nodes a test started with `ray start`) and that no product code forwards
anything to. So the plan lives in a JSON file named by SYNTHGEN_TEST_FAULT_PLAN, read at each
check (missing or empty: no faults), and a test changes it with `fault_plan(...)`. Processes
that tests start get `install()` from tests/helpers/site/sitecustomize.py, which `child_env()`
puts on their PYTHONPATH together with the plan's path.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV = "SYNTHGEN_TEST_FAULT_PLAN"
POINTS = ("raise", "hold", "crash", "crash_after_upload", "crash_after_marker", "oom")
HOLD_MAX_S = 300.0
EXIT_CODE = 17
ROOT = Path(__file__).resolve().parents[2]
SITE = Path(__file__).resolve().parent / "site"  # holds the sitecustomize.py that calls install()


class InjectedFault(RuntimeError):
    """The exception the `raise` point throws."""


@dataclass(frozen=True)
class Rule:
    """One `point:shard:attempt` rule; None for a `*`."""

    point: str
    shard: int | None
    attempt: int | None

    @classmethod
    def parse(cls, text: str) -> Rule:
        parts = text.strip().split(":")
        if len(parts) != 3:
            raise ValueError(f"fault rule {text!r}: expected point:shard:attempt")
        point, shard, attempt = parts
        if point not in POINTS:
            raise ValueError(f"fault rule {text!r}: unknown fault point {point!r}; "
                             f"valid points: {', '.join(POINTS)}")
        return cls(point, _number(shard, text), _number(attempt, text))

    def matches(self, point: str, shard: int, attempt: int) -> bool:
        return (self.point == point and self.shard in (None, shard)
                and self.attempt in (None, attempt))

    def __str__(self) -> str:
        return ":".join([self.point, *("*" if n is None else str(n) for n in (self.shard, self.attempt))])


def _number(text: str, rule: str) -> int | None:
    if text == "*":
        return None
    if not text.isdigit():
        raise ValueError(f"fault rule {rule!r}: {text!r} is neither a number nor *")
    return int(text)


@dataclass(frozen=True)
class FaultPlan:
    """The rules in force, and the gate file that `hold` waits on."""

    rules: tuple[Rule, ...] = ()
    hold: str | None = None

    @classmethod
    def parse(cls, rules: str | Iterable[str], hold: str | os.PathLike[str] | None = None) -> FaultPlan:
        """From "rule,rule,..." or a list of rules; every rule checked (ValueError if wrong)."""
        texts = rules.split(",") if isinstance(rules, str) else list(rules)
        plan = cls(tuple(Rule.parse(t) for t in texts if t.strip()), str(hold) if hold else None)
        if plan.hold is None and any(r.point == "hold" for r in plan.rules):
            raise ValueError("a `hold` rule needs the gate file (hold=...)")
        return plan

    def armed(self, point: str, shard: int, attempt: int) -> bool:
        return any(rule.matches(point, shard, attempt) for rule in self.rules)

    def to_json(self) -> dict[str, Any]:
        return {"rules": [str(r) for r in self.rules], "hold": self.hold}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        return cls.parse(data.get("rules", []), data.get("hold"))


# The plan file --------------------------------------------------------------------------------

def plan_path() -> Path:
    """The plan file: the one named by SYNTHGEN_TEST_FAULT_PLAN (as every child process has
    it), else one private to this test session's process."""
    private = Path(tempfile.gettempdir()) / f"synthgen-fault-plan-{os.getpid()}.json"
    return Path(os.environ.get(ENV) or private)


def current_plan() -> FaultPlan:
    """The plan in force now, read afresh (a missing or empty file: no faults)."""
    try:
        text = plan_path().read_text()
    except FileNotFoundError:
        return FaultPlan()
    return FaultPlan.from_json(json.loads(text)) if text.strip() else FaultPlan()


def set_plan(plan: FaultPlan) -> None:
    """Write the plan whole (a rename), so that a reader never sees half of it."""
    path = plan_path()
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps(plan.to_json()))
    os.replace(temp, path)


def clear_plan() -> None:
    plan_path().unlink(missing_ok=True)


@contextlib.contextmanager
def fault_plan(rules: str | Iterable[str], hold: str | os.PathLike[str] | None = None
               ) -> Iterator[FaultPlan]:
    """`with fault_plan("crash:1:0", hold=gate): ...`: the plan holds for every process of
    the tests (this one after `install()`) inside the block, and no longer after it."""
    plan = FaultPlan.parse(rules, hold)
    set_plan(plan)
    try:
        yield plan
    finally:
        clear_plan()


# Reaching other processes -------------------------------------------------------------------

def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default os.environ) for a process a test starts, so that it installs the harness:
    the sitecustomize folder and the repo root first on PYTHONPATH, the plan file named."""
    full = dict(os.environ if env is None else env)
    ours = [str(SITE), str(ROOT)]
    rest = [p for p in full.get("PYTHONPATH", "").split(os.pathsep) if p and p not in ours]
    full["PYTHONPATH"] = os.pathsep.join(ours + rest)
    full[ENV] = str(plan_path())
    return full


def without_harness(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default os.environ) with no trace of the harness: what a user's shell has."""
    full = {k: v for k, v in (os.environ if env is None else env).items() if k != ENV}
    rest = [p for p in full.pop("PYTHONPATH", "").split(os.pathsep) if p and p not in (str(SITE), str(ROOT))]
    if rest:
        full["PYTHONPATH"] = os.pathsep.join(rest)
    return full


@contextlib.contextmanager
def harness_environ() -> Iterator[None]:
    """os.environ set as `child_env()` for the block: for Ray started in this process, whose
    raylet (and so each worker it spawns, later too) inherits it. Only the harness's own keys
    are put back after: what the block itself sets stays (`ray.init` sets RAY_AUTH_MODE)."""
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", ENV)}
    os.environ.update({key: child_env()[key] for key in saved})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# The wrappers -------------------------------------------------------------------------------

def fire(point: str, shard: int, attempt: int) -> None:
    """Raise, wait or die here if the current plan names this point, shard and attempt."""
    plan = current_plan()
    if not plan.armed(point, shard, attempt):
        return
    if point == "raise":
        raise InjectedFault(f"injected failure in shard {shard}, attempt {attempt}")
    if point == "hold":
        deadline = time.monotonic() + HOLD_MAX_S
        while plan.hold and os.path.exists(plan.hold) and time.monotonic() < deadline:
            time.sleep(0.1)
        return
    if point == "oom":
        import torch

        raise torch.OutOfMemoryError("injected out of memory")
    os._exit(EXIT_CODE)


def install() -> None:
    """Wrap Worker's seams in this process (once; later calls do nothing). Each wrapper asks
    the current plan, so with no plan a wrapped Worker behaves exactly as the product's."""
    from synthgen.engine.worker import Worker

    if getattr(Worker, "_fault_harness", False):
        return
    run_shard, generate_batch = Worker.run_shard, Worker._generate_batch
    generate_chunk, commit = Worker._generate_chunk, Worker._commit

    # Only run_shard knows the attempt: it leaves (shard, attempt) on the worker for the rest.
    @functools.wraps(run_shard)
    def run_shard_(self: Worker, index: int, attempt_no: int = 0) -> Any:
        self._fault_at = (index, attempt_no)
        return run_shard(self, index, attempt_no)

    @functools.wraps(generate_batch)
    def generate_batch_(self: Worker, batch: list, index: int) -> Any:
        attempt = _attempt(self, index)
        fire("raise", index, attempt)
        fire("hold", index, attempt)
        pixels = generate_batch(self, batch, index)
        fire("crash", index, attempt)
        return pixels

    @functools.wraps(generate_chunk)
    def generate_chunk_(self: Worker, chunk: list) -> Any:
        shard = getattr(self, "_fault_at", None)
        if len(chunk) > 1 and shard is not None:
            fire("oom", *shard)
        return generate_chunk(self, chunk)

    @functools.wraps(commit)
    def commit_(self: Worker, marker: Any) -> Any:
        fire("crash_after_upload", marker.shard, marker.attempt_no)
        outcome = commit(self, marker)
        fire("crash_after_marker", marker.shard, marker.attempt_no)
        return outcome

    Worker.run_shard, Worker._generate_batch = run_shard_, generate_batch_
    Worker._generate_chunk, Worker._commit = generate_chunk_, commit_
    Worker._fault_harness = True


def _attempt(worker: Any, shard: int) -> int:
    at = getattr(worker, "_fault_at", None)
    return at[1] if at and at[0] == shard else 0
