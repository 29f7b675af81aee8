"""Session, the query service's documents, Task/TasksList and Event: vCD's recorded documents
read, every kind written and checked against VMware's schemas, and read back."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.vcd.fake_vcd import recorded
from vcdext.errors import BadRequest
from vcdext.vcloud import media
from vcdext.vcloud import query as q
from vcdext.vcloud.model import (
    ApiDefinition,
    ApiFilter,
    Event,
    Held,
    Link,
    Reference,
    Right,
    Service,
    ServiceLink,
    Task,
    TaskError,
)
from vcdext.vcloud.session import Login, read_session, write_session
from vcdext.vcloud.task import (
    read_event,
    read_task,
    read_tasks_list,
    write_event,
    write_task,
    write_tasks_list,
)
from vcdext.xml import parse, tostring

H = "https://h/api"
SERVICE_HREF = f"{H}/admin/extension/service/1"
ORG = Reference(f"{H}/org/1", media.ORG, "acme", "urn:vcloud:org:1")
USER = Reference(f"{H}/admin/user/2", media.USER, "alice", "urn:vcloud:user:2")


# -- Session -----------------------------------------------------------------------------------


def test_recorded_session_is_read():
    session = read_session(recorded("session.xml"))
    assert (session.value.user, session.value.org) == ("administrator", "System")
    assert session.value.roles == "System Administrator"
    assert session.link(media.REL_DOWN, media.VMW_EXTENSION) == (
        "https://vcd.example.com/api/admin/extension"
    )
    assert session.link(media.REL_REMOVE) == "https://vcd.example.com/api/session"


def test_session_is_valid_and_round_trips(assert_valid_vcd_xml):
    held = Held(
        Login("alice", "acme", "urn:vcloud:user:2", "Organization User"),
        href=f"{H}/session/",
        type=media.SESSION,
        links=(Link(media.REL_DOWN, f"{H}/org/", media.ORG_LIST),),
    )
    doc = tostring(write_session(held))
    assert_valid_vcd_xml(doc)
    assert read_session(doc) == held
    with pytest.raises(BadRequest, match="Expected a vcloud:Session"):
        read_session(recorded("right.xml"))


# -- the query service -----------------------------------------------------------------------------


def test_recorded_records_are_read():
    (f,) = q.read_records(parse(recorded("apifilters-records.xml")))
    held_filter = q.read_api_filter_record(f)
    assert held_filter is not None and held_filter.value == ApiFilter("/api/hello")
    assert held_filter.href.startswith("https://vcd.example.com/api/admin/extension/service/")
    (x,) = q.read_records(parse(recorded("servicelinks-records.xml")))
    link = q.read_service_link_record(x)
    assert link is not None and link.value.href == "{baseUri}org/{resourceId}/hello"
    (d,) = q.read_records(parse(recorded("apidefinitions-records.xml")))
    definition = q.read_api_definition_record(d)
    assert definition is not None
    assert definition.value.key == ("hello", "{baseUri}hello", "io.vcdext.hello", "vcdext")
    (s,) = q.read_records(parse(recorded("query-adminService.xml")))
    service = q.read_service_record(s)
    assert service is not None and service.value.namespace == "io.vcdext.hello"
    assert service.href == SERVICE_HREF.replace("https://h", "https://vcd.example.com").replace(
        "/1", "/8d2f4e6a-3b1c-4f7d-9a5e-0c1b2d3e4f50"
    )


def test_a_records_remove_link_wins_over_its_href():
    record = etree.fromstring(
        f'<ApiFilterRecord xmlns="{media.VCLOUD_NS}" href="{H}/a" urlPattern="/x">'
        f'<Link rel="remove" href="{H}/b"/></ApiFilterRecord>'
    )
    held = q.read_api_filter_record(record)
    assert held is not None and held.href == f"{H}/b"
    assert q.read_api_filter_record(etree.fromstring(f'<R xmlns="{media.VCLOUD_NS}"/>')) is None


SERVICE = Held(
    Service("demo", "io.example.demo", "rk", "ex", enabled=True, vendor="Example"),
    SERVICE_HREF,
    "urn:vcloud:externalService:1",
)
ROWS = {
    "adminService": [q.service_record(SERVICE)],
    "apiFilter": [
        q.api_filter_record(Held(ApiFilter("/api/demo"), f"{H}/f/1", "urn:f:1"), SERVICE_HREF),
        q.api_filter_record(
            Held(ApiFilter(response_content_type=media.VAPP), f"{H}/f/2", "urn:f:2"), SERVICE_HREF
        ),
    ],
    "serviceLink": [
        q.service_link_record(
            Held(ServiceLink("down", "{baseUri}x", "text/plain", media.ORG, "r"), f"{H}/l", "l"),
            SERVICE_HREF,
        )
    ],
    "adminApiDefinition": [
        q.api_definition_record(
            Held(ApiDefinition("demo", "{baseUri}demo", "io.example.demo", "Ex"), f"{H}/d", "d"),
            SERVICE_HREF,
            SERVICE.value,
        )
    ],
    "right": [q.right_record(Held(Right("{n}:View", "Demo"), f"{H}/admin/right/1", "urn:r:1"))],
}


@pytest.mark.parametrize("fmt", sorted(q.FORMATS))
@pytest.mark.parametrize("kind", sorted(q.RECORD_KINDS))
def test_query_results_are_valid(kind: str, fmt: str, assert_valid_vcd_xml):
    links = (Link(media.REL_NEXT_PAGE, f"{H}/query?page=2", q.FORMATS[fmt]),)
    page = q.Page(f"{H}/query?type={kind}", fmt, 1, 25, 30, links)
    doc = q.write_query_result(q.RECORD_KINDS[kind], page, ROWS[kind])
    assert_valid_vcd_xml(tostring(doc))
    assert len(list(q.read_records(doc))) == len(ROWS[kind])


def test_records_round_trip():
    def back(kind: str):  # type: ignore[no-untyped-def]
        page = q.Page(f"{H}/query", "records", 1, 25, 1)
        doc = parse(tostring(q.write_query_result(q.RECORD_KINDS[kind], page, ROWS[kind])))
        return list(q.read_records(doc))

    service = q.read_service_record(back("adminService")[0])
    assert service is not None and service.value == SERVICE.value and service.href == SERVICE_HREF
    pattern, content_type = (q.read_api_filter_record(r) for r in back("apiFilter"))
    assert pattern is not None and pattern.value == ApiFilter("/api/demo")
    assert content_type is not None and content_type.value == ApiFilter(None, media.VAPP)
    link = q.read_service_link_record(back("serviceLink")[0])
    assert link is not None and link.value.resource_id == "r"
    definition = q.read_api_definition_record(back("adminApiDefinition")[0])
    assert definition is not None and definition.value.api_vendor == "Ex"
    right = q.read_right_record(back("right")[0])
    assert right is not None and right.value == Right("{n}:View", "Demo")


def test_query_list_is_valid(assert_valid_vcd_xml):
    links = [Link(media.REL_DOWN, f"{H}/query?type=right", media.RECORDS, "right")]
    assert_valid_vcd_xml(tostring(q.write_query_list(f"{H}/query", links)))


# -- Task, TasksList and Event -------------------------------------------------------------------

TASK = Task(
    status="error",
    service_namespace="io.example.demo",
    name="backup",
    operation="Backing up",
    operation_name="backup",
    description="A backup",
    start_time="2026-01-01T00:00:00.000Z",
    end_time="2026-01-01T00:01:00.000Z",
    expiry_time="2026-02-01T00:00:00.000Z",
    owner=Reference(f"{H}/vApp/vapp-1", media.VAPP, "web"),
    error=TaskError("disk full", 500, "INTERNAL_SERVER_ERROR", "at line 1"),
    user=USER,
    organization=ORG,
    progress=40,
    params=f'<Params xmlns="{media.VCLOUD_NS}"><x xmlns="urn:x">1</x></Params>'.encode(),
    details="stopped",
)


def test_tasks_are_valid_and_round_trip(assert_valid_vcd_xml):
    held = Held(
        TASK,
        href=f"{H}/task/1",
        id="urn:vcloud:task:1",
        type=media.TASK,
        links=(Link(media.REL_EDIT, f"{H}/task/1", media.TASK),),
    )
    doc = tostring(write_task(held))
    assert_valid_vcd_xml(doc)
    back = read_task(doc)
    assert back.value == TASK and back.href == held.href and back.links == held.links
    bare = Task("running", "io.example.demo")
    assert_valid_vcd_xml(tostring(write_task(Held(bare))))
    listing = write_tasks_list(Held([held, Held(bare)], href=f"{H}/tasksList/1"))
    assert_valid_vcd_xml(tostring(listing))
    assert [t.value.status for t in read_tasks_list(tostring(listing))] == ["error", "running"]


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ('status="done" serviceNamespace="n"', "status must be one of"),
        ('status="running" serviceNamespace="com.vmware.vcloud.x"', "must not start with"),
        ('status="running"', "serviceNamespace must have 1 to 128"),
        ('status="running" serviceNamespace="n" endTime="soon"', "endTime must be an xs:dateTime"),
    ],
)
def test_malformed_tasks_are_refused(attributes: str, message: str):
    with pytest.raises(BadRequest, match=message):
        read_task(f'<Task xmlns="{media.VCLOUD_NS}" {attributes}/>')


EVENT = Event(
    type="backup/done",
    service_namespace="io.example.demo",
    success=True,
    type_full="Backup finished",
    owner=ORG,
    user=USER,
    properties=(("size", "10"), ("where", "s3")),
)


def test_events_are_valid_and_round_trip(assert_valid_vcd_xml):
    doc = tostring(write_event(EVENT))
    assert_valid_vcd_xml(doc)
    assert read_event(doc) == EVENT


def test_malformed_events_are_refused():
    no_user = write_event(Event("t", "n", user=None))
    with pytest.raises(BadRequest, match="needs a User"):
        read_event(tostring(no_user))
    with pytest.raises(BadRequest, match="success must be true or false"):
        read_event(tostring(write_event(EVENT)).replace(b'success="true"', b'success="maybe"'))
    with pytest.raises(BadRequest, match="type must not start with com/vmware/vcloud"):
        read_event(tostring(write_event(Event("com/vmware/vcloud/x", "n", user=USER))))
