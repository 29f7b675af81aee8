"""Reading every AMQP frame a connection has ready, with one system call per turn.

py-amqp reads a frame in three ``recv`` calls (header, payload, end octet) and wraps each
frame in a ``settimeout`` pair, and a non-blocking drain ends in a timeout exception: about a
dozen system calls and an exception per request, most of the consumer thread's time under load
(docs/performance.md). Over plain TCP, :func:`drain` reads what the socket holds with one
non-blocking ``recv``, cuts the complete frames out of it and hands each to py-amqp's own frame
handler, exactly as py-amqp would; an incomplete frame's bytes stay in py-amqp's read buffer, so
either reader can carry on from there. TLS connections, and a py-amqp without the parts this
relies on, are drained the portable way (``drain_events(timeout=0)`` until nothing is ready).
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from amqp import spec
from amqp.exceptions import UnexpectedFrame
from amqp.transport import TCPTransport

#: How much one ``recv`` asks for; a turn reads until the socket has nothing more.
_CHUNK = 256 * 1024
_FRAME_END = 0xCE
_DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)


def fast_path(conn: Any) -> bool:
    """Whether :func:`drain` reads ``conn`` (a connected kombu connection) itself."""
    raw = getattr(conn, "connection", None)
    transport = getattr(raw, "transport", None)
    return (
        bool(_DONTWAIT)
        and isinstance(transport, TCPTransport)
        and isinstance(getattr(transport, "_read_buffer", None), bytes)
        and callable(getattr(raw, "on_inbound_frame", None))
    )


def drain(conn: Any) -> None:
    """Handle every complete frame ``conn`` has ready, without waiting for more.

    Connection errors are py-amqp's (``OSError`` when the broker closed the socket,
    :class:`~amqp.exceptions.UnexpectedFrame` for a broken frame), so the caller's reconnect
    logic sees what it would see from ``drain_events``.
    """
    if not fast_path(conn):
        portable_drain(conn)
        return
    raw = conn.connection
    transport = raw.transport
    sock = transport.sock
    chunks = [transport._read_buffer]
    while True:
        try:
            data = sock.recv(_CHUNK, _DONTWAIT)
        except (BlockingIOError, InterruptedError):
            break
        except OSError:
            transport.connected = False
            raise
        if not data:
            transport.connected = False
            raise OSError("Server unexpectedly closed connection")
        chunks.append(data)
        if len(data) < _CHUNK:
            break
    buf = b"".join(chunks) if len(chunks) > 1 else chunks[0]
    end = len(buf)
    at = 0
    handed = False

    def handover(n: int, initial: bool = False) -> bytes:
        # A frame handler makes py-amqp read the socket itself (a channel the broker closed is
        # reopened, which waits for its OpenOk): it must go on from the first byte not handled
        # here, so the rest of `buf` becomes py-amqp's read buffer, and py-amqp reads alone.
        # (py-amqp keeps the read function it found for the rest of a frame: this is called
        # again after the hand-over, and then only reads.)
        nonlocal handed
        if not handed:
            transport.__dict__.pop("_read", None)
            transport._read_buffer = buf[at:]
            handed = True
        return type(transport)._read(transport, n, initial)  # type: ignore[no-any-return]

    on_frame = raw.on_inbound_frame
    transport._read = handover
    try:
        while end - at >= 8:
            stop = at + 7 + int.from_bytes(buf[at + 3 : at + 7], "big")
            if stop >= end:  # the frame end octet has not arrived yet
                break
            if buf[stop] != _FRAME_END:
                transport.connected = False
                raise UnexpectedFrame(f"Received frame_end {buf[stop]:#04x} while expecting 0xce")
            frame = (buf[at], int.from_bytes(buf[at + 1 : at + 3], "big"), buf[at + 7 : stop])
            at = stop + 1
            on_frame(frame)
            if handed:  # go on from where py-amqp's own reads left its buffer
                buf, at, handed = transport._read_buffer, 0, False
                end = len(buf)
                transport._read = handover
    finally:
        transport.__dict__.pop("_read", None)
        # What is not handled (an incomplete frame, or what follows a frame whose handler
        # raised) stays for the next read, by either reader; after a hand-over py-amqp's
        # buffer is already right.
        if not handed:
            transport._read_buffer = buf[at:] if at else buf


class Cork:
    """Frames written to a connection while corked go out together in one ``sendall`` when
    the cork comes off (over plain TCP; elsewhere each write goes out at once, as usual).

    Nothing inside may wait for the broker's answer to something it wrote: that write would
    still be held."""

    def __init__(self, conn: Any) -> None:
        self._transport = (
            conn.connection.transport if conn is not None and fast_path(conn) else None
        )
        self._pending: list[bytes] = []
        self._direct: Any = None

    def __enter__(self) -> Cork:
        if self._transport is not None:
            self._direct = self._transport._write
            self._transport._write = self._later
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if self._transport is None:
            return
        self._transport._write = self._direct
        if not self._pending:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        if error is None:
            self._transport.write(data)
        else:
            with contextlib.suppress(Exception):  # the error raised is the one to report
                self._transport.write(data)

    def _later(self, data: Any) -> None:
        self._pending.append(bytes(data))  # py-amqp reuses its frame buffer: copy


def publish(channel: Any, message: Any, exchange: str, routing_key: str) -> None:
    """``basic.publish`` on a py-amqp channel, without what ``basic_publish`` adds per message:
    a non-blocking read of the connection to look for ``connection.blocked`` (an exception
    when nothing is there). The consumer thread reads its connections every turn anyway."""
    channel.send_method(
        spec.Basic.Publish, "Bssbb", (0, exchange, routing_key, False, False), message
    )


def portable_drain(conn: Any) -> None:
    """Handle every frame ``conn`` has ready through kombu: with a zero timeout py-amqp reads
    without blocking and raises ``TimeoutError`` when no frame has begun to arrive (the rest of
    a frame that has begun is read to its end, as the broker sends it whole)."""
    with contextlib.suppress(TimeoutError):
        while True:
            conn.drain_events(timeout=0)
