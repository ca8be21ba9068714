"""Real S3 for tests: a moto server (and SeaweedFS, a real store: tests/helpers/seaweed.py) on
loopback for the session, and a fault-injecting proxy.

s3fs talks HTTP to these exactly as it talks to AWS (this is how s3fs tests itself). The proxy
sits between the client and the store and, by rule, answers 503 SlowDown, resets the connection,
stalls past the client's read timeout, or forwards a request and then drops its response (the
store applied it, the client never hears). Fixtures `s3` and `flaky_s3` are at the bottom.
"""

from __future__ import annotations

import http.client
import logging
import re
import socket
import struct
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.helpers.seaweed import SeaweedServer

BUCKET = "bucket"
KEY_ID = "synthgen-test-key-id"
# Distinctive, so a test can grep every object a job wrote for it.
SECRET = "synthgen-test-SECRET-0c8f3a91d2"

SLOWDOWN_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
                 b"<Message>Please reduce your request rate.</Message></Error>")
DENIED_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
               b"<Message>Access Denied</Message></Error>")
# What AWS answers a client signing for another region than the bucket's (moto and SeaweedFS
# ignore regions): no Region element, so botocore cannot redirect itself.
WRONG_REGION_BODY = (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AuthorizationHeaderMalformed'
                     b"</Code><Message>The authorization header is malformed; the region 'us-east-1' "
                     b"is wrong</Message></Error>")
# Faults answered without asking the store: (status, body).
CANNED = {"slowdown": (503, SLOWDOWN_BODY), "deny": (403, DENIED_BODY),
          "wrong_region": (400, WRONG_REGION_BODY)}
FAULTS = ("slowdown", "reset", "stall", "lost", "deny")
STALL_S = 2.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port; `reset()` empties every bucket."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=10).close()


@dataclass
class Rule:
    """Inject `fault` into the next `times` requests whose method and path+query match."""

    fault: str
    method: str = ".*"
    path: str = ".*"
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and re.fullmatch(self.method, method) is not None and \
            re.search(self.path, path) is not None


@dataclass
class FaultPlan:
    """Targeted rules, plus a background fault on every `every`-th request (0 = none)."""

    rules: list[Rule] = field(default_factory=list)
    every: int = 0
    background: tuple[str, ...] = ("slowdown", "reset", "stall", "lost")
    seen: list[tuple[str, str]] = field(default_factory=list)  # every request: (method, path)
    injected: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self, method: str, path: str) -> str | None:
        with self.lock:
            self.seen.append((method, path))
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return self._count(rule.fault)
            count = len(self.seen)
            if self.every and count % self.every == 0:
                return self._count(self.background[(count // self.every) % len(self.background)])
            return None

    def _count(self, fault: str) -> str:
        self.injected[fault] += 1
        return fault


class FlakyProxy:
    """An HTTP/1.1 proxy in front of a store server that injects faults by plan."""

    def __init__(self, upstream_port: int) -> None:
        self.plan = FaultPlan()
        self.ignore_conditions = False  # True: behave like a store without If-None-Match
        self.upstream_port = upstream_port
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self.server = _QuietServer(("127.0.0.1", free_port()), handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a stalled reply is the point of the stall, not an error."""


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: FlakyProxy

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base signature
        pass

    def _handle(self) -> None:
        body = self._read_body()
        fault = self.proxy.plan.pick(self.command, self.path)
        if fault == "reset":
            return self._reset()
        if fault in CANNED:
            status, payload = CANNED[fault]
            return self._reply(status, {"Content-Type": "application/xml"}, payload)
        status, headers, payload = self._forward(body)
        if fault == "lost":
            return self._reset()
        if fault == "stall":
            time.sleep(STALL_S)
        self._reply(status, headers, payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy.upstream_port, timeout=30)
        dropped = {"transfer-encoding"} | ({"if-none-match"} if self.proxy.ignore_conditions else set())
        headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
        headers["Content-Length"] = str(len(body))
        try:
            conn.request(self.command, self.path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            return response.status, dict(response.getheaders()), payload
        finally:
            conn.close()

    def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "date",
                                   "server"):
                self.send_header(key, value)
        length = headers.get("Content-Length", str(len(payload))) if self.command == "HEAD" \
            else str(len(payload))
        self.send_header("Content-Length", length)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _reset(self) -> None:
        """Close with RST: the client sees a connection reset, not a clean end."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def committed_ids(store: Any) -> list[int]:
    """Every sample_id in the data files the commit markers name, duplicates included."""

    from synthgen.output.catalog import read_markers
    from synthgen.output.formats import format_of

    ids: list[int] = []
    for marker in read_markers(store).values():
        table = format_of(marker.file).read_table(store.read_bytes(marker.file), ["sample_id"])
        ids += table.column("sample_id").to_pylist()
    return ids


def assert_complete(store: Any, total: int) -> None:
    """The invariants: verify passes, each planned sample once, _SUCCESS, no orphan data file."""
    from synthgen.output.catalog import read_markers
    from synthgen.output.verify import verify

    assert verify(store) == []
    assert sorted(committed_ids(store)) == list(range(total))
    assert store.exists("_SUCCESS")
    named = {m.file for m in read_markers(store).values()}
    assert {f"data/{name}" for name in store.list("data")} == named


@dataclass
class S3:
    """One test's S3: endpoint, the env a CLI subprocess needs, and an s3fs filesystem."""

    endpoint: str
    proxy: FlakyProxy | None = None
    kind: str = "moto"  # which store server: a key of SERVERS

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1"}

    @property
    def fs(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, key=KEY_ID, secret=SECRET,
                                 skip_instance_cache=True, use_listings_cache=False)

    def objects(self, prefix: str) -> dict[str, bytes]:
        """Every object under bucket/prefix, by key relative to it."""
        fs = self.fs
        root = f"{BUCKET}/{prefix}".rstrip("/")
        return {p[len(root) + 1:]: fs.cat_file(p) for p in fs.find(root)}

    def pending_uploads(self, prefix: str = "") -> list[str]:
        uploads = self.fs.call_s3("list_multipart_uploads", Bucket=BUCKET, Prefix=prefix)
        return [u["Key"] for u in uploads.get("Uploads", [])]


# The store servers a test can ask for by name; `s3` and `flaky_s3` use moto unless a test is
# parametrized with another (ON_BOTH_STORES, FLAKY_ON_BOTH_STORES).
SERVERS = {"moto": "moto_server", "seaweedfs": "seaweed_server"}
ON_BOTH_STORES = pytest.mark.parametrize("s3", list(SERVERS), indirect=True)
FLAKY_ON_BOTH_STORES = pytest.mark.parametrize("flaky_s3", list(SERVERS), indirect=True)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """Started only when a test asks for it, stopped (by pid) when the session ends."""
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"), KEY_ID, SECRET, free_port)
    server.start()
    yield server
    server.stop()


def fresh_s3(request: pytest.FixtureRequest, kind: str = "moto", proxied: bool = False) -> S3:
    """`kind`'s store server emptied to one bucket, and this process's AWS env pointed at it, or
    at a fault proxy started in front of it (the caller stops it). For fixtures whose own
    parameter names the store."""
    import s3fs

    server: MotoServer | SeaweedServer = request.getfixturevalue(SERVERS[kind])
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    server.reset()
    proxy = FlakyProxy(server.port) if proxied else None
    endpoint = proxy.endpoint if proxy else server.endpoint
    for key, value in S3(endpoint).env.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    S3(server.endpoint).fs.mkdir(BUCKET)
    if proxy:
        proxy.start()
    return S3(endpoint, proxy, kind)


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> S3:
    """moto (or the store a test is parametrized with) reset to empty with bucket `bucket`; the
    test process's env points at it."""
    return fresh_s3(request, getattr(request, "param", "moto"))


@pytest.fixture
def flaky_s3(request: pytest.FixtureRequest) -> Iterator[S3]:
    """Like `s3`, but every request passes the fault proxy (no faults until a test plans some)."""
    store = fresh_s3(request, getattr(request, "param", "moto"), proxied=True)
    yield store
    store.proxy.stop()


__all__ = ["BUCKET", "FAULTS", "FLAKY_ON_BOTH_STORES", "ON_BOTH_STORES", "SECRET", "S3", "FaultPlan",
           "Rule", "assert_complete", "committed_ids", "flaky_s3", "fresh_s3", "moto_server", "s3",
           "seaweed_server", "wait_for"]
