"""Issue 12, failure 1: nothing a message or a handler does may kill a worker thread."""

from __future__ import annotations

import time

import pytest

from tests.chaos.conftest import FAST_KEY, SLOW_KEY, publish, queue_depth
from vcdext.protocol import encode_request

pytestmark = pytest.mark.integration

POISON = b"[" * 100_000  # json.loads raises RecursionError


def fast(request_id: str) -> bytes:
    return encode_request("GET", "/api/chaos/fast", request_id=request_id)


def test_deeply_nested_json_leaves_the_workers_alive(
    vcdext, vcd, rabbitmq, assert_valid_vcd_xml, measured
):
    proc = vcdext(VCDEXT_RUNTIME_WORKERS="2")
    poison = [publish(vcd, POISON, FAST_KEY) for _ in range(2)]
    time.sleep(0.5)
    normal = [publish(vcd, fast(f"n-{i}"), FAST_KEY) for i in range(5)]
    replies = vcd.wait(*normal, timeout=15)
    assert [r.status for r in replies] == [200] * 5
    statuses = []
    for reply in vcd.wait(*poison, timeout=15):  # answered, with the request id unknown
        assert reply.status == 400, reply.doc
        assert reply.doc["id"] == ""
        assert_valid_vcd_xml(reply.body)
        statuses.append(reply.status)
    took = proc.stop(timeout=60)
    measured(
        f'workers=2, 2 x `"[" * 100000` answered {statuses}, then 5/5 answered; '
        f"SIGTERM exit in {took:.1f} s"
    )
    # The grace is 3 x runtime.timeout + 5 s = 35 s; a loaded machine may take a few seconds
    # to tear a process down, but not that.
    assert took < 15, "SIGTERM should not wait out the grace"
    assert proc.proc.returncode == 0, proc.output
    assert queue_depth(rabbitmq, FAST_KEY) == 0, "the poison must not be left to redeliver"


def test_a_handler_raising_systemexit_leaves_the_workers_alive(
    vcdext, vcd, assert_valid_vcd_xml, measured
):
    proc = vcdext(VCDEXT_RUNTIME_WORKERS="2")
    exits = [vcd.request("GET", "/api/chaos/exit", SLOW_KEY) for _ in range(2)]
    time.sleep(0.5)
    normal = [publish(vcd, fast(f"n-{i}"), FAST_KEY) for i in range(5)]
    assert [r.status for r in vcd.wait(*normal, timeout=15)] == [200] * 5
    for reply in vcd.wait(*exits, timeout=15):
        assert reply.status == 500
        assert_valid_vcd_xml(reply.body)
    took = proc.stop(timeout=60)
    measured(f"workers=2, 2 handlers raise SystemExit → 500, then 5/5 answered; exit {took:.1f} s")
    assert took < 15  # not the 35 s grace
    assert proc.proc.returncode == 0, proc.output


def test_a_message_delivered_too_often_is_rejected_not_looped(vcdext, vcd, rabbitmq, measured):
    """A quorum queue stamps ``x-delivery-count``; past ``amqp.max_redeliveries`` the request is
    rejected without requeue (so a DLX the operator configured receives it), not run again."""
    proc = vcdext(VCDEXT_AMQP_MAX_REDELIVERIES="3")
    looping = publish(
        vcd,
        encode_request("POST", "/api/chaos/create", request_id="looping"),
        SLOW_KEY,
        headers={"x-delivery-count": 4},
    )
    within = publish(
        vcd,
        encode_request("POST", "/api/chaos/create", request_id="within"),
        SLOW_KEY,
        headers={"x-delivery-count": 3},
    )
    assert vcd.wait(within)[0].status == 200
    time.sleep(0.5)
    assert vcd.deliveries(looping) == []
    proc.stop()
    assert queue_depth(rabbitmq, SLOW_KEY) == 0
    assert "delivered 5 times" in proc.output
    measured("max_redeliveries=3: x-delivery-count 4 rejected unanswered, 3 served; queue empty")


def test_a_classic_queue_redelivery_loop_is_counted_by_the_process(
    vcdext, vcd, rabbitmq, tmp_path, measured
):
    """Without ``x-delivery-count`` (classic queues) the process counts the redeliveries it
    sees: here the connection drops twice while the request runs."""
    from tests.chaos.conftest import runs, wait_serving
    from tests.support.metrics import free_port, wait_for_metric
    from tests.support.tcpproxy import TcpProxy

    port = int(rabbitmq.rsplit(":", 1)[1].split("/")[0])
    proxy = TcpProxy(port)
    try:
        log = tmp_path / "runs"
        health = free_port()
        proc = vcdext(
            proxy.url(),
            wait=False,
            CHAOS_RUNS=str(log),
            VCDEXT_AMQP_MAX_REDELIVERIES="1",
            VCDEXT_RUNTIME_HEALTH_PORT=str(health),
        )
        wait_serving(rabbitmq, proc=proc)
        # The handler outlasts both cuts however slowly the process reconnects (once it ends,
        # the redelivery waiting for it is answered and acked: no third delivery to count).
        body = encode_request("POST", "/api/chaos/create", request_id="loop", query_string="s=20")
        publish(vcd, body, SLOW_KEY)
        deadline = time.monotonic() + 30
        while "loop" not in runs(log):  # the first delivery is in its handler
            assert time.monotonic() < deadline, "the request never reached its handler"
            time.sleep(0.02)
        for seen in (1, 2):
            proxy.cut(0.2)  # the broker requeues the unacked request and redelivers it
            time.sleep(0.5)
            wait_serving(rabbitmq, proc=proc)
            if seen == 1:  # cut again only once the process has seen the redelivery
                wait_for_metric(health, "vcdext_redeliveries_total", seen)
        deadline = time.monotonic() + 30
        while "delivered 3 times" not in proc.output and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "delivered 3 times" in proc.output
        assert proc.alive()
        assert runs(log).count("loop") == 1
        proc.stop()
        assert queue_depth(rabbitmq, SLOW_KEY) == 0
        measured("max_redeliveries=1, connection cut twice mid-request: rejected, ran once")
    finally:
        proxy.close()
