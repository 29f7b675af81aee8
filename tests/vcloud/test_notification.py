"""Notifications and blocking-task documents: the guide's example read, every kind written and
checked against VMware's schemas, and read back; routing keys and bindings."""

from __future__ import annotations

import json
import re

import pytest

from vcdext.errors import BadRequest
from vcdext.vcloud import notification as n
from vcdext.vcloud.model import Link, Reference
from vcdext.xml import tostring

# The guide's example ("Notification Message Format"), ids shortened as there.
GUIDE_XML = b"""<vmext:Notification xmlns:vmext="http://www.vmware.com/vcloud/extension/v1.5"
    type="com/vmware/vcloud/event/blockingtask/create"
    eventId="a1440dd8-60ae-46c7-b216-44693bc00c90">
  <vmext:Link rel="entityResolver" href="https://vcloud.example.com/api/entity/" />
  <vmext:EntityLink rel="entity" type="vcloud:blockingTask" name="vdcComposeVapp"
      id="urn:vcloud:blockingTask:25" />
  <vmext:EntityLink rel="down" type="vcloud:user" name="vcloud" id="urn:vcloud:user:44" />
  <vmext:EntityLink rel="up" type="vcloud:org" name="Default" id="urn:vcloud:org:70" />
  <vmext:EntityLink rel="task" type="vcloud:task" name="vdcComposeVapp" id="urn:vcloud:task:34"/>
  <vmext:EntityLink rel="task:owner" type="vcloud:vapp" id="urn:vcloud:vapp:26" />
  <vmext:Timestamp>2011-06-18T14:33:27.787+03:00</vmext:Timestamp>
  <vmext:OperationSuccess>true</vmext:OperationSuccess>
</vmext:Notification>"""

GUIDE_JSON = {
    "eventId": "a1440dd8-60ae-46c7-b216-44693bc00c90",
    "type": "com/vmware/vcloud/event/blockingtask/create",
    "timestamp": "2011-06-18T14:33:27.787+03:00",
    "operationSuccess": True,
    "user": "urn:vcloud:user:44",
    "org": "urn:vcloud:org:70",
    "entity": "urn:vcloud:blockingTask:25",
    "task": "urn:vcloud:task:34",
    "taskOwner": "urn:vcloud:vapp:26",
}


def test_the_guides_xml_notification_reads_and_validates(assert_valid_vcd_xml) -> None:
    assert_valid_vcd_xml(GUIDE_XML)
    got = n.read_notification(GUIDE_XML)
    assert got.type == n.BLOCKING_TASK_CREATE and got.success and got.format == "xml"
    assert got.entity is not None and got.entity.uuid == "25"
    assert got.org is not None and (got.org.name, got.org.uuid) == ("Default", "70")
    assert got.user is not None and got.user.uuid == "44"
    assert got.task_owner is not None and got.task_owner.id == "urn:vcloud:vapp:26"
    assert got.entity_resolver == "https://vcloud.example.com/api/entity/"
    assert got.raw == GUIDE_XML
    # The entity is a blocking task: its name ends the routing key.
    assert n.routing_key(got) == (
        "true.25.70.44.com.vmware.vcloud.event.blockingtask.create.vdcComposeVapp"
    )


def test_the_guides_json_notification_reads_the_same() -> None:
    xml = n.read_notification(GUIDE_XML)
    got = n.read_notification(json.dumps(GUIDE_JSON).encode())
    assert got.format == "json"
    assert (got.type, got.event_id, got.success, got.timestamp) == (
        xml.type,
        xml.event_id,
        xml.success,
        xml.timestamp,
    )
    for rel in ("entity", "up", "down", "task", "task:owner"):
        assert got._rel(rel).id == xml._rel(rel).id  # type: ignore[union-attr]
    assert n.notification_json(xml) == GUIDE_JSON


def test_a_written_notification_validates_and_reads_back(assert_valid_vcd_xml) -> None:
    written = n.Notification(
        type="com/vmware/vcloud/event/vapp/create",
        event_id="e1",
        success=False,
        timestamp="2026-01-02T03:04:05Z",
        entity_links=(
            n.EntityLink("entity", "urn:vcloud:vapp:aa-1", "vcloud:vapp", "web"),
            n.EntityLink("up", "urn:vcloud:org:bb-2", "vcloud:org", "acme"),
            n.EntityLink("down", "urn:vcloud:user:cc-3", "vcloud:user", "alice"),
        ),
        links=(Link("entityResolver", "https://h/api/entity/"),),
    )
    body = tostring(n.write_notification(written))
    assert_valid_vcd_xml(body)
    back = n.read_notification(body)
    assert back.entity_links == written.entity_links and back.links[0].href.endswith("/entity/")
    key = n.routing_key(back)
    assert key == "false.aa-1.bb-2.cc-3.com.vmware.vcloud.event.vapp.create"
    assert n.notification_headers(back) == {
        "notification.type": "com/vmware/vcloud/event/vapp/create",
        "notification.entityType": "vapp",
        "notification.entityUUID": "aa-1",
        "notification.orgUUID": "bb-2",
        "notification.userUUID": "cc-3",
        "notification.operationSuccess": "false",
    }


def _topic_matches(binding: str, key: str) -> bool:
    pattern = re.escape(binding).replace(r"\*", r"[^.]+").replace(r"\.\#", r"(\.[^.]+)*")
    return re.fullmatch(pattern, key) is not None


def test_binding_keys_match_what_the_routing_keys_say() -> None:
    vapp_create = "true.aa.bb.cc.com.vmware.vcloud.event.vapp.create"
    assert _topic_matches(n.binding_key("com/vmware/vcloud/event/vapp/create"), vapp_create)
    ok_only = n.binding_key("com/vmware/vcloud/event/vapp/create", success=True)
    assert _topic_matches(ok_only, vapp_create)
    assert not _topic_matches(ok_only, "false" + vapp_create[4:])
    assert not _topic_matches(ok_only, "true.aa.bb.cc.com.vmware.vcloud.event.vapp.delete")
    deploy = n.binding_key(n.BLOCKING_TASK_CREATE, task_name="vappDeploy")
    assert _topic_matches(
        deploy, "true.1.2.3.com.vmware.vcloud.event.blockingtask.create.vappDeploy"
    )
    assert not _topic_matches(
        deploy, "true.1.2.3.com.vmware.vcloud.event.blockingtask.create.vappUndeploy"
    )


@pytest.mark.parametrize("bad", ["vapp/create", "com/vmware/vcloud/event/vapp", "com/x.y/a/b/c/d"])
def test_a_type_that_is_not_a_notification_type_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="notification type"):
        n.binding_key(bad)


def test_malformed_notifications_are_bad_requests() -> None:
    with pytest.raises(BadRequest):
        n.read_notification(b'{"type": "x"}')
    with pytest.raises(BadRequest):
        n.read_notification(
            GUIDE_XML.replace(b"<vmext:OperationSuccess>true", b"<vmext:OperationSuccess>maybe")
        )


ORG = Reference(
    "https://h/api/org/70", "application/vnd.vmware.vcloud.org+xml", "acme", "urn:vcloud:org:70"
)
USER = Reference("https://h/api/admin/user/44", "application/vnd.vmware.admin.user+xml", "alice")
VAPP = Reference("https://h/api/vApp/vapp-26", "application/vnd.vmware.vcloud.vApp+xml", "web")


def test_blocking_task_documents_validate_and_read_back(assert_valid_vcd_xml) -> None:
    href = "https://h/api/admin/extension/blockingTask/25"
    task = n.BlockingTask(
        name="vappDeploy",
        status="active",
        created_time="2026-01-02T03:04:05Z",
        timeout_date="2026-01-02T03:05:05Z",
        timeout_action="abort",
        organization=ORG,
        user=USER,
        task_owner=VAPP,
        href=href,
        id="urn:vcloud:blockingTask:25",
        links=tuple(
            Link(a, f"{href}/action/{a}", n.BLOCKING_TASK_OPERATION_PARAMS)
            for a in ("resume", "abort", "fail", "updateProgress")
        ),
    )
    body = tostring(n.write_blocking_task(task))
    assert_valid_vcd_xml(body)
    assert n.read_blocking_task(body) == task
    assert task.action_href("fail") == f"{href}/action/fail"

    params = tostring(n.write_operation_params("no cost centre"))
    assert_valid_vcd_xml(params)
    assert n.read_operation_params(params) == n.OperationParams("no cost centre")
    progress = tostring(n.write_operation_params("still checking", timeout_ms=60000))
    assert_valid_vcd_xml(progress)
    assert n.read_operation_params(progress) == n.OperationParams("still checking", 60000)

    refs = tostring(
        n.write_blocking_task_references([Reference(href, n.BLOCKING_TASK, "vappDeploy")])
    )
    assert_valid_vcd_xml(refs)


def test_settings_documents_validate_and_read_back(assert_valid_vcd_xml) -> None:
    settings = n.BlockingTaskSettings("fail", ("vappDeploy", "vdcComposeVapp"), 30000)
    body = tostring(n.write_blocking_task_settings(settings))
    assert_valid_vcd_xml(body)
    assert n.read_blocking_task_settings(body) == settings
    ops = tostring(n.write_blocking_operations(["vappDeploy"]))
    assert_valid_vcd_xml(ops)
    assert n.read_blocking_operations(ops) == ("vappDeploy",)
    on = tostring(n.write_notifications_settings(True))
    assert_valid_vcd_xml(on)
    assert n.read_notifications_settings(on) is True


def test_metadata_documents_validate_and_read_back(assert_valid_vcd_xml) -> None:
    from vcdext.vcloud import metadata as m

    doc = tostring(m.write_metadata({"cost-centre": "42", "owner": "alice"}))
    assert_valid_vcd_xml(doc)
    assert m.read_metadata(doc) == {"cost-centre": "42", "owner": "alice"}
    value = tostring(m.write_metadata_value("42"))
    assert_valid_vcd_xml(value)
    assert m.read_metadata_value(value) == "42"
