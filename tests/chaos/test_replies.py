"""Issue 12, failures 2 and 6: refused replies, and requests redelivered after their reply."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.chaos.conftest import FAST_KEY, SLOW_KEY, publish, queue_depth, runs, wait_serving
from tests.support.tcpproxy import TcpProxy
from vcdext.protocol import encode_request

pytestmark = pytest.mark.integration


def test_2100_refused_replies_leave_the_runtime_serving(vcdext, vcd, rabbitmq, measured):
    """A missing reply exchange closes the publishing channel each time; channels must not
    leak (py-amqp has 2,047 ids per connection)."""
    proc = vcdext()
    body = encode_request("GET", "/api/chaos/fast", request_id="nowhere")
    started = time.monotonic()
    for _ in range(2_100):
        publish(vcd, body, FAST_KEY, reply_exchange="no-such-exchange")
    deadline = time.monotonic() + 45
    while queue_depth(rabbitmq, FAST_KEY) and time.monotonic() < deadline and proc.alive():
        time.sleep(0.2)
    assert proc.alive(), proc.output[-2000:]
    later = vcd.request("GET", "/api/chaos/fast", FAST_KEY)
    assert vcd.wait(later, timeout=20)[0].status == 200
    settled = time.monotonic() - started
    took = proc.stop()
    measured(
        f"2,100 replies refused (missing exchange) settled in {settled:.1f} s; "
        f"runtime up, next request 200; exit {took:.1f} s"
    )
    assert took < 20  # not the 35 s grace
    assert proc.proc.returncode == 0, proc.output[-2000:]
    assert queue_depth(rabbitmq, FAST_KEY) == 0


@pytest.fixture
def proxy(rabbitmq):
    port = int(rabbitmq.rsplit(":", 1)[1].split("/")[0])
    p = TcpProxy(port)
    yield p
    p.close()


def runs_of(path: Path, request_id: str) -> int:
    return runs(path).count(request_id)


def test_a_redelivered_request_already_answered_is_not_run_again(
    vcdext, vcd, rabbitmq, proxy, tmp_path, measured
):
    """The reply is published, but the ack is lost with the consuming connection (here: frozen,
    then cut, as when the broker dies): the broker redelivers the request, and this runtime
    answers it again from its cache of recent replies without running the handler twice."""
    log = tmp_path / "runs"
    proc = vcdext(proxy.url(), wait=False, CHAOS_RUNS=str(log))
    wait_serving(rabbitmq, proc=proc)
    # The publisher connects on the first reply: connection 1 consumes, connection 2 replies
    # (and a third, closed at once, checked that reply's exchange).
    assert vcd.wait(vcd.request("GET", "/api/chaos/fast", FAST_KEY))[0].status == 200
    assert proxy.connection_count == 3
    cid = publish(
        vcd,
        encode_request("POST", "/api/chaos/create", request_id="once", query_string="s=3"),
        SLOW_KEY,
    )
    deadline = time.monotonic() + 30
    while runs_of(log, "once") == 0:  # delivered, the handler is running
        assert time.monotonic() < deadline, "the request never reached its handler"
        time.sleep(0.02)
    proxy.freeze(1)  # its ack will never reach the broker (the handler takes 3 s)
    (first,) = vcd.wait(cid, timeout=30)
    assert first.status == 200
    assert len(vcd.deliveries(cid)) == 1
    proxy.cut(0.5)  # the broker sees the consumer go: it redelivers the unacked request
    _, second = vcd.wait_deliveries(cid, 2, timeout=20)
    assert second.status == 200
    assert second.body == first.body
    assert runs_of(log, "once") == 1
    measured("reply sent, ack lost, request redelivered: answered twice, handler ran once")
    assert proc.alive()
    proc.stop()
    assert queue_depth(rabbitmq, SLOW_KEY) == 0
