"""Reading a `vcdext run` process's Prometheus metrics (``--health-port``) from a test: what
the process has really done (a request in a handler, a redelivery seen), instead of guessing
it from a fixed sleep."""

from __future__ import annotations

import socket
import time

from prometheus_client.parser import text_string_to_metric_families

from vcdext.health import probe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    """Every sample of ``/metrics`` by (name, sorted labels); ``None`` while nothing answers."""
    try:
        status, text = probe("127.0.0.1", port, "/metrics", timeout=5)
    except OSError:
        return None
    if status != 200:
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric_total(port: int, name: str) -> float:
    """The sum of a metric's samples over all its labels (0 while nothing answers)."""
    found = scrape(port) or {}
    return sum(value for (sample, _), value in found.items() if sample == name)


def wait_for_metric(port: int, name: str, at_least: float, timeout: float = 30.0) -> None:
    """Until the sum of ``name``'s samples reaches ``at_least``; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (got := metric_total(port, name)) < at_least:
        assert time.monotonic() < deadline, f"{name} stayed at {got}, below {at_least}"
        time.sleep(0.05)
