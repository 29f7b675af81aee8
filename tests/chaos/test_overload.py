"""Issue 12, failures 3, 4 and 5: starvation, queue time and message size."""

from __future__ import annotations

import contextlib
import statistics
import time
from pathlib import Path

import pytest

from tests.chaos.conftest import FAST_KEY, SLOW_KEY, declare_topology, publish, queue_depth
from tests.chaos.conftest import runs as ran
from vcdext.protocol import encode_request

pytestmark = pytest.mark.integration


def test_a_slow_service_does_not_starve_a_fast_one(vcdext, vcd, measured):
    """40 requests to a 4 s operation, then 20 to another service: the fast ones must be
    answered well within vCD's 10 s timeout (default workers). Starved, they would wait for a
    slow one to end (3.7 s at least); 3 s leaves a loaded machine room for its round trips."""
    proc = vcdext()
    for _ in range(40):
        vcd.request("GET", "/api/chaos/slow", SLOW_KEY, query_string="s=4")
    time.sleep(0.3)
    sent = {}
    for _ in range(20):
        cid = vcd.request("GET", "/api/chaos/fast", FAST_KEY)
        sent[cid] = time.monotonic()
    with contextlib.suppress(TimeoutError):
        vcd.wait(*sent, timeout=14)
    replies = vcd.replies  # each with the moment it arrived
    latencies = [replies[cid].arrived - at for cid, at in sent.items() if cid in replies]
    proc.kill()  # the slow backlog is not this test's business
    assert len(latencies) == 20, f"only {len(latencies)} of 20 fast requests answered"
    measured(
        f"40 x 4 s op, then 20 fast (8 workers): fast median "
        f"{statistics.median(latencies) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
    )
    assert max(latencies) < 3.0, (statistics.median(latencies), max(latencies))


def test_deadlines_count_the_time_spent_in_the_queue(
    vcdext, vcd, rabbitmq, exchange, tmp_path, measured
):
    """With runtime.timeout = 5, requests that waited 6 s in the queue before any runtime
    consumed them are answered 503 without running the handler, when the message carries an
    AMQP ``timestamp``; fresh requests (with or without one) are served. (The timestamp has a
    one-second resolution: a fresh request may look a second older, and a loaded machine may
    take another to hand it to a handler, so the timeout leaves it more than that.)"""
    declare_topology(rabbitmq, exchange)
    runs = tmp_path / "runs"
    stale = [
        publish(
            vcd,
            encode_request("POST", "/api/chaos/create", request_id=f"stale-{i}"),
            SLOW_KEY,
            timestamp=int(time.time()),
        )
        for i in range(5)
    ]
    time.sleep(6.2)
    vcdext(VCDEXT_RUNTIME_TIMEOUT="5", CHAOS_RUNS=str(runs))
    replies = vcd.wait(*stale, timeout=15)
    assert [r.status for r in replies] == [503] * 5
    assert ran(runs) == []
    fresh = publish(
        vcd,
        encode_request("POST", "/api/chaos/create", request_id="fresh"),
        SLOW_KEY,
        timestamp=int(time.time()),
    )
    untimed = vcd.request("GET", "/api/chaos/fast", FAST_KEY)
    assert [r.status for r in vcd.wait(fresh, untimed)] == [200, 200]
    measured("timeout 5 s, 5 requests 6.2 s in the queue: 5 x 503, 0 handler runs; fresh 200")


def big_request(size: int) -> bytes:
    return encode_request(
        "POST",
        "/api/chaos/create",
        request_id="big",
        body=b"x" * size,
        headers={"Content-Type": "application/xml"},
    )


def test_a_message_over_the_size_limit_is_answered_413_before_decoding(
    vcdext, vcd, rabbitmq, tmp_path, assert_valid_vcd_xml, measured
):
    runs = tmp_path / "runs"
    proc = vcdext(CHAOS_RUNS=str(runs))
    too_big = publish(vcd, big_request(2 * 1024 * 1024), SLOW_KEY)  # over the 1 MiB default
    fits = publish(vcd, big_request(512 * 1024), SLOW_KEY)  # vCD's request limit, base64'd
    big, ok = vcd.wait(too_big, fits, timeout=15)
    assert (big.status, ok.status) == (413, 200)
    assert_valid_vcd_xml(big.body)
    assert ran(runs) == ["big"]  # only the one that fits ran
    measured("2 MiB body → 413 (handler not run); 512 KiB body (vCD's limit) → 200")
    proc.stop()
    assert queue_depth(rabbitmq, SLOW_KEY) == 0


def test_the_size_limit_is_a_setting(vcdext, vcd, tmp_path: Path):
    vcdext(VCDEXT_AMQP_MAX_MESSAGE_BYTES="2000")
    small = vcd.request("GET", "/api/chaos/fast", FAST_KEY)
    large = publish(vcd, big_request(2000), SLOW_KEY)
    assert [r.status for r in vcd.wait(small, large)] == [200, 413]
