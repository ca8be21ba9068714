"""Multi-node semantics on a real Ray cluster of several `ray start` nodes on this machine.

Worker nodes declare fake GPUs: Ray reserves them exactly like real ones, while torch, finding
no CUDA, runs on the CPU (`model.device: auto`). Jobs go in through `synthgen submit`, so the
driver runs on the head, as on a real cluster.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from synthgen.engine.job import JobContext
from synthgen.engine.pool import pool_plan
from synthgen.spec.load import validate_spec
from synthgen.spec.plan import Plan
from tests.conftest import ROOT, tiny_spec, write_spec
from tests.helpers import raynodes
from tests.helpers.faults import fault_plan, without_harness
from tests.run.test_submit import cli, markers, sample_ids, status_of


@dataclass
class Cluster:
    head: raynodes.RayNode
    workers: dict[str, raynodes.RayNode]  # by name, which also names the node's model cache
    caches: Path

    def join(self, name: str, gpus: int) -> raynodes.RayNode:
        node = raynodes.start_worker(self.head, num_cpus=gpus, num_gpus=gpus,
                                     env={"SYNTHGEN_CACHE": str(self.caches / name)})
        self.workers[name] = node
        return node


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A CPU head and two worker nodes with 2 (fake) GPUs each; each node its own model cache."""
    caches = tmp_path_factory.mktemp("caches")
    head = raynodes.start_head(num_cpus=1, env={"SYNTHGEN_CACHE": str(caches / "head")})
    nodes = Cluster(head, {}, caches)
    try:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda name: nodes.join(name, gpus=2), ["a", "b"]))
        yield nodes
    finally:
        for node in [*nodes.workers.values(), head]:
            node.stop()


@contextlib.contextmanager
def submit(cluster: Cluster, spec: Path, hold: Path, rules: str) -> Iterator[subprocess.Popen[str]]:
    """`synthgen submit --wait` in the background; shards named by `rules` wait while `hold`
    exists. The fault plan holds for the block and reaches the actors through the nodes
    (tests/raynodes.py): the submitting CLI runs without the harness, as a user's would."""
    env = without_harness({k: v for k, v in os.environ.items() if not k.startswith("RAY_")})
    hold.touch()
    with fault_plan(rules, hold=hold):
        yield subprocess.Popen([sys.executable, "-m", "synthgen.cli", "submit", str(spec), "--address",
                                cluster.head.dashboard, "--wait"], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(job: subprocess.Popen[str], out: Path, samples: int) -> str:
    """Wait for the job; check it succeeded with every sample exactly once. Its stdout."""
    stdout, stderr = job.communicate(timeout=300)
    assert job.returncode == 0, stdout + stderr
    state = status_of(out)
    assert state["complete"] and state["samples_committed"] == samples
    assert cli("verify", str(out)).returncode == 0
    assert sample_ids(out) == list(range(samples)), "every sample exactly once"
    return stdout


def actors_on(node: raynodes.RayNode) -> int:
    return len(node.actor_processes("WorkerActor"))


def running_shards(cluster: Cluster) -> list[str]:
    """The nodes of the shards being generated now, one entry per shard."""
    return raynodes.running_tasks(cluster.head, "WorkerActor.run_shard")


def weight_copies(cache: Path) -> list[Path]:
    """Model folders in a node's cache that hold weights (a full copy, not the driver's configs)."""
    models = cache / "models"
    return [d for d in models.iterdir() if d.is_dir() and any(d.rglob("*.safetensors"))]


@pytest.mark.slow
def test_a_nodes_gpus_fill_and_a_lost_nodes_shards_finish_on_the_rest(
        cluster: Cluster, class_model: Path, tmp_path: Path) -> None:
    out, hold = tmp_path / "out", tmp_path / "hold"
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec(
        f"file://{class_model}", out, classes__count=4, output__shard_size=2, compute__workers=2))
    # 6 shards: 0 and 1 commit, then the two actors wait inside shards 2 and 3.
    with submit(cluster, spec, hold, "hold:2:*,hold:3:*") as job:
        raynodes.wait_until(lambda: len(markers(out)) == 2 and len(running_shards(cluster)) == 2,
                            timeout=240, what="two committed shards and two held")
        nodes = running_shards(cluster)
        assert len(set(nodes)) == 1, "both actors should share one node's 2 GPUs"
        full = next(name for name, node in cluster.workers.items() if node.node_id() == nodes[0])
        other = "b" if full == "a" else "a"
        assert (actors_on(cluster.workers[full]), actors_on(cluster.workers[other])) == (2, 0)
        # the nodes' `ray start` left Ray's worker niceness (15): the actors ask for 0 themselves
        assert [p.nice() for p in cluster.workers[full].actor_processes("WorkerActor")] == [0, 0]
        ids = {name: node.node_id() for name, node in cluster.workers.items()}
        cluster.workers[full].kill()
        hold.unlink()
        stdout = finish(job, out, samples=12)
    assert "actor died" in stdout, stdout
    attempts = {m["shard"]: m["attempt_no"] for m in markers(out).values()}
    assert attempts == {0: 0, 1: 0, 2: 1, 3: 1, 4: 0, 5: 0}, "the lost node's shards ran again"
    # one machine, so one host name: the markers tell its two nodes apart by their Ray node ids
    assert len({m["host"] for m in markers(out).values()}) == 1
    made_on = {m["shard"]: m["node_id"] for m in markers(out).values()}
    assert made_on == {0: ids[full], 1: ids[full], 2: ids[other], 3: ids[other], 4: ids[other],
                       5: ids[other]}
    # The model was copied once on each node that ran actors, whatever the number of actors.
    for name in (full, other):
        assert len(weight_copies(cluster.caches / name)) == 1, name
    cluster.workers.pop(full).stop()
    raynodes.wait_until(lambda: actors_on(cluster.workers[other]) == 0, timeout=60,
                        what="the actors to end with the job")


@pytest.mark.slow
def test_gpus_that_join_a_running_job_get_actors(cluster: Cluster, class_model: Path,
                                                tmp_path: Path) -> None:
    from synthgen.commands.submit import jobs_client

    out, hold = tmp_path / "out", tmp_path / "hold"
    spec = write_spec(tmp_path / "spec.yaml", tiny_spec(class_model, out, output__shard_size=3,
                                                        compute__workers="auto"))
    with submit(cluster, spec, hold, "hold:*:*") as job:  # every shard waits until the node joined
        assert job.stdout is not None
        ray_job = job.stdout.readline().split()[3]
        gpus_before = 2 * len(cluster.workers)
        client = jobs_client(cluster.head.dashboard)
        raynodes.wait_until(lambda: f"shards on {gpus_before} actors" in client.get_job_logs(ray_job),
                            timeout=240, what="the driver to size its pool")
        late = cluster.join("late", gpus=1)  # joins the cluster while the job runs
        raynodes.wait_until(lambda: late.node_id() in running_shards(cluster), timeout=180,
                            what="an actor running a shard on the node that joined")
        grown = f"the cluster has GPUs for {gpus_before + 1} actors now (was {gpus_before})"
        assert grown in client.get_job_logs(ray_job)
        hold.unlink()
        finish(job, out, samples=21)


def job(**changes: object) -> JobContext:
    spec = validate_spec(tiny_spec(Path("unused"), Path("unused"), compute__cpus_per_worker="auto",
                                   **changes))
    return JobContext(spec=spec, manifest=Plan.build(spec).manifest)


@pytest.mark.parametrize(("changes", "cluster_resources", "expected"), [
    # one actor per GPU; on GPUs each actor takes one CPU
    ({"compute__workers": "auto"}, {"CPU": 16, "GPU": 4}, (4, 1.0, 1.0)),
    ({"compute__workers": "auto", "compute__gpus_per_worker": 0.5}, {"CPU": 8, "GPU": 2}, (4, 1.0, 0.5)),
    # no GPU and device auto: CPU actors sharing the cores
    ({"compute__workers": 2}, {"CPU": 8}, (2, 4.0, 0.0)),
    # device cuda on a cluster scaled to zero: GPU actors anyway, so the autoscaler adds GPUs
    ({"compute__workers": 3, "model__device": "cuda"}, {"CPU": 2}, (3, 1.0, 1.0)),
    ({"compute__workers": "auto", "model__device": "cuda"}, {"CPU": 2}, (1, 1.0, 1.0)),
    # device cpu keeps actors off the GPUs
    ({"compute__workers": "auto", "model__device": "cpu"}, {"CPU": 4, "GPU": 2}, (1, 4.0, 0.0)),
])
def test_pool_plan(changes: dict, cluster_resources: dict, expected: tuple) -> None:
    plan = pool_plan(job(**changes), cluster_resources)
    assert (plan.workers, plan.cpus, plan.gpus) == expected

