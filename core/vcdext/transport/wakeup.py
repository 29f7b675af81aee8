"""Waiting on a broker connection without polling, and waking the waiting thread.

A kombu connection belongs to one thread. That thread must react to the broker (a delivery, a
confirm) and to the other threads (a reply to publish, a request to forward) at once. Over
AMQP it sleeps in ``poll()`` on the connection sockets and a pipe that :meth:`Wakeup.set`
writes to; over the in-memory transport, which has no socket, on the condition that every put
into an in-memory queue notifies (:mod:`vcdext.transport.memory`).
"""

from __future__ import annotations

import contextlib
import os
import select
import ssl
import weakref
from collections.abc import Sequence
from typing import Any

from . import memory


def socket_of(conn: Any) -> Any | None:
    """The socket under a connected kombu connection, ``None`` for virtual transports."""
    raw = getattr(conn, "connection", None)
    return getattr(raw, "sock", None)


class Wakeup:
    """A flag other threads set to wake the owner of a connection from :meth:`wait`.

    The owner calls :meth:`clear` *before* it looks at the work the flag announces, so work
    handed over after that look always sets the flag again.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._pending = False
        self._poller: Any = None
        self._pipe_seen = False  # the last wait() found the pipe readable
        self._polled: dict[int, Any] = {}
        # The pipe closes with its owner (a server or forwarder), whoever forgets to close.
        self._closer = weakref.finalize(self, _close_fds, self._read, self._write)

    def set(self) -> None:
        """Wake the owner (any thread; cheap when it is awake already)."""
        if not self._pending:
            self._pending = True
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._write, b"\0")
            memory.notify()

    @property
    def pending(self) -> bool:
        return self._pending

    def clear(self) -> None:
        # The pipe holds a byte only if set() wrote one since the last clear (it writes when
        # it finds the flag down) or the last wait() saw one: otherwise no read is needed.
        if self._pending or self._pipe_seen:
            self._pending = False
            self._pipe_seen = False
            with contextlib.suppress(BlockingIOError, OSError):
                os.read(self._read, 4096)

    def wait(self, sockets: Sequence[Any], timeout: float, seen: int = 0) -> list[Any]:
        """Sleep until one of ``sockets`` is readable, :meth:`set` is called, or ``timeout``;
        returns the readable sockets. With no socket (in-memory transport) it waits for a put
        into an in-memory queue after :func:`memory.snapshot` gave ``seen``, and returns
        ``[]``."""
        if not sockets:
            memory.wait(seen, timeout, lambda: self._pending)
            return []
        # TLS may hold decrypted bytes that select() cannot see.
        buffered = [s for s in sockets if isinstance(s, ssl.SSLSocket) and s.pending()]
        if buffered:
            return buffered
        if self._pending:
            timeout = 0
        if not hasattr(select, "poll"):  # Windows: select() has no limit on numbers there
            readable, _, _ = select.select([self._read, *sockets], [], [], timeout)
            self._pipe_seen = self._pipe_seen or self._read in readable
            return [s for s in readable if s is not self._read]
        # poll(), not select(): select() refuses descriptors numbered 1024 and above, which a
        # busy process holds. The poller is kept while the sockets stay the same.
        by_fd = {s.fileno(): s for s in sockets}
        if self._poller is None or by_fd != self._polled:
            poller = select.poll()
            poller.register(self._read, select.POLLIN)
            for fd in by_fd:
                poller.register(fd, select.POLLIN)
            self._poller, self._polled = poller, by_fd
        events = self._poller.poll(max(0, int(timeout * 1000 + 0.999)))
        readable = []
        for fd, _ in events:
            if fd in by_fd:
                readable.append(by_fd[fd])
            elif fd == self._read:
                self._pipe_seen = True
        return readable

    def close(self) -> None:
        self._closer()


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
