"""The short randomized fault soak (a few minutes): kills of the driver and the actors, store
faults through the proxy, resumed until complete; the invariants hold after every round. On moto
and on SeaweedFS, a real store.
The long soak is benchmarks/soak.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from synthgen.storage.store import Store
from tests.conftest import tiny_spec, write_spec
from tests.helpers.s3server import FLAKY_ON_BOTH_STORES, S3, assert_complete
from tests.helpers.soak import INSIDE_FILES, Soak

pytestmark = pytest.mark.soak

# Rounds on each store (then at most 3 more until complete), few enough to keep the whole suite
# (CI) under 30 minutes on 2 cores; benchmarks/soak.py runs as many as you give it.
ROUNDS = {"moto": 4, "seaweedfs": 2}


@FLAKY_ON_BOTH_STORES
def test_short_soak_survives_kills_and_store_faults(ray_address: str, flaky_s3: S3, class_model: Path,
                                                    tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "job.yaml", tiny_spec(class_model, "s3://bucket/soak",
                                                       output__shard_size=2, sampler__steps=2))
    soak = Soak(flaky_s3, spec, ray_address, seed=13)
    rounds = ROUNDS[flaky_s3.kind]
    survived = soak.run(max_rounds=rounds)
    if not survived.complete:  # the last rounds' kills fell late: finish without faults
        soak.rng.seed(0)
        while not survived.complete and survived.rounds < rounds + 3:
            soak.round(timeout=240)
    print(f"soak on {flaky_s3.kind} survived:", survived.to_json())
    assert survived.complete, survived.to_json()
    assert survived.driver_kills + survived.actor_kills >= 1 and sum(survived.faults.values()) >= 1
    store = Store("s3://bucket/soak")
    assert_complete_with_user_files(store)


def assert_complete_with_user_files(store: Store) -> None:
    """assert_complete, but the user's own files inside the output stay (and are not data)."""
    names = set(store.list("data"))
    assert "mine.bin" in names and store.read_bytes("data/mine.bin") == INSIDE_FILES["data/mine.bin"]
    store.fs.rm_file(store.path("data/mine.bin"))  # assert_complete counts data/ files exactly
    assert_complete(store, 21)
