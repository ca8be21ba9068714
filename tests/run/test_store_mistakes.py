"""A user's object-store mistakes, through the real CLI: no credentials, an unreachable endpoint, a
missing bucket, a wrong region, access denied, for the output and for a source. Each ends within
15 s with exit 2 and one line naming the field and the fix, and nothing written; an output no store
can hold is refused at plan time."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.conftest import synthgen, tiny_spec, write_spec
from tests.helpers.s3server import BUCKET, ON_BOTH_STORES, S3, FaultPlan, Rule, free_port

FAST_S = 15.0
# Credentials from nowhere but the environment: no file, no instance metadata.
NO_AMBIENT_CREDENTIALS = {"AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "AWS_CONFIG_FILE": "/nonexistent",
                          "AWS_EC2_METADATA_DISABLED": "true"}


def refused(args: list[str], env: dict[str, str], *expected: str) -> str:
    """Run the CLI; assert exit 2 within FAST_S with one line naming `expected`; the line."""
    started = time.monotonic()
    result = synthgen(*args, env={**NO_AMBIENT_CREDENTIALS, **env}, timeout=60)
    took = time.monotonic() - started
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert took < FAST_S, f"took {took:.1f} s: {lines[0]}"
    return lines[0]


def spec_for(tmp_path: Path, model: Path, uri: str) -> str:
    return str(write_spec(tmp_path / "job.yaml", tiny_spec(model, uri)))


def test_no_credentials(s3: S3, class_model: Path, tmp_path: Path) -> None:
    env = {**s3.env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""}
    refused(["run", spec_for(tmp_path, class_model, f"s3://{BUCKET}/out")], env,
            "output.uri", "no AWS credentials", "AWS_ACCESS_KEY_ID")
    assert s3.objects("") == {}


def test_unreachable_endpoint_is_named_in_seconds(class_model: Path, tmp_path: Path) -> None:
    """A closed port on loopback: botocore's ten attempts took 93 s."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"AWS_ENDPOINT_URL": closed, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    spec = spec_for(tmp_path, class_model, f"s3://{BUCKET}/out")
    refused(["plan", spec], env, "output.uri", closed, "cannot be reached", "AWS_ENDPOINT_URL")
    refused(["run", spec], env, "output.uri", closed, "cannot be reached")
    refused(["resume", f"s3://{BUCKET}/out"], env, "URI", closed, "cannot be reached")


def test_an_endpoint_that_never_answers_is_named_in_seconds(class_model: Path, tmp_path: Path) -> None:
    """It accepts connections (the kernel's backlog) and never replies: bounded read timeouts."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
        refused(["plan", spec_for(tmp_path, class_model, f"s3://{BUCKET}/out")], env,
                "output.uri", endpoint, "cannot be reached", "ReadTimeoutError")


@ON_BOTH_STORES
def test_missing_bucket(s3: S3, class_model: Path, tmp_path: Path) -> None:
    refused(["run", spec_for(tmp_path, class_model, "s3://no-such-bucket/out")], s3.env,
            "output.uri", "'no-such-bucket' does not exist")
    assert not s3.fs.exists("no-such-bucket")  # not created either


def test_wrong_region(flaky_s3: S3, class_model: Path, tmp_path: Path) -> None:
    """What AWS answers a client signing for another region (moto and SeaweedFS ignore it)."""
    flaky_s3.proxy.plan = FaultPlan(rules=[Rule("wrong_region", times=100)])
    refused(["run", spec_for(tmp_path, class_model, f"s3://{BUCKET}/out")], flaky_s3.env,
            "output.uri", "another region", "AWS_REGION")
    flaky_s3.proxy.plan = FaultPlan()
    assert flaky_s3.objects("") == {}


@pytest.mark.parametrize("s3", ["seaweedfs"], indirect=True)  # moto checks no signature
def test_wrong_secret_is_access_denied(s3: S3, class_model: Path, tmp_path: Path) -> None:
    env = {**s3.env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    line = refused(["run", spec_for(tmp_path, class_model, f"s3://{BUCKET}/out")], env,
                   "output.uri", "access to bucket 'bucket' is denied", "SignatureDoesNotMatch")
    assert "not-the-secret" not in line
    assert s3.objects("") == {}


def test_writes_denied_where_reads_are_allowed(flaky_s3: S3, class_model: Path, tmp_path: Path) -> None:
    """The first write (the create-only probe) is refused: named, and nothing left behind."""
    flaky_s3.proxy.plan = FaultPlan(rules=[Rule("deny", "PUT", times=100)])
    refused(["run", spec_for(tmp_path, class_model, f"s3://{BUCKET}/out")], flaky_s3.env,
            "output.uri", "is denied", "AccessDenied")
    flaky_s3.proxy.plan = FaultPlan()
    assert flaky_s3.objects("") == {}


def test_a_source_names_its_own_field(s3: S3, class_model: Path, tmp_path: Path) -> None:
    """A manifest or a model on S3: the same lines, naming the source's field."""
    s3.fs.pipe_file(f"{BUCKET}/classes.csv", b"name\na\nb\n")
    spec = tiny_spec("s3://no-such-bucket/model", tmp_path / "out")
    refused(["run", str(write_spec(tmp_path / "model.yaml", spec))], s3.env,
            "model.source", "'no-such-bucket' does not exist")
    spec = tiny_spec(class_model, tmp_path / "out")
    spec["classes"] = {"source": f"s3://{BUCKET}/classes.csv", "count": 2}
    refused(["run", str(write_spec(tmp_path / "classes.yaml", spec))],
            {**s3.env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
            "classes.source", "no AWS credentials")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("uri", "says"), [
    ("http://example.com/out", "http:// is read-only"),
    ("https://example.com/out", "https:// is read-only"),
    ("memory://out", "memory:// lives in one process"),
    ("out/a\0b", "NUL"),
])
def test_no_place_for_an_output_is_refused_at_plan_time(uri: str, says: str, class_model: Path,
                                                        tmp_path: Path) -> None:
    refused(["plan", spec_for(tmp_path, class_model, uri)], {}, "output.uri", says)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.yaml"]
