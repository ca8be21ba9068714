"""`synthgen submit`: hand a whole job to a Ray cluster through the Ray Jobs API.

The driver then runs on the cluster (`synthgen run-submitted`), so the submitting machine may go
away. It receives the resolved spec and manifest as one file in a small working_dir (the cluster
never needs the user's spec or manifest files) and, unless the cluster is said to have it, this
very synthgen package as a py_module, so driver and actors run the code that submitted them.
The output URI goes into the Ray job's metadata: that is how `synthgen jobs` finds it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from ray.exceptions import AuthenticationError
from ray.job_submission import JobSubmissionClient

import synthgen
from synthgen.engine.driver import prepare, run_job
from synthgen.errors import UserError
from synthgen.inputs.labeled_keys import job_manifest
from synthgen.spec.job_spec import JobSpec
from synthgen.spec.plan import Plan
from synthgen.storage.redact import redact_spec, redact_text

log = logging.getLogger("synthgen")

PAYLOAD_FILE = "synthgen-job.json"
METADATA_KEY = "synthgen"  # present in the metadata of every job synthgen submitted
ENTRYPOINT = f"python -m synthgen.cli run-submitted {PAYLOAD_FILE}"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
POLL_S = 1.0
CANCEL_WAIT_S = 60.0
AGENT_WAIT_S = 60.0
AGENT_POLL_S = 5.0
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Submitted:
    ray_job: str  # the Ray submission id
    job_id: str  # synthgen's job id (the data fingerprint)
    output: str
    address: str
    token: bool  # the cluster wanted this machine's Ray auth token

    @property
    def logs_command(self) -> str:
        """Ray's own CLI sends the token only when told to."""
        prefix = "RAY_AUTH_MODE=token " if self.token else ""
        return f"{prefix}ray job logs --follow {self.ray_job} --address {self.address}"


@dataclass(frozen=True)
class Finished:
    ray_job: str
    status: str  # SUCCEEDED | FAILED | STOPPED
    exit_code: int | None  # the driver's exit code, when it ran
    cause: str
    output: str | None

    def describe(self) -> str:
        """One line for a job that did not succeed."""
        text = f"Ray job {self.ray_job} {self.status.lower()}: {self.cause}"
        if self.status == "STOPPED" and self.output:
            text += f"; committed shards stay, `synthgen resume {self.output}` continues the job"
        return text


def dashboard_url(address: str | None) -> str:
    """The Jobs API address: --address, else RAY_API_SERVER_ADDRESS, else an http RAY_ADDRESS."""
    ray_address = os.environ.get("RAY_ADDRESS", "")
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS")
    if not address and ray_address.startswith(("http://", "https://")):
        address = ray_address
    if not address:
        raise UserError("--address", None, "give the Ray dashboard's address, e.g. "
                        "--address http://HEAD:8265 (or set RAY_API_SERVER_ADDRESS)")
    return address if "://" in address else f"http://{address}"


def jobs_client(address: str | None) -> Any:
    """A JobSubmissionClient for the cluster at `address` (see `_connect`)."""
    return _connect(address)[0]


def _connect(address: str | None) -> tuple[Any, bool]:
    """(client, whether it sends this machine's Ray auth token).

    Ray's clients send the token only under RAY_AUTH_MODE=token, while `ray start --head` turns
    token auth on wherever a token exists (any local `ray.init()` creates one): a 401 is retried
    once with the local token.
    """
    url = dashboard_url(address)
    if not log.isEnabledFor(logging.DEBUG):  # Ray's SDK sets its own loggers to INFO
        for name in ("ray", "ray.dashboard.modules.dashboard_sdk", "ray.dashboard.modules.job.sdk"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        try:
            return JobSubmissionClient(url), False
        except AuthenticationError:
            token = _local_token(url)
            if token is None:
                raise UserError("--address", url, "the cluster wants a Ray auth token; this "
                                "machine's own token goes only to a head on this machine: set "
                                "RAY_AUTH_TOKEN to the one `ray get-auth-token` prints on the "
                                "head, or RAY_AUTH_MODE=token to send the local one") from None
            return JobSubmissionClient(url, headers={"Authorization": f"Bearer {token}"}), True
    except AuthenticationError:
        raise UserError("--address", url, "the cluster refused this machine's Ray auth token; set "
                        "RAY_AUTH_TOKEN to the one `ray get-auth-token` prints on the head") from None
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError("--address", url, f"no Ray Jobs API answers there ({_one_line(exc)}); give "
                        "the dashboard's address (port 8265 by default, not the GCS port 6379) "
                        "and check the head is up") from None


def submit(spec: JobSpec, address: str | None, ship_package: bool = True) -> Submitted:
    """Plan the job here (manifest files are read here), then submit its driver to the cluster."""
    url = dashboard_url(address)
    spec = _for_cluster(spec, url)
    plan = Plan.build(spec, job_manifest(spec))
    client, token = _connect(url)
    ray_job = f"synthgen-{_slug(spec.name)}-{uuid.uuid4().hex[:8]}"
    metadata = {METADATA_KEY: synthgen.__version__, "output": redact_text(spec.output.uri),
                "job_id": plan.job_id, "name": spec.name}
    with tempfile.TemporaryDirectory(prefix="synthgen-submit-") as folder:
        Path(folder, PAYLOAD_FILE).write_text(json.dumps(payload(plan)))
        _submit_job(client, entrypoint=ENTRYPOINT, submission_id=ray_job, metadata=metadata,
                    runtime_env=_runtime_env(folder, ship_package))
    return Submitted(ray_job=ray_job, job_id=plan.job_id, output=spec.output.uri, address=url,
                     token=token)


def payload(plan: Plan) -> dict[str, Any]:
    """The job as the cluster receives it, redacted like job.json (Ray keeps the working_dir):
    the cluster's own credentials (its environment, its instance roles) open the store there."""
    data = plan.to_json()
    return {**data, "spec": redact_spec(data["spec"])}


def follow(address: str | None, ray_job: str, echo: Callable[[str], None]) -> Finished:
    """Stream the job's log through `echo` until it ends; then its outcome and cause."""
    client = jobs_client(address)
    info = _info(client, ray_job)
    lines: deque[str] = deque(maxlen=500)

    async def tail() -> None:
        async for chunk in client.tail_job_logs(ray_job):
            echo(chunk)
            lines.extend(chunk.splitlines())

    try:
        asyncio.run(tail())
    except Exception as exc:  # noqa: BLE001 - a dropped log stream is not the job's outcome
        log.warning("lost the job's log stream (%s); waiting for it to end", _one_line(exc))
    while info.status.value not in TERMINAL:
        time.sleep(POLL_S)
        info = client.get_job_info(ray_job)
    return Finished(ray_job=ray_job, status=info.status.value, exit_code=info.driver_exit_code,
                    cause=_cause(info, lines), output=(info.metadata or {}).get("output"))


def list_jobs(address: str | None) -> list[dict[str, Any]]:
    """synthgen's Ray jobs on the cluster, oldest first, with their outputs."""
    client = jobs_client(address)
    jobs = [j for j in client.list_jobs() if METADATA_KEY in (j.metadata or {})]
    return [_summary(j) for j in sorted(jobs, key=lambda j: j.start_time or 0)]


def cancel(address: str | None, ray_job: str) -> dict[str, Any]:
    """Stop a synthgen job and wait until Ray says it ended; committed shards stay."""
    client = jobs_client(address)
    info = _info(client, ray_job)
    if METADATA_KEY not in (info.metadata or {}):
        raise UserError("JOB_ID", ray_job, "is not a job synthgen submitted; `ray job stop` it")
    if info.status.value not in TERMINAL:
        client.stop_job(ray_job)
        deadline = time.monotonic() + CANCEL_WAIT_S
        while info.status.value not in TERMINAL and time.monotonic() < deadline:
            time.sleep(POLL_S)
            info = client.get_job_info(ray_job)
    return _summary(info)


def run_submitted(path: str) -> dict[str, Any]:
    """The driver on the cluster: the job as submitted, run to completion."""
    # Ray stops a job with SIGTERM, then SIGKILL 3 s later: unwind (releasing the output's job
    # lock) instead of dying on the spot. ray.init installs the same handler once connected.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    plan = Plan.from_json(json.loads(Path(path).read_text()))
    return run_job(prepare(plan.spec, plan.manifest))


def _submit_job(client: Any, **request: Any) -> None:
    """A head answers before its job agent is up (right after `ray start`): wait for the agent."""
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            client.submit_job(**request)
            return
        except RuntimeError as exc:
            if "No available agent" not in str(exc):
                raise
        if time.monotonic() > deadline:
            raise UserError("--address", client.get_address(), f"the head's job agent did not come up "
                            f"in {AGENT_WAIT_S:.0f} s; see dashboard_agent.log in the head's session "
                            "logs (a port another Ray on that machine holds? then start the head "
                            "with --dashboard-agent-listen-port FREE_PORT)")
        log.info("waiting for the head's job agent to come up")
        time.sleep(AGENT_POLL_S)


def _for_cluster(spec: JobSpec, url: str) -> JobSpec:
    """A relative local output becomes absolute (the driver runs in a temporary folder); local
    paths on a remote cluster are the nodes' own disks, which deserves a warning."""
    uri = spec.output.uri
    local = "://" not in uri or uri.startswith("file://")
    if "://" not in uri:
        uri = str(Path(uri).expanduser().resolve())
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"uri": uri})})
    if local and urlparse(url).hostname not in LOOPBACK:
        log.warning("output.uri %s is a local path: each node of the cluster writes to its own "
                    "disk there; use object storage (s3://...) or a shared filesystem", uri)
    return spec


def _runtime_env(folder: str, ship_package: bool) -> dict[str, Any]:
    env: dict[str, Any] = {"working_dir": folder, "excludes": ["__pycache__", "*.pyc"]}
    if ship_package:
        env["py_modules"] = [str(Path(synthgen.__file__).parent)]
    return env


def _local_token(url: str) -> str | None:
    """The Ray auth token to send to `url`: RAY_AUTH_TOKEN when the user set it; else this
    machine's token file, but only to a head on this machine or when the user asks for it
    (RAY_AUTH_MODE=token): it is not sent to a host it does not belong to."""
    mode = os.environ.get("RAY_AUTH_MODE", "").lower()
    if mode == "disabled":
        return None
    if os.environ.get("RAY_AUTH_TOKEN"):
        return os.environ["RAY_AUTH_TOKEN"].strip()
    if urlparse(url).hostname not in LOOPBACK and mode != "token":
        return None
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return path.read_text().strip() if path.is_file() else None


def _info(client: Any, ray_job: str) -> Any:
    try:
        return client.get_job_info(ray_job)
    except RuntimeError:
        raise UserError("JOB_ID", ray_job, "no such job on that cluster; `synthgen jobs --address "
                        "...` lists synthgen's jobs") from None


def _summary(info: Any) -> dict[str, Any]:
    meta = info.metadata or {}
    return {"ray_job": info.submission_id, "status": info.status.value, "output": meta.get("output"),
            "job_id": meta.get("job_id"), "name": meta.get("name"),
            "started": _when(info.start_time), "ended": _when(info.end_time),
            "message": _one_line(info.message or "")}


def _cause(info: Any, lines: deque[str]) -> str:
    """The driver's own `error:` line when it printed one, else Ray's message."""
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    return _one_line(info.message or info.status.value)


def _when(millis: int | None) -> str | None:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(millis / 1000)) if millis else None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "job"


def _one_line(value: Any) -> str:
    lines = [line.strip() for line in str(value).splitlines() if line.strip()]
    return lines[0] if lines else ""
