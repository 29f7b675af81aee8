"""Notification and blocking-task declarations: recorded by Service, collected by the registry,
bound and dispatched by the notification consumer (its broker side is tested in
tests/cell/test_cell_notifications.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from vcdext import DeclarationConflict, PluginError, Registrar, Service, hookimpl
from vcdext.notifications import (
    BlockingRequest,
    Decision,
    Notification,
    NotificationSettings,
    Refused,
    fail,
)
from vcdext.testing import make_runtime
from vcdext.transport.notifications import NotificationConsumer
from vcdext.vcloud import notification as n
from vcdext.vcloud.model import Link, Reference
from vcdext.xml import tostring

CREATE = "com/vmware/vcloud/event/vapp/create"
DELETE = "com/vmware/vcloud/event/vapp/delete"


def note(type: str, *, success: bool = True, entity_name: str = "web") -> bytes:
    entity_type = "vcloud:blockingTask" if "blockingtask" in type else "vcloud:vapp"
    return tostring(
        n.write_notification(
            n.Notification(
                type=type,
                event_id="e",
                success=success,
                timestamp="2026-01-01T00:00:00Z",
                entity_links=(
                    n.EntityLink("entity", "urn:vcloud:x:1", entity_type, entity_name),
                    n.EntityLink("up", "urn:vcloud:org:2", "vcloud:org", "acme"),
                ),
            )
        )
    )


def runtime_with(service: Service) -> Any:
    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_service(service)

    return make_runtime(p=Plugin())


def test_declarations_reach_the_registry_and_derive_the_bindings() -> None:
    service = Service("s", namespace="io.example.s")
    seen: list[Notification] = []

    @service.notification(CREATE, success=True)
    def created(note: Notification) -> None:
        seen.append(note)

    @service.blocking_task("vappDeploy")
    def deploy(request: BlockingRequest) -> None:
        return None

    registry = runtime_with(service).registry
    assert [(d.type, d.success, d.plugin) for d in registry.notifications] == [(CREATE, True, "p")]
    assert [(b.operation, b.plugin) for b in registry.blocking_tasks] == [("vappDeploy", "p")]
    consumer = NotificationConsumer(registry, NotificationSettings(), url="memory://")
    assert consumer.routing_keys == (
        "*.*.*.*.com.vmware.vcloud.event.blockingtask.create.vappDeploy",
        "true.*.*.*.com.vmware.vcloud.event.vapp.create.#",
    )
    consumer.handle(note(CREATE))
    consumer.handle(note(CREATE, success=False))
    consumer.handle(note(DELETE))
    assert [(s.type, s.success) for s in seen] == [(CREATE, True)]


def test_bad_declarations_fail_at_import_or_registration() -> None:
    service = Service("s", namespace="io.example.s")
    with pytest.raises(ValueError, match="notification type"):
        service.notification("vapp/create")
    with pytest.raises(ValueError, match="vappDeploy"):
        service.blocking_task("vapp deploy")
    service.blocking_task("vappDeploy")(lambda r: None)
    service.blocking_task("vappDeploy")(lambda r: None)
    with pytest.raises(PluginError, match="declared twice"):
        runtime_with(service)


def test_two_plugins_cannot_both_decide_one_operation() -> None:
    class Plugin:
        def __init__(self, ns: str) -> None:
            self.ns = ns

        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_blocking_task("vappDeploy", lambda r: None)

    from vcdext import create_runtime

    with pytest.raises(DeclarationConflict, match="vappDeploy"):
        create_runtime(plugins=[("a", Plugin("a")), ("b", Plugin("b"))], autoload=False)


def test_a_failing_handler_does_not_keep_the_others_from_running() -> None:
    service = Service("s", namespace="io.example.s")
    ran: list[str] = []

    @service.notification(CREATE)
    def broken(note: Notification) -> None:
        ran.append("broken")
        raise RuntimeError("boom")

    @service.notification(CREATE)
    def fine(note: Notification) -> None:
        ran.append("fine")

    consumer = NotificationConsumer(runtime_with(service).registry, NotificationSettings(), url="")
    with pytest.raises(RuntimeError, match="boom"):
        consumer.handle(note(CREATE))
    assert ran == ["broken", "fine"]


class FakeVcd:
    """Answers the BlockingTask GET and records the action POSTs."""

    def __init__(self, status: str = "active") -> None:
        self.status = status
        self.posted: list[tuple[str, bytes, str]] = []

    def read(self, href: str, reader: Any) -> Any:
        base = "https://h/api/admin/extension/blockingTask/1"
        return n.BlockingTask(
            name="vappDeploy",
            status=self.status,
            created_time="2026-01-01T00:00:00Z",
            timeout_date="2026-01-01T00:01:00Z",
            timeout_action="abort",
            organization=Reference("https://h/api/org/2", name="acme"),
            task_owner=Reference("https://h/api/vApp/vapp-3", name="web"),
            href=base,
            links=tuple(Link(a, f"{base}/action/{a}") for a in ("resume", "abort", "fail")),
        )

    def post(self, href: str, body: Any, media_type: str) -> None:
        self.posted.append((href, tostring(body), media_type))


@pytest.mark.parametrize(
    ("outcome", "action", "message"),
    [
        (None, "resume", "Resumed by the p service"),
        (fail("no cost centre"), "fail", "no cost centre"),
        (Decision("abort", "replaced"), "abort", "replaced"),
        (Refused("over quota"), "fail", "over quota"),
        (RuntimeError("secret detail"), "fail", "The p service could not decide on this task"),
    ],
)
def test_a_blocking_handlers_outcome_is_posted_to_the_tasks_action(
    outcome: Any, action: str, message: str
) -> None:
    service = Service("s", namespace="io.example.s")
    got: list[BlockingRequest] = []

    @service.blocking_task("vappDeploy")
    def decide(request: BlockingRequest) -> Decision | None:
        got.append(request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    vcd = FakeVcd()
    consumer = NotificationConsumer(
        runtime_with(service).registry, NotificationSettings(), url="", vcd=lambda: vcd
    )
    consumer.handle(note(n.BLOCKING_TASK_CREATE, entity_name="vappDeploy"))
    assert got[0].task.task_owner is not None and got[0].task.task_owner.name == "web"
    [(href, body, media_type)] = vcd.posted
    assert href.endswith(f"/action/{action}")
    assert n.read_operation_params(body).message == message
    assert media_type == n.BLOCKING_TASK_OPERATION_PARAMS


def test_a_task_decided_already_is_left_alone() -> None:
    service = Service("s", namespace="io.example.s")
    service.blocking_task("vappDeploy")(lambda r: pytest.fail("must not run"))
    vcd = FakeVcd(status="resumed")
    consumer = NotificationConsumer(
        runtime_with(service).registry, NotificationSettings(), url="", vcd=lambda: vcd
    )
    consumer.handle(note(n.BLOCKING_TASK_CREATE, entity_name="vappDeploy"))
    assert vcd.posted == []


def test_a_blocking_handler_that_exits_still_fails_the_task() -> None:
    # A SystemExit (sys.exit in plugin code) must not leave the task undecided until vCD's
    # timeout: it counts as any other failure of the handler.
    service = Service("s", namespace="io.example.s")

    @service.blocking_task("vappDeploy")
    def decide(request: BlockingRequest) -> None:
        raise SystemExit(3)

    vcd = FakeVcd()
    consumer = NotificationConsumer(
        runtime_with(service).registry, NotificationSettings(), url="", vcd=lambda: vcd
    )
    consumer.handle(note(n.BLOCKING_TASK_CREATE, entity_name="vappDeploy"))
    [(href, body, _)] = vcd.posted
    assert href.endswith("/action/fail")
    assert n.read_operation_params(body).message == "The p service could not decide on this task"


class _Delivery:
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.delivery_info = {"redelivered": False}


def test_a_notification_whose_handler_exits_is_still_settled() -> None:
    # Otherwise the message stays unacked (its prefetch slot taken) until the connection
    # closes, and shutdown waits its whole grace for it.
    service = Service("s", namespace="io.example.s")

    @service.notification(CREATE)
    def exits(note: Notification) -> None:
        raise SystemExit(3)

    consumer = NotificationConsumer(runtime_with(service).registry, NotificationSettings(), url="")
    consumer._generation = 1  # consuming on its first channel
    consumer._work(1, 7, _Delivery(note(CREATE)))  # type: ignore[arg-type]
    assert consumer._settled.get_nowait() == (1, 7, "requeue")


_STUCK_HANDLER = """
import sys, threading
sys.path[:0] = {paths!r}
from kombu import Connection, Exchange, Producer
from vcdext import Service
from vcdext.notifications import NotificationSettings
from vcdext.transport.notifications import NotificationConsumer
from tests.test_notifications import CREATE, note, runtime_with

started = threading.Event()
service = Service("s", namespace="io.example.s")

@service.notification(CREATE)
def stuck(n):
    started.set()
    threading.Event().wait()  # a handler that never returns

settings = NotificationSettings(exchange="stuck.x", queue="stuck.q", workers=1)
consumer = NotificationConsumer(runtime_with(service).registry, settings, url="memory://")
threading.Thread(target=consumer.run, daemon=True).start()
assert consumer.ready.wait(10)
with Connection("memory://") as conn:
    Producer(conn.channel()).publish(
        note(CREATE),
        exchange=Exchange("stuck.x", type="topic", durable=True),
        routing_key="true.a.b.c.com.vmware.vcloud.event.vapp.create.x",
    )
assert started.wait(10)
consumer.stop()
print("exiting", flush=True)
"""


def test_a_stuck_notification_handler_does_not_keep_the_process_alive() -> None:
    # Like the request handlers' threads: a handler stuck past the shutdown grace is left to
    # the process exit (the broker redelivers its notification), it must not hang the exit.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    script = _STUCK_HANDLER.format(paths=[str(root)])
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, cwd=root
    )
    assert "exiting" in done.stdout, done.stderr


def test_the_vcd_sessions_of_the_notification_workers_are_closed_when_it_stops() -> None:
    # Each worker thread logs in to vCD on its first blocking task; vCD limits sessions per
    # user, so they are logged out when the consumer stops instead of left to expire.
    import threading

    from kombu import Connection, Exchange, Producer

    service = Service("s", namespace="io.example.s")
    service.blocking_task("vappDeploy")(lambda r: None)

    class ClosingVcd(FakeVcd):
        closed = 0

        def close(self) -> None:
            ClosingVcd.closed += 1

    vcd = ClosingVcd()
    settings = NotificationSettings(exchange="closing.x", queue="closing.q", workers=2)
    consumer = NotificationConsumer(
        runtime_with(service).registry, settings, url="memory://", vcd=lambda: vcd
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        assert consumer.ready.wait(10)
        with Connection("memory://") as conn:
            Producer(conn.channel()).publish(
                note(n.BLOCKING_TASK_CREATE, entity_name="vappDeploy"),
                exchange=Exchange("closing.x", type="topic", durable=True),
                routing_key="true.a.b.c.com.vmware.vcloud.event.blockingtask.create.vappDeploy",
            )
        deadline = time.monotonic() + 10
        while not vcd.posted and time.monotonic() < deadline:
            time.sleep(0.05)
        assert vcd.posted
    finally:
        consumer.stop()
        thread.join(40)
    assert ClosingVcd.closed == 1


def test_work_of_an_earlier_channel_is_left_to_the_broker():
    """A delivery of a channel that is gone is redelivered by the broker: running it from
    the old channel too would handle it twice, so it is neither run nor settled."""
    ran: list[str] = []
    service = Service("s", namespace="io.example.s")
    service.notification(CREATE)(lambda n: ran.append(n.type))
    consumer = NotificationConsumer(runtime_with(service).registry, NotificationSettings(), url="")
    consumer._generation = 2  # reconnected once
    consumer._work(1, 7, _Delivery(note(CREATE)))  # type: ignore[arg-type]
    assert ran == [] and consumer._settled.empty()
    consumer._work(2, 8, _Delivery(note(CREATE)))  # type: ignore[arg-type]
    assert ran == [CREATE] and consumer._settled.get_nowait() == (2, 8, "ack")
