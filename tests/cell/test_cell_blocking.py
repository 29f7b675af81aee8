"""The cell's blocking-task and notification settings, and its mutable demo inventory, over
HTTP with kombu's in-memory broker (the end-to-end behaviour with a service is in
test_cell_notifications.py)."""

from __future__ import annotations

import time

from tests.cell.support import Client, E
from vcdext.vcloud import notification as n
from vcdext.vcloud.metadata import read_metadata, write_metadata_value
from vcdext_cell import Cell

V = "{http://www.vmware.com/vcloud/v1.5}"
SETTINGS = "/api/admin/extension/settings"


def vdc_of(cell: Cell, org: str) -> str:
    return cell.org(org).vdcs[0].id


def test_settings_are_for_system_administrators_and_round_trip(
    admin: Client, alice: Client
) -> None:
    assert alice.get(f"{SETTINGS}/blockingTask").status_code == 403
    assert n.read_notifications_settings(admin.xml("GET", f"{SETTINGS}/notifications")) is False
    admin.xml("PUT", f"{SETTINGS}/notifications", n.write_notifications_settings(True))
    assert n.read_notifications_settings(admin.xml("GET", f"{SETTINGS}/notifications")) is True
    default = n.read_blocking_task_settings(admin.xml("GET", f"{SETTINGS}/blockingTask"))
    assert default == n.BlockingTaskSettings("abort", (), 60_000)
    admin.xml(
        "PUT", f"{SETTINGS}/blockingTask/operations", n.write_blocking_operations(["vappDeploy"])
    )
    got = n.read_blocking_task_settings(admin.xml("GET", f"{SETTINGS}/blockingTask"))
    assert got.operations == ("vappDeploy",)
    bad = n.write_blocking_task_settings(n.BlockingTaskSettings("explode", (), 1))
    assert admin.put(f"{SETTINGS}/blockingTask", bad).status_code == 400


def test_composed_vapps_can_be_deleted_the_seed_cannot(cell: Cell, alice: Client, client) -> None:
    vapp = alice.xml(
        "POST",
        f"/api/vdc/{vdc_of(cell, 'acme')}/action/composeVApp",
        E("ComposeVAppParams", name="tmp"),
        status=201,
    )
    href = vapp.get("href", "")
    assert alice.xml("GET", href).get("name") == "tmp"
    alice.xml("PUT", f"{href}/metadata/owner", write_metadata_value("alice"), status=202)
    assert read_metadata(alice.xml("GET", f"{href}/metadata")) == {"owner": "alice"}
    task = alice.xml("DELETE", href, status=202)
    assert task.get("status") == "success" and task.get("operationName") == "vappDelete"
    assert alice.get(href).status_code == 404
    seed = cell.org("acme").vdcs[0].vapps[0]
    assert alice.delete(f"/api/vApp/vapp-{seed.id}").status_code == 400
    # A system administrator composes in any org; a vApp needs a name.
    sysadmin = client("administrator@System")
    assert (
        sysadmin.post(
            f"/api/vdc/{vdc_of(cell, 'acme')}/action/composeVApp", E("ComposeVAppParams", name="x")
        ).status_code
        == 201
    )
    assert (
        alice.post(
            f"/api/vdc/{vdc_of(cell, 'acme')}/action/composeVApp", E("ComposeVAppParams")
        ).status_code
        == 400
    )


def test_a_blocked_deploy_waits_for_an_action_and_each_action_ends_it_once(
    cell: Cell, admin: Client, alice: Client
) -> None:
    admin.xml(
        "PUT", f"{SETTINGS}/blockingTask/operations", n.write_blocking_operations(["vappDeploy"])
    )
    seed = cell.org("acme").vdcs[0].vapps[0]
    task = alice.xml(
        "POST", f"/api/vApp/vapp-{seed.id}/action/deploy", E("DeployVAppParams"), status=202
    )
    deadline = time.monotonic() + 30
    while not (refs := admin.xml("GET", "/api/admin/extension/blockingTasks")).findall(
        f"{V}Reference"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    blocked = n.read_blocking_task(admin.xml("GET", refs.find(f"{V}Reference").get("href")))  # type: ignore[union-attr]
    assert blocked.status == "active" and blocked.task_owner is not None
    assert blocked.task_owner.name == seed.name and blocked.organization.name == "acme"
    fail = blocked.action_href("fail")
    assert fail is not None
    assert alice.post(fail, n.write_operation_params("no")).status_code == 403
    assert admin.post(fail, n.write_operation_params("not today")).status_code == 204
    assert admin.post(fail, n.write_operation_params("again")).status_code == 409
    deadline = time.monotonic() + 30
    while (task := alice.xml("GET", task.get("href", ""))).get("status") == "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert task.get("status") == "error"
    assert task.find(f"{V}Error").get("message") == "not today"  # type: ignore[union-attr]
    assert seed.id not in cell.reactions.deployed
    assert not admin.xml("GET", "/api/admin/extension/blockingTasks").findall(f"{V}Reference")


def test_tasks_of_the_tasks_api_are_announced_once_notifications_are_on(
    cell: Cell, admin: Client, alice: Client, assert_valid_vcd_xml
) -> None:
    from tests.cell.test_cell_tasks_events import task_xml

    org = cell.org("acme")
    alice.xml("POST", f"/api/tasksList/{org.id}", task_xml())
    assert cell.notifier.published == []  # off, as in vCD
    admin.xml("PUT", f"{SETTINGS}/notifications", n.write_notifications_settings(True))
    task = alice.xml("POST", f"/api/tasksList/{org.id}", task_xml())
    alice.xml("PUT", task.get("href", ""), task_xml(status="success"))
    alice_id = next(u.id for u in org.users if u.name == "alice")
    got = [
        (p.type, p.entity.uuid, p.entity.name, p.org.uuid, p.user.uuid, p.success)  # type: ignore[union-attr]
        for p in cell.notifier.published
    ]
    task_id = task.get("id", "").rsplit(":", 1)[-1]
    assert got == [
        (
            "com/vmware/vcloud/event/task/create",
            task_id,
            "greetingInProgress",
            org.id,
            alice_id,
            True,
        ),
        (
            "com/vmware/vcloud/event/task/update",
            task_id,
            "greetingInProgress",
            org.id,
            alice_id,
            True,
        ),
    ]
    # A task entity's name ends the routing key, as vCD does for tasks.
    assert n.routing_key(cell.notifier.published[0]).endswith(".task.create.greetingInProgress")
    for p in cell.notifier.published:
        assert_valid_vcd_xml(p.raw)
