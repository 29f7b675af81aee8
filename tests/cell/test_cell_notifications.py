"""Notifications and blocking tasks end to end on a real RabbitMQ node: the local cell
publishes and blocks as vCD does; the runtime's notification consumer and the policy plugin
(plugins/policy) react. Every XML document exchanged is checked against VMware's schemas."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import vcdext_policy.plugin as policy
from tests.cell.support import Client, E
from vcdext import Registrar, Service, hookimpl
from vcdext.notifications import (
    BlockingRequest,
    Decision,
    Notification,
    NotificationSettings,
    resume,
)
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime
from vcdext.transport.notifications import NotificationConsumer, start_notifications
from vcdext.vcd import register_services
from vcdext.vcloud import notification as n
from vcdext.vcloud.metadata import write_metadata_value
from vcdext.xml import tostring
from vcdext_cell import Cell

pytestmark = pytest.mark.integration

CREATE = "com/vmware/vcloud/event/vapp/create"
DELETE = "com/vmware/vcloud/event/vapp/delete"
V = "{http://www.vmware.com/vcloud/v1.5}"


class Watcher:
    """A plugin that only listens: every vApp create and delete, as handed to it."""

    def __init__(self) -> None:
        self.seen: list[Notification] = []
        self.lock = threading.Lock()
        service = Service("watch", namespace="io.vcdext.test.watch")

        @service.notification(CREATE)
        @service.notification(DELETE)
        def vapp_changed(note: Notification) -> None:
            with self.lock:
                self.seen.append(note)

        self.service = service

    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.add_service(self.service)


@dataclass
class Stack:
    cell: Cell
    settings: Settings
    runtime: Any
    watcher: Watcher
    validate: Callable[[bytes], None]
    url: str

    def client(self, login: str) -> Client:
        return Client(self.cell.url, self.validate).login(login, "vmware")


@pytest.fixture
def stack(
    rabbitmq: str, tmp_path: Path, assert_valid_vcd_xml: Callable[[bytes], None]
) -> Iterator[Stack]:
    cell = Cell(Settings(), amqp_url=rabbitmq, host="127.0.0.1", port=0, timeout=5)
    cell.start()
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f"""
[amqp]
url = "{rabbitmq}"
[vcd]
url = "{cell.url}"
username = "administrator"
password = "vmware"
[notifications]
queue = "vcdext.notifications.{uuid.uuid4().hex}"
[plugins.policy]
required_metadata = ["cost-centre"]
max_vms = {{ acme = 1 }}
"""
    )
    settings = load_settings(config)
    watcher = Watcher()
    runtime = make_runtime(settings=settings, policy=policy, watch=watcher)
    try:
        yield Stack(cell, settings, runtime, watcher, assert_valid_vcd_xml, rabbitmq)
    finally:
        cell.stop()


def serve(stack: Stack) -> Callable[[], None]:
    """Register with the cell (blocking settings, notifications on) and consume."""
    wanted = [
        "notifications: enable (EnableNotifications=true)",
        "blocking tasks: block vappDeploy",
    ]
    planned = register_services(stack.runtime, stack.settings, dry_run=True)
    assert planned.reactions == wanted
    assert "settings planned: blocking tasks: block vappDeploy" in planned.report()
    assert not stack.cell.notifier.enabled and not stack.cell.blocking.settings.operations
    result = register_services(stack.runtime, stack.settings)
    assert result.reactions == wanted
    assert stack.cell.notifier.enabled and stack.cell.blocking.settings.operations == (
        "vappDeploy",
    )
    again = register_services(stack.runtime, stack.settings, dry_run=True)
    assert again.reactions == []  # idempotent
    return start_notifications(stack.runtime.registry, stack.settings, amqp_url=stack.url)


def compose(c: Client, name: str) -> str:
    vdc = next(o for o in c_orgs(c) if o)  # the caller's VDC
    body = E("ComposeVAppParams", name=name)
    c.validate(tostring(body))
    doc = c.xml("POST", f"/api/vdc/{vdc}/action/composeVApp", body, status=201)
    return doc.get("href", "").rsplit("/", 1)[-1].removeprefix("vapp-")


def c_orgs(c: Client) -> list[str]:
    """The VDC ids of the caller's org."""
    orgs = c.xml("GET", "/api/org")
    org_href = orgs.find(f"{V}Org").get("href")  # type: ignore[union-attr]
    org = c.xml("GET", org_href)
    return [
        link.get("href", "").rsplit("/", 1)[-1]
        for link in org.findall(f"{V}Link")
        if link.get("type", "").startswith("application/vnd.vmware.vcloud.vdc+xml")
    ]


def deploy(c: Client, vapp_id: str) -> etree._Element:
    """Deploy and wait until the task ends; the final Task."""
    body = E("DeployVAppParams", powerOn="false")
    c.validate(tostring(body))
    task = c.xml("POST", f"/api/vApp/vapp-{vapp_id}/action/deploy", body, status=202)
    href = task.get("href", "")
    deadline = time.monotonic() + 30
    while task.get("status") in ("queued", "preRunning", "running"):
        assert time.monotonic() < deadline, "the deployment never ended"
        time.sleep(0.1)
        task = c.xml("GET", href)
    return task


def test_a_vapp_that_breaks_the_policy_is_blocked_then_failed_with_its_message(
    stack: Stack,
) -> None:
    stop = serve(stack)
    try:
        alice = stack.client("alice@acme")
        bare = compose(alice, "no-cost-centre")
        task = deploy(alice, bare)
        assert task.get("status") == "error"
        error = task.find(f"{V}Error")
        assert error is not None
        assert error.get("message") == (
            "Deployment refused by policy: vApp no-cost-centre lacks the metadata cost-centre"
        )
        # The seed's acme-web has the metadata but 2 VMs, over acme's quota of 1.
        web = next(v for v in stack.cell.org("acme").vdcs[0].vapps if v.name == "acme-web")
        alice.xml(
            "PUT",
            f"/api/vApp/vapp-{web.id}/metadata/cost-centre",
            write_metadata_value("42"),
            status=202,
        )
        task = deploy(alice, web.id)
        assert task.get("status") == "error"
        assert "has 2 VMs, over org acme's quota of 1" in task.find(f"{V}Error").get("message")  # type: ignore[union-attr]
        # The plugin explained each refusal with an event in the org.
        events = [e for e in stack.cell.events() if e.type == policy.REFUSED_EVENT]
        assert [dict(e.properties)["message"] for e in events] == [
            "Deployment refused by policy: vApp no-cost-centre lacks the metadata cost-centre",
            "Deployment refused by policy: vApp acme-web has 2 VMs, over org acme's quota of 1",
        ]
        for e in events:
            stack.validate(e.xml)
    finally:
        stop()
    validate_published(stack)


def test_a_vapp_that_follows_the_policy_is_resumed(stack: Stack) -> None:
    stop = serve(stack)
    try:
        alice = stack.client("alice@acme")
        vapp = compose(alice, "good")
        alice.xml(
            "PUT",
            f"/api/vApp/vapp-{vapp}/metadata/cost-centre",
            write_metadata_value("42"),
            status=202,
        )
        task = deploy(alice, vapp)
        assert task.get("status") == "success", tostring(task)
        assert vapp in stack.cell.reactions.deployed
        kinds = [p.type.rsplit("/", 2)[-2:] for p in stack.cell.notifier.published]
        assert ["blockingtask", "create"] in kinds and ["blockingtask", "resume"] in kinds
    finally:
        stop()
    validate_published(stack)


def test_without_an_answer_the_default_action_fires_at_the_timeout(stack: Stack) -> None:
    register_services(stack.runtime, stack.settings)  # vappDeploy blocks, nobody consumes
    admin = stack.client("administrator@System")
    # Long enough for a loaded machine to see the blocked task before the default action.
    settings = n.BlockingTaskSettings("abort", ("vappDeploy",), 4000)
    admin.xml(
        "PUT",
        "/api/admin/extension/settings/blockingTask",
        n.write_blocking_task_settings(settings),
    )
    alice = stack.client("alice@acme")
    vapp = compose(alice, "unanswered")
    started = time.monotonic()
    body = E("DeployVAppParams", powerOn="false")
    alice.xml("POST", f"/api/vApp/vapp-{vapp}/action/deploy", body, status=202)
    # While it waits, the administrator sees the blocked task and its actions.
    deadline = time.monotonic() + 30
    while not (refs := admin.xml("GET", "/api/admin/extension/blockingTasks")).findall(
        f"{V}Reference"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    blocked = admin.xml("GET", refs.find(f"{V}Reference").get("href"))  # type: ignore[union-attr]
    assert blocked.get("status") == "active" and blocked.get("timeoutAction") == "abort"
    task = deploy_wait(alice, vapp)
    assert time.monotonic() - started >= 3.9
    assert task.get("status") == "aborted"
    assert "default action (abort)" in (task.findtext(f"{V}Details") or "")
    assert vapp not in stack.cell.reactions.deployed


def deploy_wait(c: Client, vapp_id: str) -> etree._Element:
    deadline = time.monotonic() + 30
    while True:
        tasks = c.xml("GET", f"/api/tasksList/{c_org_id(c)}")
        mine = [
            t
            for t in tasks.findall(f"{V}Task")
            if t.get("operationName") == "vappDeploy"
            and (
                t.find(f"{V}Owner") is not None
                and t.find(f"{V}Owner").get("href", "").endswith(vapp_id)
            )
        ]  # type: ignore[union-attr]
        if mine and mine[-1].get("status") not in ("queued", "preRunning", "running"):
            return mine[-1]
        assert time.monotonic() < deadline, "the deployment never ended"
        time.sleep(0.1)


def c_org_id(c: Client) -> str:
    orgs = c.xml("GET", "/api/org")
    return orgs.find(f"{V}Org").get("href", "").rsplit("/", 1)[-1]  # type: ignore[union-attr]


def test_each_create_and_delete_reaches_the_handler_once_with_its_org_and_user(
    stack: Stack,
) -> None:
    # A second consumer reads the JSON form vCD publishes on <AmqpPrefix>.notifications20.
    json_seen: list[Notification] = []
    watch_json = Service("json", namespace="io.vcdext.test.json")
    watch_json.notification(CREATE)(json_seen.append)
    watch_json.notification(DELETE)(json_seen.append)

    class JsonPlugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_service(watch_json)

    json_runtime = make_runtime(json=JsonPlugin())
    json_consumer = NotificationConsumer(
        json_runtime.registry,
        NotificationSettings(exchange="vcd.notifications20", queue=f"json.{uuid.uuid4().hex}"),
        url=stack.url,
    )
    json_thread = threading.Thread(target=json_consumer.run, daemon=True)
    json_thread.start()
    assert json_consumer.ready.wait(30)
    # Like vCD, the cell publishes nothing until notifications are enabled (serve() does).
    compose(stack.client("alice@acme"), "unannounced")
    assert stack.cell.notifier.published == []
    stop = serve(stack)
    try:
        alice, bob = stack.client("alice@acme"), stack.client("bob@acme")
        first = compose(alice, "one")
        second = compose(bob, "two")
        bob.xml("DELETE", f"/api/vApp/vapp-{first}", status=202)
        deadline = time.monotonic() + 30
        while len(stack.watcher.seen) < 3 or len(json_seen) < 3:
            assert time.monotonic() < deadline, (stack.watcher.seen, json_seen)
            time.sleep(0.05)
        time.sleep(0.5)  # nothing more arrives: once per delivery
        acme = stack.cell.org("acme")
        users = {u.name: u.id for u in acme.users}
        got = [
            (
                s.type.rsplit("/", 1)[-1],
                s.entity.uuid,
                s.org.uuid,
                s.org.name,
                s.user.uuid,
                s.format,
            )  # type: ignore[union-attr]
            for s in stack.watcher.seen
        ]
        # Handlers run in a worker pool, so they may see the three in any order.
        assert sorted(got) == sorted(
            [
                ("create", first, acme.id, "acme", users["alice"], "xml"),
                ("create", second, acme.id, "acme", users["bob"], "xml"),
                ("delete", first, acme.id, "acme", users["bob"], "xml"),
            ]
        )
        assert sorted(
            (s.type.rsplit("/", 1)[-1], s.entity.uuid, s.org.uuid, s.user.uuid, s.format)  # type: ignore[union-attr]
            for s in json_seen
        ) == sorted((a, b, c, e, "json") for a, b, c, _, e, _ in got)
        for s in stack.watcher.seen:
            stack.validate(s.raw)
    finally:
        stop()
        json_consumer.stop()
        json_thread.join(10)


def validate_published(stack: Stack) -> None:
    assert stack.cell.notifier.published
    for note in stack.cell.notifier.published:
        stack.validate(note.raw)


def test_a_notification_is_acked_only_after_its_handler_returned(stack: Stack) -> None:
    """A handler that fails gets the notification again (requeued); one that fails on the
    redelivery too drops it, so the queue never loops on one message."""
    attempts: list[tuple[str, str]] = []
    flaky = Service("flaky", namespace="io.vcdext.test.flaky")

    @flaky.notification(CREATE)
    def fails_first(note: Notification) -> None:
        assert note.entity is not None
        attempts.append((note.entity.name, note.event_id))
        first_try = [name for name, _ in attempts].count(note.entity.name) == 1
        if note.entity.name == "always" or first_try:
            raise RuntimeError("not now")

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_service(flaky)

    queue_name = f"flaky.{uuid.uuid4().hex}"
    consumer = NotificationConsumer(
        make_runtime(flaky=Plugin()).registry,
        NotificationSettings(queue=queue_name),
        url=stack.url,
    )
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    assert consumer.ready.wait(30)
    try:
        admin = stack.client("administrator@System")
        admin.xml(
            "PUT",
            "/api/admin/extension/settings/notifications",
            n.write_notifications_settings(True),
        )
        alice = stack.client("alice@acme")
        compose(alice, "flaky")
        compose(alice, "always")
        deadline = time.monotonic() + 30
        while len(attempts) < 4:
            assert time.monotonic() < deadline, attempts
            time.sleep(0.05)
        time.sleep(0.5)
        names = [name for name, _ in attempts]
        assert sorted(names) == ["always", "always", "flaky", "flaky"]
        # Each retry is the same notification, delivered again.
        assert len({event for _, event in attempts}) == 2
    finally:
        consumer.stop()
        thread.join(40)
    # Nothing is left in the queue: the first was acked, the second dropped.
    from kombu import Connection

    with Connection(stack.url) as conn:
        _, count, _ = conn.default_channel.queue_declare(queue=queue_name, passive=True)
    assert count == 0


def test_a_long_decision_extends_the_timeout(stack: Stack) -> None:
    """``request.extend`` posts updateProgress: the task waits past the original timeout.

    The original timeout leaves a loaded machine 4 s to get the notification through the
    broker to the handler and its extension back to the cell; the decision then takes 5 s."""
    slow = Service("slow", namespace="io.vcdext.test.slowdecider")

    @slow.blocking_task("vappDeploy")
    def ponder(request: BlockingRequest) -> Decision:
        request.extend(15_000, "asking a human")
        time.sleep(5.0)
        return resume("approved after a while")

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_service(slow)

    runtime = make_runtime(settings=stack.settings, slow=Plugin())
    register_services(runtime, stack.settings)
    admin = stack.client("administrator@System")
    settings = n.BlockingTaskSettings("fail", ("vappDeploy",), 4000)
    admin.xml(
        "PUT",
        "/api/admin/extension/settings/blockingTask",
        n.write_blocking_task_settings(settings),
    )
    stop = start_notifications(runtime.registry, stack.settings, amqp_url=stack.url)
    try:
        alice = stack.client("alice@acme")
        started = time.monotonic()
        task = deploy(alice, compose(alice, "pondered"))
        assert time.monotonic() - started >= 5.0
        assert task.get("status") == "success", tostring(task)
        assert task.findtext(f"{V}Details") == "approved after a while"
    finally:
        stop()
