"""The health port of ``vcdext run --health-port N``: ``/healthz``, ``/readyz``, ``/metrics``.

A standard-library HTTP server in one daemon thread; it reads :class:`HealthState`, which the
composition root fills in as the runtime starts, serves and drains. ``vcdext health`` asks
``/healthz`` (:func:`probe`) for a container's HEALTHCHECK.
"""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

#: Paths served, for the 404 page.
PATHS = ("/healthz", "/readyz", "/metrics")


class HealthState:
    """What the probes report. Set by the composition root; read by the health server."""

    def __init__(self) -> None:
        #: The thread that runs the AMQP transport (``None`` until it is started).
        self.consumer: threading.Thread | None = None
        #: Set while the broker connection is up and the topology declared (the transport's
        #: ``ready``).
        self.connected = threading.Event()
        #: Set once the registration with vCD ran, failed or was skipped.
        self.registered = threading.Event()
        #: Set once SIGTERM/SIGINT asked the process to stop (in-flight requests drain).
        self.draining = threading.Event()
        #: Seconds since the last reply the broker confirmed (``None``: none yet).
        self.last_reply_age: Callable[[], float | None] = lambda: None
        #: The notification consumer's thread, when a plugin declared notification or
        #: blocking-task handlers (``None``: none declared, the probes leave it out).
        self.notifications: threading.Thread | None = None
        #: Set while the notification consumer holds its broker connection and consumes.
        self.notifications_connected = threading.Event()

    def watch_notifications(self, thread: threading.Thread, consuming: threading.Event) -> None:
        """Report the notification consumer running on ``thread`` (``consuming``: its
        ``ready``) in the probes from now on."""
        self.notifications_connected = consuming
        self.notifications = thread

    def _notifications(self) -> tuple[bool, bool] | None:
        """(thread alive, consuming) of the notification consumer; ``None``: there is none."""
        thread = self.notifications
        if thread is None:
            return None
        alive = thread.is_alive()
        return alive, alive and self.notifications_connected.is_set()

    def healthz(self) -> tuple[int, dict[str, Any]]:
        """Liveness: the consumer thread runs and holds a broker connection (and so does
        the notification consumer's, when there is one, until SIGTERM stops it)."""
        consumer = self.consumer is not None and self.consumer.is_alive()
        connected = self.connected.is_set()
        age = self.last_reply_age()
        ok = consumer and connected
        doc: dict[str, Any] = {
            "process": True,
            "consumer_thread": consumer,
            "broker_connected": connected,
            "last_reply_age_seconds": None if age is None else round(age, 3),
        }
        notifications = self._notifications()
        if notifications is not None:
            alive, consuming = notifications
            doc["notifications_consumer_alive"] = alive
            doc["notifications_broker_connected"] = consuming
            # Stopped on purpose while draining: the request consumer's health still counts.
            ok = ok and ((alive and consuming) or self.draining.is_set())
        return (200 if ok else 503), {"status": "ok" if ok else "failing", **doc}

    def readyz(self) -> tuple[int, dict[str, Any]]:
        """Readiness: serving (topology declared, consumer up, the notification consumer
        consuming when there is one), registration done or skipped, and not draining."""
        consumer = self.consumer is not None and self.consumer.is_alive()
        topology = self.connected.is_set() and consumer
        registered = self.registered.is_set()
        draining = self.draining.is_set()
        ok = topology and registered and not draining
        doc: dict[str, Any] = {
            "topology_declared": topology,
            "registration_done": registered,
            "draining": draining,
        }
        notifications = self._notifications()
        if notifications is not None:
            doc["notifications_consuming"] = notifications[1]
            ok = ok and notifications[1]
        return (200 if ok else 503), {"status": "ready" if ok else "not ready", **doc}


class HealthServer:
    """Serves ``state`` (and ``metrics``, a callable giving the body and content type of
    ``/metrics``) on ``host:port`` from a daemon thread until :meth:`close`.

    :raises OSError: the port cannot be bound (in use, or not allowed).
    """

    def __init__(
        self,
        state: HealthState,
        host: str,
        port: int,
        metrics: Callable[[], tuple[bytes, str]] | None = None,
    ) -> None:
        self.state = state
        self._metrics = metrics
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "vcdext-health"
            sys_version = ""

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/healthz":
                    self._json(*server.state.healthz())
                elif path == "/readyz":
                    self._json(*server.state.readyz())
                elif path == "/metrics" and server._metrics is not None:
                    body, ctype = server._metrics()
                    self._send(200, ctype, body)
                else:
                    self._json(404, {"error": "not found", "paths": list(PATHS)})

            def _json(self, status: int, doc: dict[str, Any]) -> None:
                self._send(status, "application/json", json.dumps(doc).encode() + b"\n")

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health: " + format, *args)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="vcdext-health", daemon=True
        )
        self._thread.start()
        log.info(
            "health and metrics on http://%s:%d (/healthz, /readyz, /metrics)", host, self.port
        )

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


def probe_host(host: str) -> str:
    """The address to probe a server listening on ``host`` at (a wildcard → loopback)."""
    return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # noqa: S104


def probe(host: str, port: int, path: str = "/healthz", timeout: float = 5.0) -> tuple[int, str]:
    """GET ``path`` on the health port: (status, body). Raises :class:`OSError` when nothing
    answers."""
    conn = http.client.HTTPConnection(probe_host(host), port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()
