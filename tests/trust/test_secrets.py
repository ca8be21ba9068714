"""Secrets are never shown: one redaction function for messages, job.json, the card, logs,
runtime_env and submit's payload; the local Ray token goes only where it belongs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from synthgen.commands import submit
from synthgen.engine.driver import prepare
from synthgen.engine.lifecycle import claim_output
from synthgen.output.job_record import read_job_record
from synthgen.spec.load import validate_spec
from synthgen.storage import s3 as s3_settings
from synthgen.storage.redact import redact, redact_spec, redact_text
from tests.conftest import ROOT, tiny_spec, write_spec
from tests.helpers.s3server import SECRET

TEXTS = [
    f"s3://user:{SECRET}@bucket/x.csv",
    f"https://acct.blob.core.windows.net/c/x.csv?sv=2022-11-02&se=2030&sig={SECRET}",
    f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={SECRET};EndpointSuffix=x",
    f"Authorization: Bearer {SECRET}",
    f"postgresql://admin:{SECRET}@db:5432/x",
    f"https://h/x?X-Amz-Credential=AKIA&X-Amz-Signature={SECRET}",
    f"failed: secret_access_key={SECRET} while reading",
    f"{{'aws_secret_access_key': '{SECRET}'}}",
]


@pytest.mark.parametrize("text", TEXTS)
def test_redact_text_removes_every_kind_of_secret(text: str) -> None:
    once = redact_text(text, environ={})
    assert SECRET not in once and "***" in once
    assert redact_text(once, environ={}) == once  # idempotent: job_id fingerprints redacted specs


def test_redact_mappings_and_environment() -> None:
    options = {"key": "AKIA", "secret": SECRET, "endpoint_url": "http://e:9000", "region_name": "r",
               "client_kwargs": {"headers": {"Authorization": SECRET, "X-Api": SECRET}},
               "connection_string": f"AccountKey={SECRET}", "nested": [{"password": SECRET}]}
    clean = redact(options, environ={})
    assert SECRET not in repr(clean)
    assert clean["endpoint_url"] == "http://e:9000" and clean["region_name"] == "r"
    assert clean["client_kwargs"]["headers"] == {"Authorization": "***", "X-Api": "***"}
    assert redact_text(f"opened {SECRET}x", environ={"MY_TOKEN": SECRET}) == "opened ***x"
    # the dataset's own text is data: a prompt is never rewritten
    spec = {"prompts": {"items": [{"prompt": "token=abc123 on a sign"}]}, "max_new_tokens": 40}
    assert redact_spec(spec) == spec


def test_runtime_env_carries_only_plain_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": SECRET,
                       "AWS_SESSION_TOKEN": SECRET, "AWS_WEB_IDENTITY_TOKEN_FILE": "/t",
                       "AWS_CONTAINER_AUTHORIZATION_TOKEN": SECRET, "AWS_ROLE_ARN": "arn",
                       "AWS_ENDPOINT_URL": "http://e:9000", "AWS_DEFAULT_REGION": "eu-west-1",
                       "AWS_PROFILE": "p", "AWS_RETRY_MODE": "adaptive",
                       "AWS_ENDPOINT_URL_S3": f"http://u:{SECRET}@e"}.items():
        monkeypatch.setenv(key, value)
    env = s3_settings.forwarded_env()
    assert env == {"AWS_ENDPOINT_URL": "http://e:9000", "AWS_DEFAULT_REGION": "eu-west-1",
                   "AWS_PROFILE": "p", "AWS_RETRY_MODE": "adaptive"}
    private = s3_settings.Credentials.from_env()
    assert {"AWS_SECRET_ACCESS_KEY", "AWS_ROLE_ARN", "AWS_ENDPOINT_URL_S3"} <= set(private.values)
    assert SECRET not in repr(private)


def test_job_json_card_and_submit_payload_hold_no_secret(
        backend: Callable[[str], str], class_model: Path) -> None:
    spec = tiny_spec(class_model, backend("job"))
    options = {"client_kwargs": {"headers": {"Authorization": f"Bearer {SECRET}"}},
               "connection_string": f"AccountKey={SECRET}", "password": SECRET}
    if backend("x").startswith("s3://"):
        options = {"key": os.environ["AWS_ACCESS_KEY_ID"], "secret": SECRET}  # s3fs's own
    spec["output"]["storage_options"] = options
    spec["model"]["storage_options"] = {"token": SECRET}
    prepared = prepare(validate_spec(spec))
    claim_output(prepared)
    stored = prepared.store.read_bytes("job.json")
    assert SECRET.encode() not in stored
    assert b'"Authorization": "***"' in stored or prepared.store.is_s3
    assert SECRET not in repr(submit.payload(prepared.plan))
    # the stored spec fingerprints to the same job: resume finds its own job
    stored = read_job_record(prepared.store).plan
    assert replace(stored, recorded_id=None).job_id == prepared.plan.job_id


def test_a_section_that_fails_validation_is_echoed_without_its_secret(tmp_path: Path) -> None:
    spec = tiny_spec(tmp_path / "m", tmp_path / "out")
    spec["output"] = {"uri": "s3://b/x", "shard_size": "many",
                      "storage_options": {"secret": SECRET, "key": "AKIA"}}
    spec["model"] = {"source": "builtin:digits", "storage_options": {"token": SECRET},
                     "dtyp": "float32"}
    for broken in (spec, {**spec, "output": [spec["output"]]}):
        path = write_spec(tmp_path / "spec.yaml", broken)
        done = subprocess.run([sys.executable, "-m", "synthgen.cli", "plan", str(path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 2 and SECRET not in done.stderr + done.stdout, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1


def test_local_ray_token_goes_only_to_its_own_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "auth_token"
    token.write_text("local-token-value\n")
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(token))
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    assert submit._local_token("http://127.0.0.1:8265") == "local-token-value"
    assert submit._local_token("http://head.example.com:8265") is None
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # the user asks for it
    assert submit._local_token("http://head.example.com:8265") == "local-token-value"
    monkeypatch.setenv("RAY_AUTH_TOKEN", "given")
    assert submit._local_token("http://head.example.com:8265") == "given"
