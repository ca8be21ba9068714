"""A real HTTP server on 127.0.0.1 whose files' bodies never end (chunked, no length), for the
bounded-read tests. Each response stops after `seconds` or `limit` bytes, so a reader without a
cap fails its test instead of hanging it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LINE = b"name\n" * 200_000  # 1 MB of manifest rows, repeated


class _Endless(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seconds = 30.0
    limit = 1 << 30
    listing: dict[str, list[str]] = {}

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's name
        self._headers()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        links = self.listing.get(self.path.rstrip("/"))
        if links is not None:
            page = "".join(f'<a href="{link}">{link}</a>\n' for link in links).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        self._headers()
        end, sent = time.monotonic() + self.seconds, 0
        try:
            while time.monotonic() < end and sent < self.limit:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(LINE), LINE))
                sent += len(LINE)
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the reader stopped at its cap and hung up: the point of the test

    def _headers(self) -> None:
        if self.path.rstrip("/") in self.listing:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def endless_server(listing: dict[str, list[str]] | None = None) -> Iterator[str]:
    """The server's base URL; `listing` maps folder paths (no trailing slash) to the absolute
    links their pages show."""
    handler = type("Handler", (_Endless,), {"listing": listing or {}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
