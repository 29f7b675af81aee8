"""Health and metrics of the notification consumer (issue 16 after issue 15): /healthz and
/readyz watch its thread and connection, /metrics counts its handlers and decisions."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from kombu import Connection, Exchange, Producer

import vcdext_hello.plugin as hello
from tests.test_notifications import CREATE, FakeVcd, note, runtime_with
from tests.test_ops import free_port, value
from vcdext import Registrar, Service, app, hookimpl
from vcdext.health import HealthState, probe
from vcdext.metrics import Metrics
from vcdext.notifications import (
    BlockingRequest,
    Decision,
    Notification,
    NotificationSettings,
    abort,
    fail,
)
from vcdext.settings import PluginsSettings, Settings
from vcdext.transport.notifications import NotificationConsumer
from vcdext.vcloud import notification as n

# -- /healthz and /readyz ---------------------------------------------------------------------


def serving_state() -> tuple[HealthState, threading.Event]:
    """A state whose request consumer runs, is connected and registered: healthy and ready."""
    state = HealthState()
    stop = threading.Event()
    state.consumer = threading.Thread(target=stop.wait, daemon=True)
    state.consumer.start()
    state.connected.set()
    state.registered.set()
    return state, stop


def test_without_notification_handlers_the_probes_leave_the_consumer_out():
    state, stop = serving_state()
    try:
        status, doc = state.healthz()
        assert status == 200
        assert "notifications_consumer_alive" not in doc
        assert "notifications_consuming" not in state.readyz()[1]
    finally:
        stop.set()


def test_healthz_fails_when_the_notification_consumer_thread_died():
    state, stop_requests = serving_state()
    stop_notifications = threading.Event()
    consuming = threading.Event()
    thread = threading.Thread(target=stop_notifications.wait, daemon=True)
    thread.start()
    state.watch_notifications(thread, consuming)
    try:
        # Started, not consuming yet: alive but failing, and not ready.
        status, doc = state.healthz()
        assert (status, doc["notifications_consumer_alive"]) == (503, True)
        assert doc["notifications_broker_connected"] is False
        status, doc = state.readyz()
        assert (status, doc["notifications_consuming"]) == (503, False)
        consuming.set()
        status, doc = state.healthz()
        assert status == 200
        assert doc["notifications_consumer_alive"] is True
        assert doc["notifications_broker_connected"] is True
        assert state.readyz() == (
            200,
            {
                "status": "ready",
                "topology_declared": True,
                "registration_done": True,
                "draining": False,
                "notifications_consuming": True,
            },
        )
        consuming.clear()  # its broker went away: it reconnects
        assert state.healthz()[0] == 503
        assert state.readyz()[0] == 503
        consuming.set()
        stop_notifications.set()  # the thread dies (its `ready` may still be set)
        thread.join()
        status, doc = state.healthz()
        assert status == 503
        assert doc["notifications_consumer_alive"] is False
        assert doc["notifications_broker_connected"] is False
        assert doc["consumer_thread"] is True and doc["broker_connected"] is True
        assert state.readyz()[1]["notifications_consuming"] is False
        # After SIGTERM the notification consumer is stopped on purpose while requests drain.
        state.draining.set()
        assert state.healthz()[0] == 200
    finally:
        stop_requests.set()


# -- the metrics of handlers and decisions ----------------------------------------------------


def test_handler_runs_are_counted_by_plugin_type_and_outcome():
    service = Service("s", namespace="io.example.s")
    calls: list[str] = []

    @service.notification(CREATE)
    def flaky(note: Notification) -> None:
        calls.append("flaky")
        if len(calls) > 1:
            raise RuntimeError("not now")

    metrics = Metrics()
    consumer = NotificationConsumer(
        runtime_with(service).registry, NotificationSettings(), url="", observer=metrics
    )
    consumer.handle(note(CREATE))
    with pytest.raises(RuntimeError):
        consumer.handle(note(CREATE))
    with pytest.raises(RuntimeError):
        consumer.handle(note(CREATE), redelivered=True)
    labels = {"plugin": "p", "type": CREATE}
    assert value(metrics, "vcdext_notifications_total", outcome="ok", **labels) == 1
    assert value(metrics, "vcdext_notifications_total", outcome="requeued", **labels) == 1
    assert value(metrics, "vcdext_notifications_total", outcome="failed", **labels) == 1
    assert value(metrics, "vcdext_notification_duration_seconds_count", **labels) == 3
    assert value(metrics, "vcdext_notification_duration_seconds_bucket", le="+Inf", **labels) == 3
    # A notification of a type nobody declared runs nothing and counts nothing.
    consumer.handle(note("com/vmware/vcloud/event/vapp/delete"))
    assert value(metrics, "vcdext_notification_duration_seconds_count", **labels) == 3


class _Delivery:
    def __init__(self, body: bytes, redelivered: bool = False) -> None:
        self.body = body
        self.delivery_info = {"redelivered": redelivered}


def test_the_consumer_settles_as_it_counts_and_an_unreadable_one_is_failed():
    service = Service("s", namespace="io.example.s")

    @service.notification(CREATE)
    def broken(note: Notification) -> None:
        raise RuntimeError("boom")

    metrics = Metrics()
    consumer = NotificationConsumer(
        runtime_with(service).registry, NotificationSettings(), url="", observer=metrics
    )
    consumer._generation = 1  # consuming on its first channel
    consumer._work(1, 1, _Delivery(note(CREATE)))  # type: ignore[arg-type]
    consumer._work(1, 2, _Delivery(note(CREATE), redelivered=True))  # type: ignore[arg-type]
    consumer._work(1, 3, _Delivery(b"<not a notification"))  # type: ignore[arg-type]
    settled = [consumer._settled.get_nowait()[2] for _ in range(3)]
    assert settled == ["requeue", "reject", "reject"]
    labels = {"plugin": "p", "type": CREATE}
    assert value(metrics, "vcdext_notifications_total", outcome="requeued", **labels) == 1
    assert value(metrics, "vcdext_notifications_total", outcome="failed", **labels) == 1
    assert value(metrics, "vcdext_notifications_total", plugin="", type="", outcome="failed") == 1


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (None, {"resume": 1}),
        (abort("replaced"), {"abort": 1}),
        (fail("no"), {"fail": 1}),
        (RuntimeError("bug"), {"fail": 1}),
        ("extend", {"extend": 2, "resume": 1}),
    ],
)
def test_blocking_decisions_are_counted_by_plugin_and_action(
    outcome: Any, expected: dict[str, int]
) -> None:
    service = Service("s", namespace="io.example.s")

    @service.blocking_task("vappDeploy")
    def decide(request: BlockingRequest) -> Decision | None:
        if isinstance(outcome, Exception):
            raise outcome
        if outcome == "extend":
            request.extend(60_000, "thinking")
            request.extend(60_000, "still thinking")
            return None
        return outcome

    metrics = Metrics()
    vcd = FakeVcd()
    consumer = NotificationConsumer(
        runtime_with(service).registry,
        NotificationSettings(),
        url="",
        vcd=lambda: vcd,
        observer=metrics,
    )
    consumer.handle(note(n.BLOCKING_TASK_CREATE, entity_name="vappDeploy"))
    counted = {
        action: value(metrics, "vcdext_blocking_decisions_total", plugin="p", action=action)
        for action in ("resume", "abort", "fail", "extend", "default")
    }
    assert counted == {a: expected.get(a) for a in counted}
    # The decision is a handler run too, counted ok (it was posted).
    labels = {"plugin": "p", "type": n.BLOCKING_TASK_CREATE}
    assert value(metrics, "vcdext_notifications_total", outcome="ok", **labels) == 1


def test_a_task_vcd_settled_already_counts_as_its_default_action():
    service = Service("s", namespace="io.example.s")
    service.blocking_task("vappDeploy")(lambda r: pytest.fail("must not run"))
    metrics = Metrics()
    vcd = FakeVcd(status="aborted")
    consumer = NotificationConsumer(
        runtime_with(service).registry,
        NotificationSettings(),
        url="",
        vcd=lambda: vcd,
        observer=metrics,
    )
    consumer.handle(note(n.BLOCKING_TASK_CREATE, entity_name="vappDeploy"))
    assert value(metrics, "vcdext_blocking_decisions_total", plugin="p", action="default") == 1
    assert value(metrics, "vcdext_blocking_decisions_total", plugin="p", action="resume") is None


def test_a_lost_notification_connection_is_counted_as_a_reconnect(monkeypatch):
    service = Service("s", namespace="io.example.s")
    service.notification(CREATE)(lambda note: None)
    metrics = Metrics()
    consumer = NotificationConsumer(
        runtime_with(service).registry,
        NotificationSettings(exchange=f"x.{uuid.uuid4().hex}", queue=f"q.{uuid.uuid4().hex}"),
        url="memory://",
        observer=metrics,
    )
    real_drain = consumer._drain
    lost = [True]

    def drain(conn: Any) -> None:
        if lost:
            lost.pop()
            raise conn.connection_errors[0]("the broker went away")
        real_drain(conn)

    monkeypatch.setattr(consumer, "_drain", drain)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while consumer._generation < 2:  # consuming again after the backoff
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert consumer.ready.wait(10)
    finally:
        consumer.stop()
        thread.join(20)
    assert value(metrics, "vcdext_reconnects_total", connection="notifications") == 1


# -- through `vcdext run` ---------------------------------------------------------------------


class Watcher:
    """hello's neighbour: a plugin that only listens to vApp creations."""

    def __init__(self) -> None:
        self.seen = threading.Event()
        service = Service("watch", namespace="io.vcdext.test.watch")
        service.notification(CREATE)(lambda note: self.seen.set())
        self.service = service

    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.add_service(self.service)


def test_run_reports_the_notification_consumer_and_counts_what_it_handled(monkeypatch):
    port = free_port()
    exchange = f"notify.{uuid.uuid4().hex}"
    settings = (
        Settings(plugins=PluginsSettings(enabled=("hello",)))
        .override("runtime.health_port", str(port), source="test")
        .override("notifications.exchange", exchange, source="test")
        .override("notifications.queue", f"q.{uuid.uuid4().hex}", source="test")
    )
    watcher = Watcher()
    create = app.create_runtime
    monkeypatch.setattr(
        app, "create_runtime", lambda s: create(s, plugins=[("hello", hello), ("watch", watcher)])
    )
    # The consumer thread dies of a bug once told to (a broker error it cannot handle).
    die = threading.Event()
    real_drain = NotificationConsumer._drain

    def drain(self: NotificationConsumer, conn: Any) -> None:
        if die.is_set():
            raise RuntimeError("a bug in the consumer")
        real_drain(self, conn)

    monkeypatch.setattr(NotificationConsumer, "_drain", drain)
    seen: dict[str, Any] = {}

    def ready(runtime: app.Runtime) -> None:
        import json

        seen["readyz"] = json.loads(probe("127.0.0.1", port, "/readyz")[1])
        seen["healthz"] = json.loads(probe("127.0.0.1", port, "/healthz")[1])
        with Connection("memory://") as conn:
            Producer(conn.channel()).publish(
                note(CREATE),
                exchange=Exchange(exchange, type="topic", durable=True),
                routing_key="true.a.b.c.com.vmware.vcloud.event.vapp.create.x",
            )
        assert watcher.seen.wait(10)
        deadline = time.monotonic() + 10
        line = f'vcdext_notifications_total{{outcome="ok",plugin="watch",type="{CREATE}"}} 1.0'
        while line not in (body := probe("127.0.0.1", port, "/metrics")[1]):
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        die.set()
        deadline = time.monotonic() + 10
        while (status := probe("127.0.0.1", port, "/healthz"))[0] != 503:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        seen["dead"] = json.loads(status[1])
        seen["dead_ready"] = probe("127.0.0.1", port, "/readyz")[0]
        import os
        import signal

        os.kill(os.getpid(), signal.SIGTERM)

    assert app.run(settings, amqp_url="memory://", register=False, on_ready=ready) == 0
    assert seen["readyz"]["status"] == "ready"
    assert seen["readyz"]["notifications_consuming"] is True
    assert seen["healthz"]["status"] == "ok"
    assert seen["healthz"]["notifications_consumer_alive"] is True
    assert seen["healthz"]["notifications_broker_connected"] is True
    assert seen["dead"]["notifications_consumer_alive"] is False
    assert seen["dead"]["consumer_thread"] is True  # the request consumer still serves
    assert seen["dead_ready"] == 503
