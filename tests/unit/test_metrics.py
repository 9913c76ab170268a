"""`gateway.metrics`: where metrics are served, and that recording is free when they are off."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gateway import metrics_http
from gateway.errors import ConfigError


def _settings(tmp_path: Path, toml: str, **attributes: Any) -> Any:
    config = tmp_path / "gateway.toml"
    config.write_text(toml)
    return SimpleNamespace(config_path=config, **attributes)


def test_listen_address_from_the_settings_or_else_the_metrics_table(tmp_path: Path) -> None:
    """`[metrics] listen = "HOST:PORT"` turns metrics on; without it they are off. Settings
    that carry the key are used as they are."""
    on = _settings(tmp_path, '[metrics]\nlisten = "127.0.0.1:9464"\n')
    assert metrics_http.listen_address(on) == ("127.0.0.1", 9464)
    assert metrics_http.listen_address(_settings(tmp_path, "[gateway]\n")) is None
    parsed = _settings(tmp_path, "", metrics_listen="[::1]:9100")
    assert metrics_http.listen_address(parsed) == ("::1", 9100)
    assert metrics_http.listen_address(_settings(tmp_path, "", metrics_listen=None)) is None


def test_a_bad_listen_address_names_the_key(tmp_path: Path) -> None:
    """A typo is a configuration error naming `metrics.listen`, not a crash at first scrape."""
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        metrics_http.listen_address(_settings(tmp_path, '[metrics]\nlisten = "9464"\n'))


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
