"""The backup plugin's authorization through the local cell (issue 11, item 4): rights
enforced by vcdext before a handler runs, backups registered as service resources of their
organization, and the ACL rules of the plugin's resource class evaluated by the cell.

Two organizations: acme (alice holds the backup rights, bob none) and globex (carol holds
them too). Every vCD document the tests receive is schema-checked by the cell tests' Client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from lxml import etree

import vcdext_backup.plugin as backup
from tests.cell.support import NS, Client
from tests.support.seeds import two_tenants
from vcdext import Runtime
from vcdext.app import create_transport
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime
from vcdext.vcd import VcdClient, register_services
from vcdext.vcd.authorization import VcdAuthorizer
from vcdext_cell import Cell
from vcdext_cell.seed import load_seed

RIGHTS = tuple(
    f"{{org.example.vcd.backup}}:{r}" for r in ("View Backups", "Create Backup", "Delete Backup")
)
SEED = two_tenants(*RIGHTS, vapps=True)


@dataclass
class Stack:
    cell: Cell
    runtime: Runtime
    settings: Settings
    login: Callable[[str], Client]

    def vapp(self, org: str) -> str:
        return self.cell.org(org).vdcs[0].vapps[0].id

    def create(self, who: Client, org: str) -> object:
        return who.post(
            f"/api/vApp/vapp-{self.vapp(org)}/action/backup",
            b"",
            headers={"Content-Type": backup.CREATE_PARAMS_TYPE},
        )

    def backed_up(self, who: Client, org: str) -> str:
        """Back up ``org``'s vApp as ``who``; the new backup's id once the task succeeded."""
        r = self.create(who, org)
        assert r.status_code == 202, r.text
        href = etree.fromstring(r.content).get("href")
        deadline = time.monotonic() + 20
        while (task := who.xml("GET", href)).get("status") not in ("success", "error"):
            assert time.monotonic() < deadline, "the task never ended"
            time.sleep(0.05)
        assert task.get("status") == "success", etree.tostring(task)
        return task.findtext("v:Details", namespaces=NS).split()[1]


@pytest.fixture
def stack(tmp_path: Path, assert_valid_vcd_xml: Callable[[bytes], None]) -> Iterator[Stack]:
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    cell = Cell(amqp_url="memory://", host="127.0.0.1", port=0, timeout=10, seed=load_seed(seed))
    cell.start()
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f'[amqp]\nurl = "memory://"\nheartbeat = 0\n'
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
        f'[plugins.backup]\ndatabase = "{tmp_path / "backups.sqlite3"}"\n'
    )
    settings = load_settings(config, environ={})
    runtime = make_runtime(backup=backup, settings=settings)
    result = register_services(runtime, settings)
    runtime.dispatcher.learn_right_ids(result.right_aliases())
    # what `vcdext run` does after registering (app._connect_authorizer)
    client = VcdClient.from_settings(settings)
    client.connect()
    runtime.dispatcher.authorizer = VcdAuthorizer(client, {"backup": backup.NAMESPACE})
    server = create_transport(runtime, amqp_url="memory://")
    thread = threading.Thread(target=server.run, name="test-amqp-server", daemon=True)
    runtime.start()
    thread.start()
    assert server.ready.wait(20), "the runtime did not connect"

    def login(who: str) -> Client:
        return Client(cell.url, assert_valid_vcd_xml).login(who, "vmware")

    try:
        yield Stack(cell, runtime, settings, login)
    finally:
        server.stop()
        thread.join(timeout=20)
        runtime.tasks.shutdown(timeout=5)
        runtime.stop()
        client.close()
        cell.stop()


def test_registration_declares_the_backup_class_once(stack: Stack) -> None:
    service = stack.cell.service(backup.NAMESPACE)
    assert service is not None and service.authorization_enabled
    (cls,) = stack.cell.state.resource_classes(service.id)
    assert cls.name == "Backup"
    actions = {a.http_method: a for a in stack.cell.state.actions(cls.id)}
    assert sorted(actions) == ["DELETE", "GET"]
    assert sorted(r.name for r in stack.cell.state.rules(actions["GET"].id)) == [
        "system administrators",
        "viewers",
    ]
    again = register_services(stack.runtime, stack.settings)
    assert again.plan.is_empty, again.plan.table()


def test_without_create_backup_403_with_it_202(stack: Stack) -> None:
    bob = stack.login("bob@acme")
    r = stack.create(bob, "acme")
    assert r.status_code == 403
    error = etree.fromstring(r.content)
    assert error.get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
    assert "Create Backup" in error.get("message")
    assert stack.cell.tasks() == []
    alice = stack.login("alice@acme")
    r = stack.create(alice, "acme")
    assert r.status_code == 202, r.text
    assert etree.fromstring(r.content).tag == f"{{{NS['v']}}}Task"


def test_an_org_user_cannot_read_another_orgs_backup(stack: Stack) -> None:
    alice, carol = stack.login("alice@acme"), stack.login("carol@globex")
    mine = stack.backed_up(alice, "acme")
    theirs = stack.backed_up(carol, "globex")
    # each backup is a service resource of its vApp's organization
    resources = {r.external_object_id: r for r in stack.cell.state.resources()}
    assert resources[mine].org.href.endswith(stack.cell.org("acme").id)
    assert resources[theirs].org.href.endswith(stack.cell.org("globex").id)

    forwarded = len(stack.cell.state.forwarded())
    r = carol.get(f"/api/backup/{mine}")
    assert r.status_code == 403, "the ACL rules keep carol out"
    assert carol.delete(f"/api/backup/{mine}").status_code == 403
    assert len(stack.cell.state.forwarded()) == forwarded, "refused before forwarding"
    acme = stack.cell.org("acme").id
    assert carol.get(f"/api/org/{acme}/backups").status_code == 403  # same_org
    assert carol.get(f"/api/backup/{theirs}", vcd_xml=False).status_code == 200
    assert alice.get(f"/api/backup/{theirs}").status_code == 403
    assert alice.get(f"/api/backup/{mine}", vcd_xml=False).status_code == 200
    listing = alice.xml("GET", f"/api/org/{acme}/backups", vcd_xml=False)
    ids = [b.get("id") for b in listing.findall(f"{{{backup.XMLNS}}}Backup")]
    assert ids == [f"urn:vcloud:backup:{mine}"]

    # bob is in acme but holds no View Backups: refused too
    assert stack.login("bob@acme").get(f"/api/backup/{mine}").status_code == 403
    # a System administrator sees every organization's backups
    admin = stack.login("administrator@System")
    assert admin.get(f"/api/backup/{mine}", vcd_xml=False).status_code == 200
    assert admin.get(f"/api/backup/{theirs}", vcd_xml=False).status_code == 200
    assert carol.delete(f"/api/backup/{theirs}").status_code == 204
