"""The long randomized fault soak: `python -m benchmarks.soak [ROUNDS] [SEED]`.

The same soak as tests/trust/test_soak.py (tests/helpers/soak.py: kills of the driver and the
actors, 503s, resets, stalls and lost replies through the fault proxy, resumed until complete,
the invariants checked after every round), on a bigger job and for many rounds, on its own
moto server and local Ray. Prints one JSON line: what was survived. Run it with HOME set to a
folder of its own (Ray's auth token lives there).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest


def main(rounds: int = 40, seed: int = 0) -> dict:
    import ray
    import s3fs

    from tests.conftest import tiny_spec, write_spec
    from tests.helpers import tiny_models
    from tests.helpers.s3server import BUCKET, S3, FlakyProxy, MotoServer
    from tests.helpers.soak import Soak

    server = MotoServer()
    server.start()
    proxy = FlakyProxy(server.port)
    proxy.start()
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING")
    try:
        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as env:
            s3 = S3(proxy.endpoint, proxy)
            for key, value in s3.env.items():
                env.setenv(key, value)
            s3fs.S3FileSystem.clear_instance_cache()
            S3(server.endpoint).fs.mkdir(BUCKET)
            model = tiny_models.class_unet(Path(tmp) / "model")
            spec = write_spec(Path(tmp) / "job.yaml", tiny_spec(
                model, f"s3://{BUCKET}/soak", classes__count=20, output__shard_size=2, sampler__steps=2))
            survived = Soak(s3, spec, ray.get_runtime_context().gcs_address, seed).run(rounds)
    finally:
        ray.shutdown()
        proxy.stop()
        server.stop()
    return survived.to_json()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print(json.dumps(main(*args)))
