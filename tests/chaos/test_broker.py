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

from tests.chaos.conftest import SLOW_KEY, Vcdext, consumers
from tests.support.rabbitmq import RABBITMQ_SERVER, RabbitNode
from vcdext.protocol import encode_request
from vcdext_cell.forwarder import Delivery, Forwarder, ForwardError

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
    """vCD's side for a broker that goes away: the cell's :class:`Forwarder` (which reconnects
    by itself) publishing ``rate`` persistent requests a second from a thread of its own; a
    request counts as sent once the forwarder took it while connected. Every reply delivery is
    kept through ``on_delivery``, duplicates included."""

    def __init__(self, url: str, exchange: str, rate: float) -> None:
        self.exchange, self.rate = exchange, rate
        self.sent: dict[str, float] = {}  # correlation id -> when handed to the forwarder
        self.replies: dict[str, list[tuple[float, dict[str, Any]]]] = collections.defaultdict(list)
        self.sending = threading.Event()
        self.stopped = threading.Event()
        self.refused_at = 0.0  # the last time the forwarder refused a request (not connected)
        self.lock = threading.Lock()
        self.forwarder = Forwarder(url, on_delivery=self._on_reply)
        self.forwarder.start()
        self._thread = threading.Thread(target=self._publish, daemon=True)
        self._thread.start()

    def _on_reply(self, delivery: Delivery) -> None:
        with self.lock:
            self.replies[delivery.correlation_id].append(
                (time.monotonic(), json.loads(delivery.body))
            )

    def _publish(self) -> None:
        while not self.stopped.is_set():
            if not self.sending.is_set():
                self.stopped.wait(0.05)
                continue
            cid = uuid.uuid4().hex
            body = encode_request("POST", "/api/chaos/create", request_id=cid)
            try:
                self.forwarder.send(
                    self.exchange,
                    SLOW_KEY,
                    body,
                    correlation_id=cid,
                    properties={"delivery_mode": 2},
                )
            except ForwardError:  # the broker is down and the forwarder knows it
                with self.lock:
                    self.refused_at = time.monotonic()
            else:
                with self.lock:
                    self.sent[cid] = time.monotonic()
            self.stopped.wait(1 / self.rate)

    def publishing_since(self, instant: float) -> bool:
        """Whether requests were taken after ``instant`` and none refused since."""
        with self.lock:
            return self.refused_at < instant and any(at > instant for at in self.sent.values())

    def answered_since(self, instant: float) -> bool:
        """Whether every request taken after ``instant`` has a reply."""
        with self.lock:
            return all(cid in self.replies for cid, at in self.sent.items() if at >= instant)

    def close(self) -> None:
        self.stopped.set()
        self._thread.join(5)
        self.forwarder.stop()


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
        probe = time.monotonic()  # and vCD's side publishes again (its reconnect has a backoff)
        while not vcd.publishing_since(probe) and time.monotonic() < deadline:
            probe = time.monotonic()
            time.sleep(0.2)
        republished_at = time.monotonic()
        time.sleep(3)
        vcd.sending.clear()
        stopped_at = time.monotonic()
        time.sleep(VCD_TIMEOUT / 2)
        # The last requests sent get vCD's whole timeout for their replies before the count
        # (a loaded machine may need more than the half slept above).
        while time.monotonic() < stopped_at + VCD_TIMEOUT and not vcd.answered_since(
            republished_at + 1
        ):
            time.sleep(0.2)
        alive = [r.alive() for r in runtimes]
    finally:
        vcd.close()
        for r in runtimes:
            r.stop(timeout=30) if r.alive() else None
            r.kill()

    with vcd.lock:
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
    after_recovery = {cid for cid, at in sent.items() if republished_at + 1 <= at <= stopped_at}
    summary = (
        f"2 runtimes, 40 req/s, broker SIGKILLed: {len(sent)} requests sent, "
        f"{len(in_time)} answered within 10 s, {len(late)} late, {len(timed_out)} unanswered; "
        f"{len(twice)} answered twice, {len(rerun)} handler re-runs across runtimes, "
        f"{len(same_process)} within one; statuses {dict(statuses)}; broker back after "
        f"{restarted_at - killed_at:.1f} s, both consuming after {recovered_at - killed_at:.1f} s, "
        f"vCD's side publishing again after {republished_at - killed_at:.1f} s"
    )
    measured(summary)
    assert alive == [True, True], summary
    assert set(statuses) <= {200, 503}, summary
    assert after_recovery and after_recovery <= in_time, summary
    # At most once per request id per runtime; across the two it may run twice (the cache of
    # recent replies is per process, as documented).
    assert not same_process, summary
