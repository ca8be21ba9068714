"""Redaction hides secrets and nothing else: a real job run with a realistic environment (PWD,
OLDPWD, HOME, PATH and fake AWS / Hugging Face secrets) and a model URL holding a password
shows paths as they are, and no secret in errors, run logs, job.json, the card, index.parquet
or the shard rows."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthgen.storage.redact import redact_text, secret_name
from tests.conftest import synthgen, tiny_spec, write_spec

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz9secret"
HF_TOKEN = "hf_FakeTokenFakeTokenFakeTokenFake0123"
PASSWORD = "url-pass-5e1f0a"


@pytest.fixture
def model_url(tmp_path: Path, class_model: Path) -> Iterator[str]:
    """The tiny model served by a local HTTP server, its URL holding a user and password."""
    shutil.copytree(class_model, tmp_path / "site" / "m")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "site")))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://reader:{PASSWORD}@127.0.0.1:{server.server_port}/m"
    server.shutdown()
    server.server_close()


def realistic_env(work: Path) -> dict[str, str]:
    return {"PWD": str(work), "OLDPWD": str(work.parent), "HOME": os.environ["HOME"],
            "PATH": os.environ["PATH"],
            "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "HF_TOKEN": HF_TOKEN, "SYNTHGEN_CACHE": str(work / "cache")}


def test_a_real_job_keeps_paths_and_loses_every_secret(tmp_path: Path, model_url: str,
                                                       ray_address: str) -> None:
    work = tmp_path / "work"
    out = work / "out"
    work.mkdir()
    spec = tiny_spec(Path("unused"), out, classes__count=2, sampler__steps=2)
    spec["model"]["source"] = model_url
    env = realistic_env(work)
    done = synthgen("run", str(write_spec(work / "spec.yaml", spec)), "--per-worker",
                    address=ray_address, env=env)
    assert done.returncode == 0, done.stderr
    refused = synthgen("run", str(work / "spec.yaml"), "--output", str(work / "spec.yaml"), env=env)
    assert refused.returncode == 2 and str(work / "spec.yaml") in refused.stderr, refused.stderr
    shown = done.stdout + done.stderr + refused.stderr
    stored = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    rows = pq.read_table(out / "data").column("model").to_pylist()
    index = pq.read_table(out / "index.parquet").column("model").to_pylist()
    for secret in (AWS_SECRET, HF_TOKEN, PASSWORD):
        assert secret not in shown and secret.encode() not in stored, secret
    assert set(rows) == set(index) == {model_url.replace(f"reader:{PASSWORD}", "***")}
    logs = "".join(p.read_text() for p in (out / "_logs").iterdir())
    assert str(out) in logs and str(out) in (out / "job.json").read_text()


@pytest.mark.parametrize("text", [
    "error: output.uri /home/ann/pwd-project/out: cannot write",
    "--set dotted.key=value (dotted path, repeatable)",
    "KeyError: 'token'", "max_new_tokens=40", "the token expired; basic usage; a monkey keyboard",
    "SSH_AUTH_SOCK=/tmp/ssh-abc/agent.1", "GOOGLE_APPLICATION_CREDENTIALS=/home/ann/creds.json",
])
def test_ordinary_text_is_shown_as_it_is(text: str) -> None:
    env = {"PWD": "/home/ann/pwd-project", "OLDPWD": "/home/ann", "HOME": "/home/ann"}
    assert redact_text(text, environ=env) == text


@pytest.mark.parametrize("text", [
    f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", f"token: {HF_TOKEN}", f"got {HF_TOKEN} back",
    f"https://reader:{PASSWORD}@host/m", f"https://h/x?X-Amz-Signature={PASSWORD}&a=1",
    f"AccountKey={PASSWORD};AccountName=a", f"client_secret={PASSWORD}",
    f'{{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE{PASSWORD}\\n-----END PRIVATE KEY-----\\n"}}',
    f"SharedAccessSignature=sv=2022&sig={PASSWORD}", f"Authorization: Basic {PASSWORD}",
])
def test_secrets_are_gone_whatever_their_form(text: str) -> None:
    once = redact_text(text, environ={})
    assert PASSWORD not in once and AWS_SECRET not in once and HF_TOKEN not in once, once
    assert redact_text(once, environ={}) == once


def test_secret_names_are_whole_words() -> None:
    secret = ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
              "AZURE_STORAGE_KEY", "AZURE_STORAGE_CONNECTION_STRING", "DB_PASSWORD", "secret",
              "token", "sas_token", "AccountKey", "client-secret", "output.storage_options.secret"]
    plain = ["PWD", "OLDPWD", "HOME", "PATH", "AWS_ACCESS_KEY_ID", "max_new_tokens", "KEYBOARD",
             "TOKENIZERS_PARALLELISM", "dotted.key", "key", "KeyError", "GOOGLE_APPLICATION_CREDENTIALS"]
    assert [n for n in secret if not secret_name(n)] == [] and [n for n in plain if secret_name(n)] == []
