"""Waiting without polling: the wake-up pipe and the in-memory transport woken by puts."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from kombu import Consumer, Exchange, Producer, Queue

from vcdext.transport import memory
from vcdext.transport.wakeup import Wakeup


def test_wait_returns_the_readable_socket_and_nothing_for_a_wakeup():
    wake = Wakeup()
    left, right = socket.socketpair()
    try:
        assert wake.wait([left], 0) == []  # nothing ready, no wait
        threading.Timer(0.1, wake.set).start()
        assert wake.wait([left], 30) == []  # woken by set(), long before the 30 s
        assert wake.pending
        wake.clear()
        assert not wake.pending
        right.send(b"x")
        assert wake.wait([left], 30) == [left]
    finally:
        left.close()
        right.close()
        wake.close()


def test_a_wakeup_ends_a_wait_on_the_in_memory_transport():
    wake = Wakeup()
    seen = memory.snapshot()
    threading.Timer(0.1, wake.set).start()
    started = time.monotonic()
    assert wake.wait([], 30, seen) == []
    assert time.monotonic() - started < 10  # woken, not timed out


def test_a_put_wakes_a_consumer_of_the_in_memory_transport_at_once():
    """kombu's memory transport sleeps ``polling_interval`` between looks at its queues (here
    60 s); vcdext's is woken by the put itself."""
    name = f"wake-{uuid.uuid4().hex[:6]}"
    exchange = Exchange(name, type="direct")
    queue = Queue(name, exchange, routing_key=name)
    got: list[bytes] = []
    with (
        memory.connection_for(
            "memory://", transport_options={"polling_interval": 60}
        ) as consumer_conn,
        memory.connection_for("memory://") as producer_conn,
    ):
        channel = consumer_conn.channel()
        Consumer(
            channel, [queue], on_message=lambda m: (got.append(m.body), m.ack()), accept=None
        ).consume()
        producer = Producer(producer_conn.channel())

        def put() -> None:
            producer.publish(b"hi", exchange=exchange, routing_key=name, declare=[queue])

        threading.Timer(0.2, put).start()
        started = time.monotonic()
        consumer_conn.drain_events(timeout=30)
        assert time.monotonic() - started < 10  # not the 30 s timeout, nor the 60 s poll
    assert got == [b"hi"]


def test_wait_works_with_descriptors_above_select_s_limit():
    # A busy process (connections, files of plugins) can hold more than 1024 descriptors;
    # select() refuses any numbered 1024 or above, which ended the consumer thread.
    import os
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        import pytest

        pytest.skip("needs a descriptor limit above 1200")
    fillers = []
    while True:
        fd = os.open(os.devnull, os.O_RDONLY)
        fillers.append(fd)
        if fd >= 1030:
            break
    wake = Wakeup()
    left, right = socket.socketpair()
    try:
        assert left.fileno() > 1024
        assert wake.wait([left], 0) == []
        wake.set()
        assert wake.wait([left], 30) == []
        wake.clear()
        right.send(b"x")
        assert wake.wait([left], 30) == [left]
    finally:
        left.close()
        right.close()
        wake.close()
        for fd in fillers:
            os.close(fd)


def test_a_byte_written_after_clear_wakes_once_and_is_then_read():
    """set() raises the flag and then writes; a clear() in between sees the flag but not yet
    the byte. The byte then wakes the next wait once, and the clear after it reads it: the
    owner is neither left asleep nor woken for ever."""
    wake = Wakeup()
    left, right = socket.socketpair()
    try:
        wake._pending = True  # set(), up to its write
        wake.clear()
        os.write(wake._write, b"\0")  # set()'s write lands after the clear
        assert wake.wait([left], 30) == []  # woken at once by the byte
        wake.clear()
        started = time.monotonic()
        assert wake.wait([left], 0.2) == []
        assert time.monotonic() - started >= 0.15  # slept: the byte was read
        assert wake.wait([left], 0) == []
        wake.set()
        assert wake.wait([left], 30) == []  # a later set() still wakes it
    finally:
        left.close()
        right.close()
        wake.close()
