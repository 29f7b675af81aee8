"""Service tasks (create, update, cancel) and org events, as an extension service posts them."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.cell.support import NS, Client, E, link_href
from vcdext_cell import Cell

TASK = "application/vnd.vmware.vcloud.task+xml"


def task_xml(
    status: str = "running", namespace: str = "io.vcdext.hello", **attrs: str
) -> etree._Element:
    el = E(
        "Task",
        status=status,
        serviceNamespace=namespace,
        operationName="greetingInProgress",
        operation="Greeting in progress",
        name="task",
        **attrs,
    )
    return el


def create_link(admin: Client, cell: Cell) -> str:
    org = admin.xml("GET", f"/api/admin/org/{cell.org('acme').id}")
    return link_href(org, "task:create", TASK)


def test_create_read_update_complete(admin: Client, cell: Cell) -> None:
    body = task_xml()
    owner = E(
        "Owner",
        href=f"{cell.url}/api/org/{cell.org('acme').id}",
        type="application/vnd.vmware.vcloud.org+xml",
        name="acme",
    )
    body.append(owner)
    body.append(E("Progress", "10"))
    params = E("Params")
    params.append(E("Description", "anything goes here"))
    body.append(params)
    r = admin.post(create_link(admin, cell), body, headers={"Content-Type": TASK})
    assert r.status_code == 200
    task = etree.fromstring(r.content)
    assert task.get("id").startswith("urn:vcloud:task:")
    assert task.get("status") == "running"
    assert task.get("startTime")
    assert task.get("cancelRequested") == "false"
    assert task.findtext("v:Progress", namespaces=NS) == "10"
    assert task.find("v:Owner", NS).get("name") == "acme"
    assert task.find("v:User", NS).get("name") == "administrator"
    assert task.find("v:Organization", NS).get("name") == "acme"
    assert task.find("v:Params/v:Description", NS).text == "anything goes here"
    href = task.get("href")
    assert admin.xml("GET", href).get("operationName") == "greetingInProgress"

    done = task_xml("success")
    done.append(E("Progress", "100"))
    updated = admin.xml("PUT", link_href(task, "edit", TASK), done)
    assert updated.get("status") == "success"
    assert updated.get("endTime")
    assert updated.get("startTime") == task.get("startTime")
    assert not [x for x in updated.findall("v:Link", NS) if x.get("rel") == "task:cancel"]
    (stored,) = cell.tasks()
    assert stored.status == "success"
    assert stored.progress == 100


def test_failed_task_carries_its_error(admin: Client, cell: Cell) -> None:
    task = admin.xml("POST", create_link(admin, cell), task_xml())
    failed = task_xml("error")
    failed.append(
        E("Error", majorErrorCode="500", minorErrorCode="INTERNAL_SERVER_ERROR", message="boom")
    )
    updated = admin.xml("PUT", task.get("href"), failed)
    assert updated.find("v:Error", NS).get("message") == "boom"


def test_cancel_sets_cancel_requested(admin: Client, cell: Cell) -> None:
    task = admin.xml("POST", create_link(admin, cell), task_xml())
    r = admin.post(link_href(task, "task:cancel"))
    assert r.status_code == 204
    assert admin.xml("GET", task.get("href")).get("cancelRequested") == "true"
    # The service acknowledges by setting the status; cancelRequested stays the cell's.
    canceled = admin.xml("PUT", task.get("href"), task_xml("canceled"))
    assert canceled.get("status") == "canceled"
    assert canceled.get("cancelRequested") == "true"


def test_cancelling_a_finished_task_changes_nothing(admin: Client, cell: Cell) -> None:
    task = admin.xml("POST", create_link(admin, cell), task_xml("success"))
    assert admin.post(f"{task.get('href')}/action/cancel").status_code == 204
    assert admin.xml("GET", task.get("href")).get("cancelRequested") == "false"


def test_tasks_list_of_the_org(admin: Client, alice: Client, cell: Cell) -> None:
    admin.xml("POST", create_link(admin, cell), task_xml())
    alice_task = alice.xml("POST", f"/api/tasksList/{cell.org('acme').id}", task_xml())
    assert alice_task.find("v:User", NS).get("name") == "alice"
    listing = alice.xml("GET", f"/api/tasksList/{cell.org('acme').id}")
    assert len(listing.findall("v:Task", NS)) == 2


@pytest.mark.parametrize(
    ("status", "namespace"),
    [("done", "io.vcdext.hello"), ("running", "com.vmware.vcloud.mine"), ("running", "")],
)
def test_invalid_tasks_are_400(admin: Client, cell: Cell, status: str, namespace: str) -> None:
    r = admin.post(create_link(admin, cell), task_xml(status, namespace))
    assert r.status_code == 400


def test_unknown_task_is_404(admin: Client) -> None:
    assert admin.get("/api/task/00000000-0000-0000-0000-000000000000").status_code == 404


def event_xml(cell: Cell, **attrs: str) -> etree._Element:
    values = {"type": "greeting/sent", "serviceNamespace": "io.vcdext.hello", "success": "true"}
    values.update(attrs)
    el = E("Event", **values)
    el.append(E("Owner", href=f"{cell.url}/api/org/{cell.org('acme').id}", name="acme"))
    el.append(
        E("User", href=f"{cell.url}/api/admin/user/{cell.user('alice', 'acme').id}", name="alice")
    )
    props = E("EventProperties")
    props.append(E("EventProperty", name="greeting", value="Hello"))
    el.append(props)
    return el


def test_events_are_stored(admin: Client, cell: Cell) -> None:
    org = admin.xml("GET", f"/api/admin/org/{cell.org('acme').id}")
    href = link_href(org, "event:create", "application/vnd.vmware.vcloud.event+xml")
    r = admin.post(
        href, event_xml(cell), headers={"Content-Type": "application/vnd.vmware.admin.event+xml"}
    )
    assert r.status_code == 204
    (event,) = cell.events()
    assert event.type == "greeting/sent"
    assert event.success is True
    assert event.properties == (("greeting", "Hello"),)
    assert event.org_id == cell.org("acme").id
    assert event.posted_by == cell.user("administrator", "System").id
    debug = admin.get("/cell/events").json()
    assert debug[0]["properties"] == {"greeting": "Hello"}


@pytest.mark.parametrize(
    "attrs",
    [
        {"type": "com/vmware/vcloud/event/x"},
        {"serviceNamespace": "com.vmware.vcloud"},
        {"success": "maybe"},
    ],
)
def test_invalid_events_are_400(admin: Client, cell: Cell, attrs: dict[str, str]) -> None:
    r = admin.post(f"/api/admin/org/{cell.org('acme').id}/events", event_xml(cell, **attrs))
    assert r.status_code == 400


def test_event_needs_a_user(admin: Client, cell: Cell) -> None:
    body = event_xml(cell)
    body.remove(body.find("v:User", NS))
    assert admin.post(f"/api/admin/org/{cell.org('acme').id}/events", body).status_code == 400


def test_a_cancel_request_survives_an_update_read_before_it(cell: Cell) -> None:
    """``PUT /api/task/{id}`` reads the task, then stores the new state; a user's cancel in
    between (another request thread) must not be overwritten with the stale ``false``."""
    import dataclasses

    from vcdext_cell.model import Task

    state = cell.state
    task = state.add_task(Task("running", "io.example", id="t-1", org_id="o", operation_name="x"))
    stale = state.task(task.id)  # what the update read
    state.request_cancel(task.id)  # the user's cancel, meanwhile
    state.replace_task(dataclasses.replace(stale, progress=50))
    assert state.task(task.id).cancel_requested
    assert state.task(task.id).progress == 50
