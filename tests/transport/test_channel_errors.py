"""A channel the broker closes while `vcdext run` serves (issues 12 and 16): the process
reconnects instead of exiting; only a topology refused at start-up ends it.

The broker here is a private node with a short ``consumer_timeout`` (RabbitMQ's default is
30 minutes): a request whose handler outlives it makes the broker close the consuming channel
with ``406 PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out``. The node
checks the timeout every ``channel_tick_interval`` (60 s by default, 500 ms here).
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Producer

from tests.fake_plugins import chaos_slow
from tests.support.metrics import free_port, wait_for_metric
from tests.support.rabbitmq import RabbitNode
from tests.support.vcd_side import VcdSide
from vcdext import Registrar, Service, hookimpl
from vcdext.notifications import Notification, NotificationSettings
from vcdext.protocol import encode_request
from vcdext.testing import make_runtime
from vcdext.transport.amqp import TransportError
from vcdext.transport.notifications import NotificationConsumer
from vcdext.vcloud import notification as n
from vcdext.xml import tostring

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
KEY = chaos_slow.NAMESPACE
CONSUMER_TIMEOUT_MS = 2000


@pytest.fixture(scope="module")
def short_timeout_broker() -> Iterator[str]:
    node = RabbitNode.start(
        conf=f"consumer_timeout = {CONSUMER_TIMEOUT_MS}\n",
        advanced="[{rabbit, [{channel_tick_interval, 500}]}].\n",
    )
    try:
        yield node.url
    finally:
        node.stop()


@pytest.fixture
def exchange() -> str:
    return f"vcdext-chan-{uuid.uuid4().hex[:8]}"


def serving(output: str) -> int:
    """How often the consumer started serving (once per connection)."""
    return sum(1 for line in output.splitlines() if line.rstrip().endswith(" serving"))


class Run:
    """A `vcdext run --no-register --health-port` process serving tests.fake_plugins.chaos_slow
    (whose ``POST /api/chaos/create?s=N`` records each run of its handler in ``CHAOS_RUNS``)."""

    def __init__(self, url: str, exchange: str, log: Path, **env: str) -> None:
        self.log = log
        self.health_port = free_port()
        environ = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
            "VCDEXT_AMQP_URL": url,
            "VCDEXT_AMQP_EXCHANGE": exchange,
            "VCDEXT_PLUGINS_ENABLED": "[]",
            "VCDEXT_PLUGINS_MODULES": "tests.fake_plugins.chaos_slow",
            "PYTHONPATH": str(REPO),
            **env,
        }
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vcdext",
                    "run",
                    "--no-register",
                    "--health-port",
                    str(self.health_port),
                ],
                env=environ,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.alive(), f"vcdext exited with {self.proc.returncode}:\n{self.output}"
            assert time.monotonic() < deadline, f"{text!r} not logged:\n{self.output}"
            time.sleep(0.05)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[object]:
    procs: list[Run] = []

    def start(url: str, exchange: str, **env: str) -> Run:
        proc = Run(url, exchange, tmp_path / f"vcdext-{len(procs)}.log", **env)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


def test_a_handler_outliving_the_consumer_timeout_does_not_end_the_process(
    short_timeout_broker, exchange, run, tmp_path
):
    url = short_timeout_broker
    runs = tmp_path / "runs"
    proc = run(url, exchange, VCDEXT_RUNTIME_WORKERS="2", CHAOS_RUNS=str(runs))
    proc.wait_output(" serving")
    vcd = VcdSide(url, exchange)
    try:
        assert vcd.wait(vcd.request("GET", "/api/chaos/slow?s=0", KEY))[0].status == 200
        # Unacked for 4 s, past the 2 s consumer timeout: the broker closes the channel.
        hung = vcd.publish_raw(
            encode_request("POST", "/api/chaos/create?s=4", request_id="hung"), KEY
        )
        proc.wait_output("the broker closed the consuming channel")
        wait_for_metric(proc.health_port, "vcdext_reconnects_total", 1)
        assert "PRECONDITION_FAILED" in proc.output
        deadline = time.monotonic() + 30
        while serving(proc.output) < 2:  # logged once more, after the reconnect
            assert proc.alive() and time.monotonic() < deadline, proc.output
            time.sleep(0.05)
        # Served again: the next request is answered.
        nxt = vcd.request("GET", "/api/chaos/slow?s=0", KEY)
        assert vcd.wait(nxt, timeout=30)[0].status == 200
        # The long request is answered too. The broker redelivered it (its delivery tag died
        # with the channel); the redelivery got the reply of the first run from the recent
        # replies, without running the handler a second time.
        assert vcd.wait(hung, timeout=30)[0].status == 200
        proc.wait_output("answered from recent replies")
        assert proc.alive(), proc.output
    finally:
        vcd.close()
    assert [line.split()[1] for line in runs.read_text().splitlines()] == ["hung"]
    assert "refused the topology" not in proc.output
    proc.proc.send_signal(signal.SIGTERM)
    proc.proc.wait(60)
    assert proc.proc.returncode == 0, proc.output


def test_a_topology_refused_at_start_up_still_ends_the_process(short_timeout_broker, exchange, run):
    with Connection(short_timeout_broker) as conn:
        Exchange(exchange, type="fanout", durable=True)(conn.default_channel).declare()
    proc = run(short_timeout_broker, exchange)
    proc.proc.wait(60)
    assert proc.proc.returncode == 1, proc.output
    assert "refused the topology" in proc.output
    assert "PRECONDITION_FAILED" in proc.output


def test_the_queue_deleted_under_the_runtime_is_declared_again(rabbitmq, exchange, run):
    """The broker cancels the consumer of a deleted queue; the runtime reconnects, declares
    its queue again and serves on."""
    proc = run(rabbitmq, exchange)
    proc.wait_output(" serving")
    with Connection(rabbitmq) as conn:
        conn.default_channel.queue_delete(KEY)
    deadline = time.monotonic() + 30
    while serving(proc.output) < 2:
        assert proc.alive() and time.monotonic() < deadline, proc.output
        time.sleep(0.05)
    vcd = VcdSide(rabbitmq, exchange)
    try:
        assert vcd.wait(vcd.request("GET", "/api/chaos/slow?s=0", KEY))[0].status == 200
    finally:
        vcd.close()
    assert proc.alive(), proc.output
    assert "the broker cancelled the consumer" in proc.output
    proc.kill()
    with Connection(rabbitmq) as conn:
        conn.default_channel.queue_delete(KEY)


# --- the notification consumer --------------------------------------------------------------

VAPP_CREATE = "com/vmware/vcloud/event/vapp/create"
VAPP_CREATE_KEY = "true.a.b.c.com.vmware.vcloud.event.vapp.create.x"


def notification_consumer(url: str, handler: Any, name: str) -> NotificationConsumer:
    service = Service("s", namespace="io.example.s")
    service.notification(VAPP_CREATE)(handler)

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_service(service)

    settings = NotificationSettings(exchange=f"{name}.x", queue=f"{name}.q", workers=2)
    return NotificationConsumer(make_runtime(p=Plugin()).registry, settings, url=url)


def publish_note(url: str, name: str, event_id: str) -> None:
    body = tostring(
        n.write_notification(
            n.Notification(
                type=VAPP_CREATE,
                event_id=event_id,
                success=True,
                timestamp="2026-01-01T00:00:00Z",
                entity_links=(n.EntityLink("entity", "urn:vcloud:x:1", "vcloud:vapp", "web"),),
            )
        )
    )
    with Connection(url) as conn:
        Producer(conn.channel()).publish(
            body,
            exchange=Exchange(f"{name}.x", type="topic", durable=True),
            routing_key=VAPP_CREATE_KEY,
        )


def test_a_notification_handler_outliving_the_consumer_timeout_does_not_end_the_consumer(
    short_timeout_broker, caplog
):
    url = short_timeout_broker
    name = f"vcdext-chan-{uuid.uuid4().hex[:8]}"
    handled: list[str] = []
    lock = threading.Lock()

    def handler(note: Notification) -> None:
        with lock:
            first = not handled
            handled.append(note.event_id)
        if first:
            time.sleep(4)  # unacked past the 2 s consumer timeout: the channel is closed

    consumer = notification_consumer(url, handler, name)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    with caplog.at_level(logging.WARNING, logger="vcdext.transport.notifications"):
        thread.start()
        assert consumer.ready.wait(30)
        publish_note(url, name, "long")
        deadline = time.monotonic() + 30
        while "the broker closed the channel" not in caplog.text:
            assert thread.is_alive() and time.monotonic() < deadline, (failure, caplog.text)
            time.sleep(0.05)
        assert "PRECONDITION_FAILED" in caplog.text
        # It consumes again: the notification the channel held is redelivered (at least once),
        # and a new one is handled.
        publish_note(url, name, "next")
        while not {"next"} <= set(handled) or handled.count("long") < 2:
            assert thread.is_alive() and time.monotonic() < deadline, (failure, handled)
            time.sleep(0.05)
        consumer.stop()
        thread.join(40)
    assert not thread.is_alive()
    assert failure == []


def test_a_notification_exchange_of_another_type_is_still_fatal(short_timeout_broker):
    url = short_timeout_broker
    name = f"vcdext-chan-{uuid.uuid4().hex[:8]}"
    with Connection(url) as conn:
        Exchange(f"{name}.x", type="direct", durable=True)(conn.default_channel).declare()
    consumer = notification_consumer(url, lambda note: None, name)
    with pytest.raises(TransportError, match="refused the notification queue or exchange"):
        consumer.run()


def test_work_of_a_closed_channel_not_started_yet_is_left_to_its_redelivery(
    short_timeout_broker,
):
    """Two handlers hold both workers past the consumer timeout while two more notifications
    wait for a worker. The channel closes; the broker redelivers all four. The two that had
    not started must not run from the dead channel as well: each runs once."""
    url = short_timeout_broker
    name = f"vcdext-chan-{uuid.uuid4().hex[:8]}"
    runs: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def handler(note: Notification) -> None:
        with lock:
            runs[note.event_id] += 1
            first = runs[note.event_id] == 1
        if note.event_id.startswith("long") and first:
            time.sleep(4)  # past the 2 s consumer timeout

    consumer = notification_consumer(url, handler, name)  # 2 workers
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    assert consumer.ready.wait(30)
    for event_id in ("long-1", "long-2"):
        publish_note(url, name, event_id)
    deadline = time.monotonic() + 30
    while sum(runs.values()) < 2:  # both workers busy
        assert time.monotonic() < deadline, runs
        time.sleep(0.05)
    for event_id in ("quick-1", "quick-2"):
        publish_note(url, name, event_id)
    while not (runs["long-1"] >= 2 and runs["long-2"] >= 2 and runs["quick-1"] and runs["quick-2"]):
        assert time.monotonic() < deadline, runs
        time.sleep(0.05)
    time.sleep(1.0)  # a second run of a quick one would come now
    consumer.stop()
    thread.join(40)
    assert (runs["quick-1"], runs["quick-2"]) == (1, 1), runs
