"""Prometheus metrics: the :class:`~vcdext.observer.Observer` that counts.

``vcdext run --health-port N`` serves them at ``/metrics`` in Prometheus' text format. Each
runtime has its own :class:`prometheus_client.CollectorRegistry` (nothing is registered
globally, so two runtimes in one process never mix their numbers). The request path pays a
dictionary look-up, a counter increment and a histogram observation per request (and per
notification handler run); the gauges (requests running and waiting) are read only when
``/metrics`` is scraped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from .observer import Observer

#: Latency buckets in seconds: vCD gives up after ``extensibility.timeout`` (10 s by default).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics(Observer):
    """Counts what the runtime reports; :meth:`render` is the ``/metrics`` page."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "vcdext_requests",
            "Requests answered, by service (plugin), operation and HTTP status.",
            ("service", "operation", "status"),
            registry=r,
        )
        self._latency = Histogram(
            "vcdext_request_duration_seconds",
            "Time from a worker taking a request to its reply being ready.",
            ("service", "operation"),
            buckets=BUCKETS,
            registry=r,
        )
        self._running = Gauge(
            "vcdext_requests_in_progress", "Requests in a handler now.", registry=r
        )
        self._waiting = Gauge(
            "vcdext_requests_waiting",
            "Requests this process received that wait for a free worker (the broker's own "
            "queue depth is RabbitMQ's metric).",
            registry=r,
        )
        self._redeliveries = Counter(
            "vcdext_redeliveries",
            "Requests the broker delivered again.",
            ("service",),
            registry=r,
        )
        self._late = Counter(
            "vcdext_dropped_after_deadline",
            "Requests that waited past vCD's timeout and were answered 503 unhandled.",
            ("service",),
            registry=r,
        )
        self._reconnects = Counter(
            "vcdext_reconnects",
            "Broker connections lost (each is then reopened).",
            ("connection",),
            registry=r,
        )
        self._registrations = Counter(
            "vcdext_registration_runs",
            "Registration runs with vCD, by outcome (ok, failed, skipped).",
            ("outcome",),
            registry=r,
        )
        self._changes = Counter(
            "vcdext_registration_changes", "Changes applied to vCD's registration.", registry=r
        )
        self._notifications = Counter(
            "vcdext_notifications",
            "Notification handler runs, by plugin, notification type and outcome (ok, "
            "requeued, failed).",
            ("plugin", "type", "outcome"),
            registry=r,
        )
        self._notification_latency = Histogram(
            "vcdext_notification_duration_seconds",
            "Time a notification handler (or a blocking-task decision) took.",
            ("plugin", "type"),
            buckets=BUCKETS,
            registry=r,
        )
        self._decisions = Counter(
            "vcdext_blocking_decisions",
            "What blocking-task handlers did, by plugin and action (resume, abort, fail, "
            "extend, default).",
            ("plugin", "action"),
            registry=r,
        )
        self._tasks = Counter(
            "vcdext_task_states", "vCD task state changes, by new state.", ("state",), registry=r
        )
        Gauge(
            "vcdext_last_reply_age_seconds",
            "Seconds since the broker last confirmed a reply (-1: none yet).",
            registry=r,
        ).set_function(lambda: -1.0 if (age := self.last_reply_age()) is None else age)
        ProcessCollector(registry=r)
        self._lock = threading.Lock()
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._note_children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self._last_reply: float | None = None
        self._running.set_function(lambda: 0)
        self._waiting.set_function(lambda: 0)

    def watch(self, load: Callable[[], tuple[int, int]]) -> None:
        """Read the in-progress and waiting gauges from ``load()`` (the transport's) at
        scrape time."""
        self._running.set_function(lambda: load()[0])
        self._waiting.set_function(lambda: load()[1])

    def render(self) -> tuple[bytes, str]:
        """The metrics in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def last_reply_age(self) -> float | None:
        """Seconds since the broker last confirmed a reply (``None``: never)."""
        last = self._last_reply
        return None if last is None else time.monotonic() - last

    # -- Observer ---------------------------------------------------------------------------

    def request_done(self, service: str, operation: str, status: int, seconds: float) -> None:
        key = (service, operation, status)
        children = self._children.get(key)
        if children is None:
            with self._lock:
                children = self._children[key] = (
                    self._requests.labels(service, operation, str(status)),
                    self._latency.labels(service, operation),
                )
        children[0].inc()
        children[1].observe(seconds)

    def dropped_late(self, service: str) -> None:
        self._late.labels(service).inc()

    def redelivered(self, service: str) -> None:
        self._redeliveries.labels(service).inc()

    def reconnected(self, connection: str) -> None:
        self._reconnects.labels(connection).inc()

    def replied(self) -> None:
        self._last_reply = time.monotonic()

    def registration(self, outcome: str, changes: int) -> None:
        self._registrations.labels(outcome).inc()
        if changes:
            self._changes.inc(changes)

    def notification_handled(self, plugin: str, type: str, outcome: str, seconds: float) -> None:
        key = (plugin, type, outcome)
        children = self._note_children.get(key)
        if children is None:
            with self._lock:
                children = self._note_children[key] = (
                    self._notifications.labels(plugin, type, outcome),
                    self._notification_latency.labels(plugin, type),
                )
        children[0].inc()
        children[1].observe(seconds)

    def blocking_decision(self, plugin: str, action: str) -> None:
        self._decisions.labels(plugin, action).inc()

    def task_state(self, state: str) -> None:
        self._tasks.labels(state).inc()
