"""Shared fixtures: one real local Ray for the session, tiny real models, spec writers.

Nothing here imports torch or diffusers at import time (the fixtures that need them import
them), so the tests that need neither also collect and run where torch is not installed: the
second-Python smoke check in CI (.ci/smoke-python.sh). There, SYNTHGEN_TEST_WITHOUT_TORCH=1
makes the tiny-model fixtures skip; anywhere else a missing torch is an error, as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import faults

ROOT = Path(__file__).resolve().parents[1]
# what loads torch (or diffusers' pipelines, which import it): the torch-free smoke check
# (.ci/smoke-python.sh, SYNTHGEN_TEST_WITHOUT_TORCH=1) skips it.
NEEDS_TORCH = pytest.mark.skipif(os.environ.get("SYNTHGEN_TEST_WITHOUT_TORCH") == "1", reason="needs torch")


# The tiers a test falls in by what it uses (pyproject.toml registers the markers): the fixtures
# that start the session's Ray or an S3 server, or a store fixture parametrized onto S3.
S3_PARAMS = {"s3", "moto", "seaweedfs"}  # what `backend`, `store` and `s3` are parametrized with
TIER_FIXTURES = {"cluster": {"ray_address"}, "s3": {"s3", "flaky_s3", "moto_server", "seaweed_server"}}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in TIER_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(value in S3_PARAMS for value in callspec.params.values()
                                        if isinstance(value, str)):
            item.add_marker("s3")


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """A real Ray head for the whole session (2 CPUs, loopback only); CLI runs attach to it.

    Started in this process, so `ray.shutdown()` stops exactly the processes it started. Its
    raylet starts with the fault harness's environment, so every worker process it spawns (the
    actors of CLI runs attached here) obeys the fault plan of the test in hand.
    """
    import ray

    with faults.harness_environ():
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 logging_level="WARNING")
    address = ray.get_runtime_context().gcs_address
    yield address
    ray.shutdown()


@pytest.fixture
def faults_here() -> Iterator[Callable[..., AbstractContextManager[faults.FaultPlan]]]:
    """For tests of a bare Worker in this process: the harness installed here (it stays, inert
    without a plan), and `with faults_here("oom:0:*"): ...` to set a plan for the block."""
    faults.install()
    yield faults.fault_plan
    faults.clear_plan()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """In-process models on one thread: two threads on this 2-core machine thrash under load."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


def _tiny_models() -> Any:
    """tests/helpers/tiny_models.py (torch and diffusers), imported on first use; skipped only in
    the torch-free smoke check, which says so with SYNTHGEN_TEST_WITHOUT_TORCH=1."""
    if os.environ.get("SYNTHGEN_TEST_WITHOUT_TORCH") == "1":
        pytest.importorskip("torch", reason="needs torch (this run installs synthgen without it)")
        pytest.importorskip("diffusers", reason="needs diffusers")
    from tests.helpers import tiny_models

    return tiny_models


@pytest.fixture(scope="session")
def class_model(models_dir: Path) -> Path:
    return _tiny_models().class_unet(models_dir / "class-unet")


@pytest.fixture(scope="session")
def untrained_digits(models_dir: Path) -> Path:
    """builtin:digits with random weights: a worse generator of the same classes."""
    return _tiny_models().untrained_digits(models_dir / "untrained-digits")


@pytest.fixture(scope="session")
def plain_model(models_dir: Path) -> Path:
    return _tiny_models().plain_unet(models_dir / "plain-unet")


def tiny_spec(model: Path, out: Path, **changes: Any) -> dict[str, Any]:
    """A spec dict for the tiny class model: 3 classes x 7 images, shards of 5."""
    spec: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "model": {"source": str(model)},
        "sampler": {"scheduler": "ddim", "steps": 4, "guidance_scale": 2.0},
        "classes": {"count": 7, "names": ["a", "b", "c"]},
        "output": {"uri": str(out), "shard_size": 5},
        "compute": {"batch_size": 4, "workers": 1, "cpus_per_worker": 1},
    }
    for dotted, value in changes.items():
        node = spec
        *parents, leaf = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return spec


def write_spec(path: Path, spec: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def synthgen(*args: str, address: str | None = None, env: dict[str, str] | None = None,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point in a subprocess, as a user would (with the fault
    harness installed: it obeys the plan a test sets with `faults.fault_plan`)."""
    full_env = faults.child_env({**os.environ, **(env or {})})
    if address:
        full_env["RAY_ADDRESS"] = address
    return subprocess.run([sys.executable, "-m", "synthgen.cli", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=ROOT)


# Finished outputs for the dataset tests, built once per session; see tests/dataset_outputs.py.
from tests.helpers.dataset_outputs import class_output, prompt_output, unlabeled_output  # noqa: E402, F401

# A folder the tests cannot write to (chmod, or a read-only tmpfs for root); see tests/helpers/read_only.py.
from tests.helpers.read_only import read_only_dir  # noqa: E402, F401

# S3: a moto server and SeaweedFS for the session (reset per test) and a fault proxy; see
# tests/helpers/s3server.py.
from tests.helpers.s3server import flaky_s3, moto_server, s3, seaweed_server  # noqa: E402, F401
