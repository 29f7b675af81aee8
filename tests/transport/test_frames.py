"""vcdext.transport.frames: the one-recv frame reader and corked writes, on a socket pair
standing in for the broker, and the fast path on a real connection."""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from amqp.exceptions import UnexpectedFrame
from amqp.transport import TCPTransport
from kombu import Connection

from vcdext.transport import frames


def frame(kind: int, channel: int, payload: bytes, end: int = 0xCE) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + bytes([end])


class FakeTransport(TCPTransport):
    """A py-amqp TCP transport around one end of a socket pair (no broker, no handshake)."""

    def __init__(self, sock: socket.socket) -> None:  # no super(): nothing to connect
        self.sock = sock
        self.connected = True
        self._read_buffer = b""
        self._write = sock.sendall
        self._quick_recv = sock.recv
        self.raise_on_initial_eintr = True
        self.writes = 0

    def write(self, s: Any) -> None:
        self.writes += 1
        super().write(s)


class FakeConnection:
    """What frames needs of a kombu connection: ``.connection.transport`` and
    ``.connection.on_inbound_frame``."""

    def __init__(self, sock: socket.socket) -> None:
        self.transport = FakeTransport(sock)
        self.seen: list[tuple[int, int, bytes]] = []
        self.connection = self

    def on_inbound_frame(self, frame: tuple[int, int, bytes]) -> None:
        self.seen.append(frame)


@pytest.fixture
def pair():
    ours, broker = socket.socketpair()
    yield FakeConnection(ours), broker
    ours.close()
    broker.close()


def test_every_complete_frame_is_handled_and_a_partial_one_waits(pair):
    conn, broker = pair
    assert frames.fast_path(conn)
    first, second = frame(1, 1, b"method"), frame(3, 1, b"x" * 70_000)
    broker.sendall(first + second[:1000])
    frames.drain(conn)
    assert conn.seen == [(1, 1, b"method")]
    assert conn.transport._read_buffer == second[:1000]  # kept for the next read
    frames.drain(conn)  # nothing new: nothing happens, nothing blocks
    assert conn.seen == [(1, 1, b"method")]
    broker.sendall(second[1000:] + frame(8, 0, b""))
    frames.drain(conn)
    assert conn.seen == [(1, 1, b"method"), (3, 1, b"x" * 70_000), (8, 0, b"")]
    assert conn.transport._read_buffer == b""


def test_more_than_one_chunk_is_read_in_one_drain(pair, monkeypatch):
    conn, broker = pair
    monkeypatch.setattr(frames, "_CHUNK", 1024)
    payload = b"y" * 5000
    broker.sendall(frame(3, 2, payload))
    frames.drain(conn)
    assert conn.seen == [(3, 2, payload)]


def test_a_broken_frame_end_is_a_connection_error(pair):
    conn, broker = pair
    broker.sendall(frame(1, 1, b"ok") + frame(1, 1, b"bad", end=0x00))
    with pytest.raises(UnexpectedFrame):
        frames.drain(conn)
    assert conn.seen == [(1, 1, b"ok")]
    assert conn.transport.connected is False


def test_the_broker_closing_the_socket_is_a_connection_error(pair):
    conn, broker = pair
    broker.close()
    with pytest.raises(OSError, match="unexpectedly closed"):
        frames.drain(conn)


def test_a_frame_whose_handler_raises_is_consumed_and_the_rest_kept(pair):
    conn, broker = pair
    calls: list[bytes] = []

    def handler(f: tuple[int, int, bytes]) -> None:
        calls.append(f[2])
        if f[2] == b"boom":
            raise RuntimeError("handler failed")

    conn.on_inbound_frame = handler  # type: ignore[method-assign]
    broker.sendall(frame(1, 1, b"boom") + frame(1, 1, b"next"))
    with pytest.raises(RuntimeError):
        frames.drain(conn)
    assert calls == [b"boom"]
    frames.drain(conn)
    assert calls == [b"boom", b"next"]


@pytest.mark.parametrize("left_over", [b"", b"partial"])
def test_a_handler_that_makes_py_amqp_read_the_socket_itself_goes_on_from_the_right_byte(
    pair, left_over
):
    """py-amqp reopens a channel the broker closed from inside the frame handler, reading the
    socket itself until OpenOk: it must start at the first frame this drain did not handle
    (not at a stale buffer, not in the middle of a frame), and the drain goes on after it."""
    conn, broker = pair
    conn.transport.sock.settimeout(5)  # a wrong read would block: fail instead of hanging
    big = frame(3, 1, b"B" * 70_000)
    after = frame(1, 1, b"deliver" * 20)
    nested: list[tuple[int, int, bytes]] = []

    def handler(f: tuple[int, int, bytes]) -> None:
        conn.seen.append(f)
        if f[2] == b"close":  # the way Channel._on_close -> open() -> wait(OpenOk) reads
            broker.sendall(after[10:] + frame(1, 2, b"open-ok"))
            nested.append(conn.transport.read_frame())
            nested.append(conn.transport.read_frame())

    conn.on_inbound_frame = handler  # type: ignore[method-assign]
    if left_over:  # the previous drain left part of a frame in py-amqp's buffer
        broker.sendall(big[:1000])
        frames.drain(conn)
        broker.sendall(big[1000:] + frame(1, 2, b"close") + after[:10])
    else:
        broker.sendall(frame(1, 2, b"close") + after[:10])
    frames.drain(conn)
    assert nested == [(1, 1, b"deliver" * 20), (1, 2, b"open-ok")]
    assert conn.seen[-1] == (1, 2, b"close")
    assert conn.transport._read_buffer == b""
    assert "_read" not in conn.transport.__dict__
    broker.sendall(frame(8, 0, b""))
    frames.drain(conn)
    assert conn.seen[-1] == (8, 0, b"")


def test_corked_writes_leave_in_one_send(pair):
    conn, broker = pair
    with frames.Cork(conn):
        conn.transport.write(b"one")
        conn.transport.write(memoryview(bytearray(b"two")))
        assert conn.transport.writes == 2  # py-amqp's write, but nothing sent yet
        broker.setblocking(False)
        with pytest.raises(BlockingIOError):
            broker.recv(100)
        conn.transport.write(b"three")
    assert broker.recv(100) == b"onetwothree"
    conn.transport.write(b"four")  # uncorked again
    assert broker.recv(100) == b"four"


def test_a_cork_on_an_error_still_sends_what_it_held_and_lets_the_error_through(pair):
    conn, broker = pair

    def publish_and_fail() -> None:
        with frames.Cork(conn):
            conn.transport.write(b"held")
            raise ValueError("publishing failed")

    with pytest.raises(ValueError, match="publishing failed"):
        publish_and_fail()
    assert broker.recv(100) == b"held"
    conn.transport.write(b"after")
    assert broker.recv(100) == b"after"


def test_without_the_fast_path_the_cork_does_nothing():
    with frames.Cork(None):
        pass


@pytest.mark.integration
def test_a_real_connection_takes_the_fast_path(rabbitmq):
    """Guards against a py-amqp upgrade that renames what the fast path relies on: vcdext
    would still work (the portable drain), only slower, and nobody would notice."""
    with Connection(rabbitmq) as conn:
        conn.connect()
        assert frames.fast_path(conn)
        channel = conn.channel()
        channel.queue_declare("", exclusive=True)
        frames.drain(conn)  # nothing pending: returns at once
