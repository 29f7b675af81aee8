"""The backup plugin end to end through the local cell: the cell forwards the request over
AMQP, the runtime's vCD client (logged in to the cell as its administrator) creates and
updates the task and posts the events, and alice watches the task with GET /api/task/{id}.

Every XML document the tests receive from the cell (the 202's Task, each GET of the task, the
errors) is checked against VMware's schemas by the cell tests' Client; the posted events too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import vcdext_backup.plugin as backup
from tests.cell.support import NS, Client
from vcdext import Runtime
from vcdext.app import create_transport
from vcdext.errors import NotFound
from vcdext.settings import load_settings
from vcdext.testing import make_runtime
from vcdext.vcd import register_services
from vcdext_cell import Cell

BX = {"b": backup.XMLNS, **NS}


class WatchingVcd:
    """The runtime's vCD client, watched: after each task update it lets the test act (as a
    user would, over HTTP) and records what ``GET /api/task/{id}`` then shows alice."""

    def __init__(self, inner: Any, stack: Stack) -> None:
        self.inner = inner
        self.stack = stack
        self.base_url = inner.base_url

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_task(self, org_id: str, task: Any) -> Any:
        held = self.inner.create_task(org_id, task)
        self.stack.on_created(held)
        return held

    def update_task(self, href: str, task: Any) -> Any:
        held = self.inner.update_task(href, task)
        shown = self.stack.alice.xml("GET", href)
        self.stack.seen.append((shown.get("status"), shown.findtext("v:Progress", namespaces=NS)))
        self.stack.on_update(shown)
        return held


@dataclass
class Stack:
    cell: Cell
    runtime: Runtime
    alice: Client
    bob: Client
    validate: Callable[[bytes], None]
    seen: list[tuple[str | None, str | None]] = field(default_factory=list)
    on_created: Callable[[Any], None] = lambda held: None
    on_update: Callable[[etree._Element], None] = lambda task: None

    @property
    def acme(self) -> str:
        return self.cell.org("acme").id

    def vapp_id(self, name: str = "acme-web") -> str:
        vdc = self.cell.org("acme").vdcs[0]
        return next(a.id for a in vdc.vapps if a.name == name)

    def event(self, timeout: float = 20) -> Any:
        """The one event posted (the runtime posts it just after the task's last update)."""
        deadline = time.monotonic() + timeout
        while not self.cell.events():
            assert time.monotonic() < deadline, "no event was posted"
            time.sleep(0.02)
        (event,) = self.cell.events()
        return event

    def wait_final(self, href: str, timeout: float = 20) -> etree._Element:
        deadline = time.monotonic() + timeout
        while True:
            task = self.alice.xml("GET", href)
            if task.get("status") in ("success", "error", "canceled", "aborted"):
                return task
            assert time.monotonic() < deadline, "the task never ended"
            time.sleep(0.05)


@pytest.fixture
def stack(tmp_path: Path, assert_valid_vcd_xml: Callable[[bytes], None]) -> Iterator[Stack]:
    cell = Cell(amqp_url="memory://", host="127.0.0.1", port=0, timeout=10)
    cell.start()
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f'[amqp]\nurl = "memory://"\nheartbeat = 0\n'
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
        f'[plugins.backup]\ndatabase = "{tmp_path / "backups.sqlite3"}"\n'
    )
    settings = load_settings(config, environ={})
    runtime = make_runtime(backup=backup, settings=settings)
    result = register_services(runtime, settings)  # the service link and the rights
    runtime.dispatcher.learn_right_ids(result.right_aliases())
    server = create_transport(runtime, amqp_url="memory://")
    thread = threading.Thread(target=server.run, name="test-amqp-server", daemon=True)
    runtime.start()
    thread.start()
    assert server.ready.wait(20), "the runtime did not connect"
    alice = Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")
    bob = Client(cell.url, assert_valid_vcd_xml).login("bob@acme", "vmware")
    s = Stack(cell, runtime, alice, bob, assert_valid_vcd_xml)
    runtime.tasks.vcd = WatchingVcd(runtime.tasks.vcd, s)
    runtime.tasks.update_interval = 0.0  # every progress reaches the cell (default: 0.5 s)
    try:
        yield s
    finally:
        server.stop()
        thread.join(timeout=20)
        runtime.tasks.shutdown(timeout=5)
        runtime.stop()
        cell.stop()


def create_backup(stack: Stack, client: Client | None = None) -> Any:
    client = client or stack.alice
    vapp = client.xml("GET", f"/api/vApp/vapp-{stack.vapp_id()}")
    link = next(x for x in vapp.findall("v:Link", NS) if x.get("type") == backup.CREATE_PARAMS_TYPE)
    body = (
        f'<CreateBackupParams xmlns="{backup.XMLNS}" name="nightly">'
        "<Description>before the upgrade</Description></CreateBackupParams>"
    )
    return client.post(link.get("href"), body.encode(), headers={"Content-Type": link.get("type")})


def test_a_backup_is_a_task_that_shows_progress_then_success(stack: Stack) -> None:
    r = create_backup(stack)
    assert r.status_code == 202, r.text
    assert r.headers["Content-Type"].startswith("application/vnd.vmware.vcloud.task+xml")
    created = etree.fromstring(r.content)
    assert created.get("status") == "queued"
    assert created.get("serviceNamespace") == "org.example.vcd.backup"
    assert created.get("operationName") == "backupInProgress"
    assert created.find("v:Owner", NS).get("name") == "acme-web"
    alice_id = stack.cell.user("alice", "acme").id
    assert created.find("v:User", NS).get("id") == f"urn:vcloud:user:{alice_id}"
    assert created.find("v:User", NS).get("href") == f"{stack.cell.url}/api/admin/user/{alice_id}"
    href = created.get("href")

    final = stack.wait_final(href)
    assert final.get("status") == "success"
    assert final.findtext("v:Progress", namespaces=NS) == "100"
    event = stack.event()  # posted after the last update (and after the watcher saw it)
    assert stack.seen == [
        ("running", "0"),
        ("running", "10"),
        ("running", "60"),
        ("success", "100"),
    ]

    assert (event.type, event.success) == ("backupComplete", True)
    stack.validate(event.xml)
    backup_id = dict(event.properties)["backupId"]

    listing = stack.alice.xml("GET", f"/api/org/{stack.acme}/backups", vcd_xml=False)
    (item,) = listing.findall("b:Backup", BX)
    assert (item.get("name"), item.get("id")) == ("nightly", f"urn:vcloud:backup:{backup_id}")
    one = stack.alice.xml("GET", f"/api/backup/{backup_id}", vcd_xml=False)
    assert one.findtext("b:Description", namespaces=BX) == "before the upgrade"
    captured = one.find("b:Configuration/v:VApp", BX)
    assert captured.get("id") == f"urn:vcloud:vapp:{stack.vapp_id()}"
    assert [vm.get("name") for vm in captured.findall("v:Children/v:Vm", NS)] == ["web-1", "web-2"]

    assert stack.bob.get(f"/api/backup/{backup_id}").status_code == 403  # no View Backups
    assert stack.alice.delete(f"/api/backup/{backup_id}").status_code == 204
    assert stack.alice.get(f"/api/backup/{backup_id}").status_code == 404


def test_a_vanished_vapp_ends_the_task_in_error_with_failed_event(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    vanished = stack.vapp_id()
    real = stack.cell.state.vapp

    def vapp(vapp_id: str) -> Any:
        if vapp_id == vanished:
            raise NotFound(f"No vApp with id {vapp_id}")
        return real(vapp_id)

    # The vApp is deleted in vCD between the request and the task's work.
    stack.on_created = lambda held: monkeypatch.setattr(stack.cell.state, "vapp", vapp)
    r = create_backup(stack)
    assert r.status_code == 202
    final = stack.wait_final(etree.fromstring(r.content).get("href"))
    assert final.get("status") == "error"
    error = final.find("v:Error", NS)
    assert error.get("minorErrorCode") == "RESOURCE_NOT_FOUND"
    assert "no longer exists" in error.get("message")
    event = stack.event()
    assert (event.type, event.success) == ("FAILED.backupComplete", False)
    stack.validate(event.xml)
    listing = stack.alice.xml("GET", f"/api/org/{stack.acme}/backups", vcd_xml=False)
    assert listing.findall("b:Backup", BX) == []


def test_a_cancel_request_ends_the_task_canceled(stack: Stack) -> None:
    def cancel_once_running(task: etree._Element) -> None:
        cancel = next(
            (x.get("href") for x in task.findall("v:Link", NS) if x.get("rel") == "task:cancel"),
            None,
        )
        if task.get("status") == "running" and cancel:
            assert stack.alice.post(cancel).status_code == 204

    stack.on_update = cancel_once_running
    r = create_backup(stack)
    assert r.status_code == 202
    final = stack.wait_final(etree.fromstring(r.content).get("href"))
    assert final.get("status") == "canceled"
    assert final.get("cancelRequested") == "true"
    event = stack.event()
    assert event.type == "FAILED.backupComplete"
    assert dict(event.properties)["status"] == "canceled"
    listing = stack.alice.xml("GET", f"/api/org/{stack.acme}/backups", vcd_xml=False)
    assert listing.findall("b:Backup", BX) == []


def test_bob_may_not_back_up(stack: Stack) -> None:
    r = create_backup(stack, stack.bob)
    assert r.status_code == 403
    assert stack.cell.tasks() == []
