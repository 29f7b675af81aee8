"""Two runtimes on one queue under steady load while the broker is SIGKILLed and restarted."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue

from tests.chaos.conftest import SLOW_KEY, Vcdext, consumers
from tests.support.rabbitmq import RABBITMQ_SERVER, RabbitNode
from vcdext.protocol import encode_request

pytestmark = pytest.mark.integration

VCD_TIMEOUT = 10.0  # vCD's extensibility.timeout: a reply later than this is a 504 for vCD


class KillableNode(RabbitNode):
    """A private node whose broker can be SIGKILLed and started again on the same ports and
    data directory (durable queues and persistent messages survive as far as RabbitMQ keeps
    them)."""

    def kill_broker(self) -> None:
        assert self._server is not None
        os.killpg(self._server.pid, signal.SIGKILL)
        self._server.wait(10)
        self._server = None

    def restart_broker(self, timeout: float = 60) -> None:
        with self.stdout_file.open("ab") as out:
            self._server = subprocess.Popen(
                [RABBITMQ_SERVER],
                cwd=self.tmpdir,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(time.monotonic() + timeout)


@pytest.fixture
def node() -> Iterator[KillableNode]:
    node = KillableNode.start()
    try:
        yield node
    finally:
        node.stop()


class SteadyVcd:
    """vCD's side for a broker that goes away: publishes ``rate`` requests a second with
    publisher confirms (a request counts as sent once the broker confirmed it), collects
    replies, and reconnects by itself."""

    def __init__(self, url: str, exchange: str, rate: float) -> None:
        self.url, self.exchange, self.rate = url, exchange, rate
        self.reply_exchange = f"vcd-reply-{uuid.uuid4().hex[:8]}"
        self.reply_key = f"cell-{uuid.uuid4().hex[:8]}"
        self.sent: dict[str, float] = {}  # correlation id -> when confirmed
        self.replies: dict[str, list[tuple[float, dict[str, Any]]]] = collections.defaultdict(list)
        self.sending = threading.Event()
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._keep(self._publish, transport_options={"confirm_publish": True}),
                daemon=True,
            ),
            threading.Thread(target=self._keep(self._consume), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _keep(self, loop: Any, **options: Any) -> Any:
        def run() -> None:
            while not self.stopped.is_set():
                try:
                    with Connection(self.url, connect_timeout=2, **options) as conn:
                        conn.connect()
                        loop(conn)
                except Exception:  # the broker is down: try again shortly
                    self.stopped.wait(0.3)

        return run

    def _consume(self, conn: Connection) -> None:
        channel = conn.channel()
        rx = Exchange(self.reply_exchange, type="direct", durable=True)
        queue = Queue(self.reply_key, rx, routing_key=self.reply_key, durable=True)
        queue(channel).declare()

        def on_reply(message: Any) -> None:
            cid = message.properties.get("correlation_id")
            with self._lock:
                self.replies[cid].append((time.monotonic(), json.loads(message.body)))
            message.ack()

        with Consumer(channel, [queue], on_message=on_reply, accept=None):
            while not self.stopped.is_set():
                with contextlib.suppress(TimeoutError):
                    conn.drain_events(timeout=0.2)

    def _publish(self, conn: Connection) -> None:
        producer = Producer(conn.channel())
        while not self.stopped.is_set():
            if not self.sending.is_set():
                self.stopped.wait(0.05)
                continue
            cid = uuid.uuid4().hex
            body = encode_request("POST", "/api/chaos/create", request_id=cid)
            producer.publish(
                body,
                exchange=self.exchange,
                routing_key=SLOW_KEY,
                correlation_id=cid,
                reply_to=self.reply_key,
                headers={
                    "messageType": "ProcessHttpRequest",
                    "replyToExchange": self.reply_exchange,
                },
                content_type="application/json",
                delivery_mode=2,
            )
            with self._lock:
                self.sent[cid] = time.monotonic()
            self.stopped.wait(1 / self.rate)

    def close(self) -> None:
        self.stopped.set()
        for t in self._threads:
            t.join(5)


def test_two_runtimes_survive_a_broker_sigkill_under_load(node, tmp_path: Path, measured) -> None:
    exchange = f"vcdext-chaos-{uuid.uuid4().hex[:8]}"
    runs = tmp_path / "runs"
    env = {"CHAOS_RUNS": str(runs), "VCDEXT_AMQP_HEARTBEAT": "5"}
    runtimes = [Vcdext(node.url, exchange, tmp_path / f"vcdext-{i}.log", env) for i in range(2)]
    vcd = SteadyVcd(node.url, exchange, rate=40)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if consumers(node.url, SLOW_KEY) == 2:
                    break
            time.sleep(0.2)
        vcd.sending.set()
        time.sleep(3)
        node.kill_broker()
        killed_at = time.monotonic()
        time.sleep(0.5)
        node.restart_broker()
        restarted_at = time.monotonic()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if consumers(node.url, SLOW_KEY) == 2:
                    break
            time.sleep(0.2)
        recovered_at = time.monotonic()
        time.sleep(3)
        vcd.sending.clear()
        stopped_at = time.monotonic()
        time.sleep(VCD_TIMEOUT / 2)
        alive = [r.alive() for r in runtimes]
    finally:
        vcd.close()
        for r in runtimes:
            r.stop(timeout=30) if r.alive() else None
            r.kill()

    with vcd._lock:
        sent = dict(vcd.sent)
        replies = {cid: list(rs) for cid, rs in vcd.replies.items()}
    in_time = {
        cid
        for cid, at in sent.items()
        if replies.get(cid) and replies[cid][0][0] - at <= VCD_TIMEOUT
    }
    late = {cid for cid in sent if cid in replies and cid not in in_time}
    timed_out = set(sent) - set(replies)
    twice = {cid for cid, rs in replies.items() if len(rs) > 1}
    statuses = collections.Counter(r[1]["statusCode"] for rs in replies.values() for r in rs)
    lines = runs.read_text().splitlines() if runs.exists() else []
    per_process = collections.Counter(lines)  # "<pid> <request id>"
    same_process = {line for line, n in per_process.items() if n > 1}
    across = collections.Counter(line.split(" ", 1)[1] for line in lines)
    rerun = {rid for rid, n in across.items() if n > 1}
    after_recovery = {cid for cid, at in sent.items() if recovered_at + 1 <= at <= stopped_at}
    summary = (
        f"2 runtimes, 40 req/s, broker SIGKILLed: {len(sent)} confirmed requests, "
        f"{len(in_time)} answered within 10 s, {len(late)} late, {len(timed_out)} unanswered; "
        f"{len(twice)} answered twice, {len(rerun)} handler re-runs across runtimes, "
        f"{len(same_process)} within one; statuses {dict(statuses)}; broker back after "
        f"{restarted_at - killed_at:.1f} s, both consuming after {recovered_at - killed_at:.1f} s"
    )
    measured(summary)
    assert alive == [True, True], summary
    assert set(statuses) <= {200, 503}, summary
    assert after_recovery and after_recovery <= in_time, summary
    # At most once per request id per runtime; across the two it may run twice (the cache of
    # recent replies is per process, as documented).
    assert not same_process, summary
