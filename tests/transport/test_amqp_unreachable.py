"""The AMQP server against a broker that is not there (no RabbitMQ needed): what it logs."""

from __future__ import annotations

import logging
import socket
import threading
import time

import vcdext_hello.plugin as hello
from vcdext.settings import AmqpSettings
from vcdext.testing import make_runtime
from vcdext.transport.amqp import AmqpServer, _Reply


def closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_for(url: str) -> AmqpServer:
    runtime = make_runtime(hello=hello)
    return AmqpServer(runtime.dispatcher, AmqpSettings(url=url), workers=1)


def test_an_unreachable_broker_is_reported_by_the_consumer_only(caplog):
    server = server_for(f"amqp://guest:guest@127.0.0.1:{closed_port()}//")
    thread = threading.Thread(target=server.run, daemon=True)
    with caplog.at_level(logging.INFO, logger="vcdext.transport.amqp"):
        thread.start()
        deadline = time.monotonic() + 20
        while "unreachable" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.5)  # the consumer thread's idle turns come and go
        server.stop()
        thread.join(20)
    assert not thread.is_alive()
    assert "unreachable" in caplog.text
    # No reply connection was ever made, so none was "lost" (nor even tried: nothing to send).
    assert "reply connection" not in caplog.text


def test_a_reply_connection_that_cannot_be_opened_is_not_called_lost(caplog):
    server = server_for(f"amqp://guest:guest@127.0.0.1:{closed_port()}//")
    server._replies.append(_Reply(1, 7, "ex", "key", "c-1", b"{}", False))
    with caplog.at_level(logging.WARNING, logger="vcdext.transport.amqp"):
        server._replier.turn([])  # the consumer thread's turn at the replies
    lines = [r.getMessage() for r in caplog.records if "reply connection" in r.getMessage()]
    assert len(lines) == 1
    assert "could not be opened" in lines[0] and "lost" not in lines[0]
    # The request is given back to the broker (requeued), not acked.
    assert list(server._settled) == [(1, 7, "requeue")]
