"""`gateway.metrics`: where metrics are served, and that recording is free when they are off."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from typing import Any

import pytest

from gateway import metrics_http


def test_slow_connections_hold_the_metrics_port_for_a_bounded_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connections that trickle a byte now and then (a slowloris) take every slot of the
    metrics server, but each only until its time is up: then a scrape is served again (a
    review: a per-read timeout let them hold the slots for as long as they trickled).
    A real server on a loopback port; its time shortened to a second."""
    monkeypatch.setattr(metrics_http, "connection_seconds_max", 1)

    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]

    server = metrics_http._make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    slots = range(metrics_http.connections_max)
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in slots]
    try:
        line = b"GET /metrics?" + b"x" * 100  # a request line never finished
        for at in range(15):  # one byte every 0.2 s: within any read's timeout
            for conn in slow:
                with contextlib.suppress(OSError):
                    conn.sendall(line[at : at + 1])
            time.sleep(0.2)

        def cut(conn: socket.socket) -> bool:
            conn.settimeout(0.5)
            try:
                return conn.recv(1) == b""
            except TimeoutError:
                return False  # still held open
            except OSError:
                return True

        assert all(map(cut, slow))  # each ended a second after it was taken
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b"ok\n"
    finally:
        for conn in slow:
            conn.close()
        server.shutdown()
        server.server_close()
