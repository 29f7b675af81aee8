"""kombu's in-memory transport (``memory://``) without its polling sleep.

kombu's memory transport has no socket to wait on, so a consumer looks at its queues, sleeps
``polling_interval`` and looks again; every hop of a request through ``vcdext dev`` paid that
sleep. Here every put into an in-memory queue notifies one condition, and whoever waits for a
message waits on it. The queues and exchanges are kombu's own (one global state per process),
so a connection made with this transport and one made with kombu's ``memory://`` see each other.

Use :func:`connection_for` for any URL: it gives ``memory://`` this transport.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from queue import Empty
from typing import Any

from kombu.connection import Connection
from kombu.transport import memory as _kombu_memory

_changed = threading.Condition()
_puts = 0
_waiting = 0  # threads in wait(), so that notify() costs nothing when no one uses memory://


def notify() -> None:
    """Wake every thread waiting in :func:`wait` (a message was put, or work handed over)."""
    global _puts
    # Count first, then look for waiters: a waiter registers before it checks the count, so
    # either it sees this count or this sees it (and wakes it under the lock).
    _puts += 1
    if _waiting:
        with _changed:
            _changed.notify_all()


def snapshot() -> int:
    """The number of notifications so far; take it before looking at the queues."""
    return _puts


def wait(seen: int, timeout: float, ready: Callable[[], bool] | None = None) -> None:
    """Sleep until a :func:`notify` after :func:`snapshot` gave ``seen`` (or ``ready()`` is
    true, or ``timeout`` seconds passed)."""
    global _waiting
    with _changed:
        _waiting += 1
        try:
            _changed.wait_for(lambda: _puts != seen or (ready is not None and ready()), timeout)
        finally:
            _waiting -= 1


class _Channel(_kombu_memory.Channel):
    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:
        super()._put(queue, message, **kwargs)
        notify()

    def _put_fanout(
        self, exchange: Any, message: Any, routing_key: Any = None, **kwargs: Any
    ) -> None:
        super()._put_fanout(exchange, message, routing_key, **kwargs)
        notify()


class Transport(_kombu_memory.Transport):
    """kombu's memory transport whose ``drain_events`` waits for a put instead of sleeping."""

    Channel = _Channel

    def drain_events(self, connection: Any, timeout: Any = None) -> None:  # type: ignore[override]
        deadline = None if timeout is None else time.monotonic() + timeout
        assert self.cycle is not None
        get = self.cycle.get
        while True:
            seen = _puts
            try:
                get(self._deliver, timeout=timeout)
                return
            except Empty:
                interval = self.polling_interval
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError() from None
                    interval = min(interval, remaining)
                wait(seen, interval)


def connection_for(url: str, **options: Any) -> Connection:
    """A kombu connection to ``url``; ``memory://`` uses this module's transport."""
    if url.startswith("memory://"):
        return Connection(transport=Transport, **options)
    return Connection(url, **options)
