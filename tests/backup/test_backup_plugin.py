"""The backup plugin in process: the test client and the test kit's in-memory vCD
(vcdext.testing.FakeVcd), which keeps every state of every task."""

from __future__ import annotations

from pathlib import Path

import pytest

import vcdext_backup.plugin as backup
from vcdext.settings import load_settings
from vcdext.testing import FakeVcd, TestClient, make_runtime
from vcdext.vcloud.media import VCLOUD_NS
from vcdext.vcloud.task import read_task

ORG = "11111111-1111-4111-8111-111111111111"
OTHER_ORG = "22222222-2222-4222-8222-222222222222"
SYSTEM = "urn:vcloud:org:a93c9db9-7471-3192-8d09-a8f7eeda85f9"
VAPP = "33333333-3333-4333-8333-333333333333"
VDC = "44444444-4444-4444-8444-444444444444"
ALICE = "urn:vcloud:user:55555555-5555-4555-8555-555555555555"
RIGHTS = [backup.VIEW, backup.CREATE, backup.DELETE]
BX = {"b": backup.XMLNS, "v": VCLOUD_NS}


def vapp_xml(vcd: FakeVcd, name: str = "web") -> str:
    return (
        f'<VApp xmlns="{VCLOUD_NS}" href="{vcd.base_url}/api/vApp/vapp-{VAPP}" '
        f'id="urn:vcloud:vapp:{VAPP}" name="{name}" status="8">'
        f'<Link rel="up" href="{vcd.base_url}/api/vdc/{VDC}" '
        'type="application/vnd.vmware.vcloud.vdc+xml"/></VApp>'
    )


def vdc_xml(vcd: FakeVcd) -> str:
    return (
        f'<Vdc xmlns="{VCLOUD_NS}" href="{vcd.base_url}/api/vdc/{VDC}" name="vdc">'
        f'<Link rel="up" href="{vcd.base_url}/api/org/{ORG}" '
        'type="application/vnd.vmware.vcloud.org+xml"/></Vdc>'
    )


@pytest.fixture
def vcd() -> FakeVcd:
    fake = FakeVcd()
    fake.add_document(f"/api/vApp/vapp-{VAPP}", vapp_xml(fake))
    fake.add_document(f"/api/vdc/{VDC}", vdc_xml(fake))
    return fake


@pytest.fixture
def client(vcd: FakeVcd, tmp_path: Path) -> TestClient:
    config = tmp_path / "vcdext.toml"
    config.write_text(f'[plugins.backup]\ndatabase = "{tmp_path / "b.sqlite3"}"\n')
    runtime = make_runtime(backup=backup, settings=load_settings(config, environ={}), vcd=vcd)
    return TestClient(runtime, user=ALICE, org=f"urn:vcloud:org:{ORG}", rights=RIGHTS)


def create(client: TestClient, body: str = "") -> str:
    reply = client.post(
        f"/api/vApp/vapp-{VAPP}/action/backup",
        body=body,
        headers={"Content-Type": backup.CREATE_PARAMS_TYPE} if body else {},
    )
    assert reply.status == 202, reply.text
    return reply.xml().get("id").rsplit(":", 1)[-1]


def test_a_backup_runs_as_a_task_and_is_stored(client, vcd, assert_valid_vcd_xml):
    task_id = create(
        client,
        f'<CreateBackupParams xmlns="{backup.XMLNS}" name="before upgrade">'
        "<Description>friday</Description></CreateBackupParams>",
    )
    (run,) = client.run_tasks()
    assert run.id == task_id
    assert run.statuses == ["queued", "running", "running", "running", "success"]
    assert [s.progress for s in run.states] == [0, 0, 10, 60, 100]
    assert {s.operation_name for s in run.states} == {"backupInProgress"}
    assert run.final.owner is not None and run.final.owner.name == "web"
    (event,) = run.events
    assert event.type == "backupComplete" and event.success is True
    backup_id = dict(event.properties)["backupId"]
    for document in vcd.documents(task_id) + vcd.event_documents():
        assert_valid_vcd_xml(document)

    listing = client.get(f"/api/org/{ORG}/backups")
    assert listing.status == 200
    (item,) = listing.xml().findall("b:Backup", BX)
    assert item.get("name") == "before upgrade"
    assert item.find("b:Configuration", BX) is None
    one = client.get(f"/api/backup/{backup_id}").xml()
    assert one.findtext("b:Description", namespaces=BX) == "friday"
    assert one.find("b:Configuration/v:VApp", BX).get("name") == "web"

    assert client.delete(f"/api/backup/{backup_id}").status == 204
    assert client.get(f"/api/backup/{backup_id}").status == 404


def test_a_vanished_vapp_ends_the_task_in_error(client, vcd, assert_valid_vcd_xml):
    task_id = create(client)
    vcd.remove_document(f"/api/vApp/vapp-{VAPP}")
    (run,) = client.run_tasks()
    assert run.final.status == "error"
    assert run.final.error is not None and "no longer exists" in run.final.error.message
    assert [e.type for e in run.events] == ["FAILED.backupComplete"]
    assert client.get(f"/api/org/{ORG}/backups").xml().findall("b:Backup", BX) == []
    for document in vcd.documents(task_id) + vcd.event_documents():
        assert_valid_vcd_xml(document)


def test_a_cancel_request_ends_the_task_canceled(client, vcd):
    task_id = create(client)
    vcd.request_cancel(task_id)
    (run,) = client.run_tasks()
    assert run.final.status == "canceled"
    assert client.get(f"/api/org/{ORG}/backups").xml().findall("b:Backup", BX) == []


def test_rights_are_required(client):
    assert client.post(f"/api/vApp/vapp-{VAPP}/action/backup", rights=[backup.VIEW]).status == 403
    assert client.get(f"/api/org/{ORG}/backups", rights=[]).status == 403


def test_other_tenants_see_nothing(client):
    create(client)
    (run,) = client.run_tasks()
    backup_id = dict(run.events[0].properties)["backupId"]
    other = {"org": f"urn:vcloud:org:{OTHER_ORG}"}
    assert client.get(f"/api/org/{ORG}/backups", **other).status == 403
    assert client.get(f"/api/backup/{backup_id}", **other).status == 404
    assert client.delete(f"/api/backup/{backup_id}", **other).status == 404
    refused = client.post(f"/api/vApp/vapp-{VAPP}/action/backup", **other)
    assert refused.status == 403
    assert client.get(f"/api/backup/{backup_id}", org=SYSTEM).status == 200


def test_an_unknown_vapp_is_404_and_no_task(client, vcd):
    assert client.post("/api/vApp/vapp-0000/action/backup").status == 404
    assert vcd.task_ids() == []


def test_a_bad_body_is_400(client):
    reply = client.post(
        f"/api/vApp/vapp-{VAPP}/action/backup",
        body="<Other/>",
        headers={"Content-Type": "application/xml"},
    )
    assert reply.status == 400


def test_the_vapp_link_and_the_rights_are_declared():
    runtime = make_runtime(backup=backup)
    declared = runtime.registry.services["backup"]
    (link,) = declared.links
    assert link.href == "{baseUri}vApp/vapp-{resourceId}/action/backup"
    assert link.mime_type == "application/vnd.vmware.vcloud.createBackupParams+xml"
    assert link.resource_type == "application/vnd.vmware.vcloud.vApp+xml"
    assert sorted(r.full_name for r in declared.rights) == sorted(RIGHTS)


def test_the_default_database_is_under_the_users_data_directory(monkeypatch, tmp_path):
    from vcdext_backup.settings import BackupSettings

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert BackupSettings().database_path() == tmp_path / "vcdext" / "backup.sqlite3"


def test_read_task_of_the_reply_is_queued(client):
    reply = client.post(f"/api/vApp/vapp-{VAPP}/action/backup")
    assert read_task(reply.body).value.status == "queued"


def test_vcd_unreachable_while_checking_the_vapp_is_503(client, vcd):
    vcd.unavailable(1)
    reply = client.post(f"/api/vApp/vapp-{VAPP}/action/backup")
    assert reply.status == 503
    assert "could not be asked" in reply.xml().get("message")
    assert vcd.task_ids() == []
