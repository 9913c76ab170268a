"""The daemon's HTTP endpoint (`[metrics] listen`): `/metrics` in Prometheus text format
from `metrics.Metrics`' registry, and `/healthz` from the daemon's heartbeat; on a thread
of its own, with bounded connections."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from gateway.metrics import Metrics

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIEnvironment

# Connections to `[metrics] listen` served at once, and the seconds after which one is
# closed however it sends: Prometheus and a probe need one or two, for well under a
# second; the rest are turned away unserved.
connections_max = 8
connection_seconds_max = 10


def _make_server(host: str, port: int, app: Any) -> Any:
    """A WSGI server of at most `connections_max` connections, each a thread of its own
    and closed `connection_seconds_max` after it was taken, however slowly it sends: one
    that is not served at once is closed, so that connections to this port cannot take
    the descriptors the SFTP server needs (idle ones by the thousand made its accept()
    fail), nor hold the slots for longer than that."""
    # Imported here: http.server and friends are not worth loading into every `scan`.
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    class Quiet(WSGIRequestHandler):
        timeout = connection_seconds_max

        def log_message(self, format: str, *args: Any) -> None:
            pass  # a scrape every 15 s is not worth a log line

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        slots = threading.BoundedSemaphore(connections_max)

        def process_request(self, request: Any, client_address: Any) -> None:
            if not self.slots.acquire(blocking=False):
                self.shutdown_request(request)  # closed unserved: every slot is taken
                return
            try:
                super().process_request(request, client_address)
            except BaseException:
                self.slots.release()
                raise

        def process_request_thread(self, request: Any, client_address: Any) -> None:
            deadline = threading.Timer(connection_seconds_max, _cut, (request,))
            deadline.daemon = True
            deadline.start()
            try:
                super().process_request_thread(request, client_address)
            finally:
                deadline.cancel()
                self.slots.release()

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client gone, cut or timed out: not worth a traceback on stderr

    return make_server(host, port, app, Server, Quiet)


def _cut(request: socket.socket) -> None:
    """End a connection past its time: its handler's next read or write fails."""
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_RDWR)


class MetricsServer:
    """`/metrics` (Prometheus text format) and `/healthz` on a thread of their own."""

    def __init__(self, metrics: Metrics, host: str, port: int, healthy: Callable[[], bool]) -> None:
        from prometheus_client import make_wsgi_app

        metrics_app = make_wsgi_app(metrics.registry)

        def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
            path = environ.get("PATH_INFO", "")
            if path == "/metrics":
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            if path == "/healthz":
                ok = healthy()
                status = "200 OK" if ok else "503 Service Unavailable"
                start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
                return [b"ok\n" if ok else b"the daemon's heartbeat is stale\n"]
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"/metrics or /healthz\n"]

        self.server = _make_server(host, port, app)
        self.reader = metrics.reader
        self.host = host
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="metrics", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
