"""The vCD client's task and event calls against the local cell over HTTP: the task list and
the events are found through the AdminOrg's links (read once per org), and the documents are
the vcloud vocabulary's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vcdext.vcd import VcdApiError, VcdClient
from vcdext.vcloud.model import Event, Reference, Task
from vcdext_cell import Cell


@pytest.fixture
def cell() -> Iterator[Cell]:
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0) as c:
        yield c


@pytest.fixture
def client(cell: Cell) -> Iterator[VcdClient]:
    with VcdClient(cell.url, username="administrator", password="vmware", retries=0) as c:
        yield c


def test_create_update_read_a_task_and_post_an_event(cell, client, assert_valid_vcd_xml):
    acme = cell.org("acme").id
    alice = cell.user("alice", "acme").id
    user = Reference(f"{cell.url}/api/admin/user/{alice}", id=f"urn:vcloud:user:{alice}")
    created = client.create_task(
        acme, Task("queued", "io.example.jobs", operation_name="runJob", user=user, progress=0)
    )
    assert created.href.startswith(f"{cell.url}/api/task/")
    assert created.value.organization is not None and created.value.organization.name == "acme"
    updated = client.update_task(
        created.href, Task("running", "io.example.jobs", operation_name="runJob", progress=40)
    )
    assert (updated.value.status, updated.value.progress) == ("running", 40)
    assert client.post(created.href + "/action/cancel", _empty(), "application/xml") is None
    assert client.get_task(created.href).value.cancel_requested is True

    client.post_event(acme, Event("jobDone", "io.example.jobs", success=True, user=user))
    (event,) = cell.events()
    assert (event.type, event.org_id) == ("jobDone", acme)
    assert_valid_vcd_xml(event.xml)
    assert created.value.user is not None and created.value.user.id == f"urn:vcloud:user:{alice}"


def test_the_org_links_are_read_once(cell, client):
    acme = cell.org("acme").id
    client.create_task(acme, Task("queued", "io.example.jobs"))
    calls: list[str] = []
    original = client._call

    def counting(method: str, url: str, **kwargs):
        calls.append(f"{method} {url}")
        return original(method, url, **kwargs)

    client._call = counting  # type: ignore[method-assign]
    client.create_task(acme, Task("queued", "io.example.jobs"))
    client.post_event(
        acme, Event("x", "io.example.jobs", user=Reference(f"{cell.url}/api/admin/user/u"))
    )
    assert [c.split(" ", 1)[0] for c in calls] == ["POST", "POST"]


def test_an_unknown_org_is_a_vcd_error(client):
    with pytest.raises(VcdApiError) as caught:
        client.create_task("00000000-0000-4000-8000-000000000000", Task("queued", "io.example.x"))
    assert caught.value.status == 404


def _empty():
    from lxml import etree

    return etree.Element("empty")
