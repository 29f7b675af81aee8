"""The extension-service documents: vCD's recorded documents (valid against VMware's schemas)
read, every document kind written and checked against the schemas, and read back."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from tests.vcd.conftest import SERVICE_CHILD_ORDER
from tests.vcd.fake_vcd import RECORDED, recorded
from vcdext.errors import BadRequest
from vcdext.vcloud import extension as e
from vcdext.vcloud import media
from vcdext.vcloud.model import (
    ApiDefinition,
    ApiFilter,
    FileDescriptor,
    Held,
    Link,
    Right,
    Service,
    ServiceLink,
    right_urn,
)
from vcdext.xml import tostring

SID = "8d2f4e6a-3b1c-4f7d-9a5e-0c1b2d3e4f50"
SERVICE_HREF = f"https://vcd.example.com/api/admin/extension/service/{SID}"

SERVICE = Service(
    name="demo",
    namespace="io.example.demo",
    routing_key="io.example.demo",
    exchange="vcdext",
    enabled=True,
    priority=40,
    vendor="Example",
    description="A demo\n[managed by vcdext]",
)
LINK = ServiceLink(
    "down", "{baseUri}org/{resourceId}/demo", "text/plain", media.ORG, "r1", external_id="e1"
)
DEFINITION = ApiDefinition(
    "demo",
    "{baseUri}demo",
    "io.example.demo",
    "Example",
    description="The demo API",
    versions=("1.0",),
    files=(FileDescriptor("https://h/demo.yaml", "the spec", "text/yaml", "demo.yaml"),),
)
RIGHT = Right("{io.example.demo}:View Demo", "Demo", "See it", "RIGHT_VIEW", "io.example.demo")


def held(value, kind: str, mime: str):  # type: ignore[no-untyped-def]
    href = f"https://h/api/admin/extension/service/{kind}/1"
    links = (Link(media.REL_UP, "https://h/svc", media.SERVICE), Link(media.REL_REMOVE, href))
    return Held(value, href=href, id=f"urn:vcloud:{kind}:1", type=mime, links=links)


# -- vCD's documents ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.xml")), ids=lambda p: p.name)
def test_recorded_document_is_valid(path: Path, assert_valid_vcd_xml):
    assert_valid_vcd_xml(path.read_bytes())


def test_recorded_service_is_read():
    doc = e.read_service(recorded("service.xml"))
    service = doc.service
    assert doc.held.href == SERVICE_HREF and doc.held.id == f"urn:vcloud:externalService:{SID}"
    assert (service.name, service.namespace, service.vendor) == (
        "hello",
        "io.vcdext.hello",
        "vcdext",
    )
    assert (service.enabled, service.authorization_enabled, service.priority) == (True, False, 50)
    assert (service.routing_key, service.exchange) == ("io.vcdext.hello", "vcdext")
    assert service.description.startswith("Greets vCloud Director users")
    held_service = doc.held
    assert held_service.link("rights") == f"{SERVICE_HREF}/rights"
    assert held_service.link("add", media.API_FILTER) == f"{SERVICE_HREF}/apifilters"
    assert held_service.link("add", media.SERVICE_LINK) == f"{SERVICE_HREF}/links"
    assert held_service.link("bundle:upload") == f"{SERVICE_HREF}/localizationbundles"
    assert held_service.link("down:apiFilters") == f"{SERVICE_HREF}/apifilters"


def test_recorded_rights_are_read():
    (ref,) = e.read_right_refs(recorded("rightrefs.xml")).value
    assert ref.name == "{io.vcdext.hello}:View Org Greeting"
    right = e.read_right(recorded("right.xml"))
    assert right.value == Right(
        ref.name,
        "Hello",
        "Read the greeting of an organization",
        "RIGHT_VIEW_ORG_GREETING",
        right.value.service_namespace,
    )
    assert right.id == ref.id and right.href == ref.href
    assert right_urn("https://vcd/api/admin/right/abc") == "urn:vcloud:right:abc"


def test_recorded_parts_and_upload_socket_are_read():
    assert e.read_api_filter(recorded("apifilter.xml")).value.url_pattern == "/api/hello"
    link = e.read_service_link(recorded("servicelink.xml")).value
    assert link.href == "{baseUri}org/{resourceId}/hello"
    definition = e.read_api_definition(recorded("apidefinition.xml")).value
    assert definition.key == ("hello", "{baseUri}hello", "io.vcdext.hello", "vcdext")
    location = e.read_bundle_upload_socket(recorded("bundle-upload-socket.xml"))
    assert location.endswith("/file")
    extension = e.read_linked(recorded("vmwextension.xml"))
    assert extension.link(media.REL_DOWN, media.EXTENSION_SERVICES)


# -- every kind written, valid, and read back ----------------------------------------------------


def _written() -> list[etree._Element]:
    service = Held(
        SERVICE, href=SERVICE_HREF, id="urn:vcloud:externalService:1", type=media.SERVICE
    )
    return [
        # What the vCD client sends.
        e.write_service(SERVICE, operation_key="k", filters=[ApiFilter("/api/demo")], links=[LINK]),
        e.write_service(Service("bare", "io.example.bare")),
        e.write_api_filter(ApiFilter("/api/demo/[^/]+")),
        e.write_service_link(LINK),
        e.write_service_link(ServiceLink("down", "{baseUri}x", "text/plain", media.VDC)),
        e.write_api_definition(DEFINITION),
        e.write_api_definition(ApiDefinition("d", "{baseUri}d", "n", "v")),
        e.write_right(RIGHT),
        e.write_right(Right("View Demo", "Demo")),
        e.write_bundle_upload_params(1234, "io.example.demo"),
        # What vCD (and the local cell) answers.
        e.write_service(
            service,
            filters=[
                held(ApiFilter(response_content_type=media.VAPP), "apiFilter", media.API_FILTER)
            ],
            links=[held(LINK, "serviceLink", media.SERVICE_LINK)],
            definitions=[held(DEFINITION, "apiDefinition", media.API_DEFINITION)],
        ),
        e.write_service(service, filters=[], links=[], definitions=[]),
        e.write_api_filter(held(ApiFilter("/api/x"), "apiFilter", media.API_FILTER)),
        e.write_service_link(held(LINK, "serviceLink", media.SERVICE_LINK)),
        e.write_api_definition(held(DEFINITION, "apiDefinition", media.API_DEFINITION)),
        e.write_right(held(RIGHT, "right", media.RIGHT)),
        e.write_right_refs(
            Held(
                [held(RIGHT, "right", media.RIGHT)],
                href=f"{SERVICE_HREF}/rights",
                type=media.RIGHTS,
                links=(Link(media.REL_ADD, f"{SERVICE_HREF}/rights", media.RIGHT),),
            )
        ),
        e.write_right_refs(Held([], href=f"{SERVICE_HREF}/rights", type=media.RIGHTS)),
        e.write_bundle_upload_socket("https://h/transfer/1/file"),
        e.write_vmw_extension(
            Held(
                None,
                href="https://h/api/admin/extension",
                type=media.VMW_EXTENSION,
                links=(
                    Link(
                        media.REL_DOWN,
                        "https://h/api/admin/extension/service",
                        media.EXTENSION_SERVICES,
                    ),
                ),
            )
        ),
        e.write_extension_services(
            Held(
                None,
                href="https://h/s",
                type=media.EXTENSION_SERVICES,
                links=(Link(media.REL_DOWN, SERVICE_HREF, media.SERVICE, name="demo"),),
            )
        ),
    ]


@pytest.mark.parametrize("index", range(len(_written())))
def test_every_written_document_is_valid(index: int, assert_valid_vcd_xml):
    assert_valid_vcd_xml(tostring(_written()[index]))


def test_service_round_trips_with_its_parts():
    filters = [held(ApiFilter("/api/demo"), "apiFilter", media.API_FILTER)]
    links = [held(LINK, "serviceLink", media.SERVICE_LINK)]
    definitions = [held(DEFINITION, "apiDefinition", media.API_DEFINITION)]
    service = Held(SERVICE, href=SERVICE_HREF, id="urn:x", type=media.SERVICE)
    doc = e.read_service(
        tostring(e.write_service(service, filters=filters, links=links, definitions=definitions))
    )
    assert doc.held == service and doc.service == SERVICE
    assert doc.given == {
        "name",
        "namespace",
        "enabled",
        "authorization_enabled",
        "routing_key",
        "priority",
        "exchange",
        "vendor",
        "description",
    }
    assert [f.value for f in doc.filters] == [ApiFilter("/api/demo")]
    assert [x.value for x in doc.links] == [LINK]
    assert doc.links[0].value.external_id == "e1"
    assert [d.value for d in doc.definitions] == [DEFINITION]
    assert doc.definitions[0].value.files == DEFINITION.files
    assert doc.definitions[0].href == definitions[0].href


def test_parts_round_trip():
    assert e.read_right(tostring(e.write_right(RIGHT))).value == RIGHT
    assert e.read_service_link(tostring(e.write_service_link(LINK))).value == LINK
    ad = e.read_api_definition(tostring(e.write_api_definition(DEFINITION))).value
    assert (ad, ad.description, ad.versions, ad.files) == (
        DEFINITION,
        DEFINITION.description,
        DEFINITION.versions,
        DEFINITION.files,
    )
    params = tostring(e.write_bundle_upload_params(99, "io.example.demo"))
    assert e.read_bundle_upload_params(params) == (99, "io.example.demo")
    refs = e.read_right_refs(
        tostring(e.write_right_refs(Held([held(RIGHT, "right", media.RIGHT)])))
    ).value
    assert [(r.name, r.id) for r in refs] == [(RIGHT.name, "urn:vcloud:right:1")]


def test_service_children_follow_the_schema_order():
    body = e.write_service(SERVICE, operation_key="k", filters=[ApiFilter("/a")], links=[LINK])
    assert [child.tag.split("}")[1] for child in body] == SERVICE_CHILD_ORDER
    assert body.get("operationKey") == "k"
    update = e.write_service(SERVICE)
    assert update.find(f"{{{media.VMEXT_NS}}}ApiFilters") is None
    assert update.get("href") is None and update.find(f"{{{media.VCLOUD_NS}}}Link") is None


def test_a_service_read_knows_which_elements_it_had():
    doc = e.read_service(tostring(e.write_service(SERVICE)))
    doc.require("namespace", "routing_key", "exchange")
    empty = e.read_service(tostring(e.write_service(Service("s", "n"))))
    with pytest.raises(BadRequest, match="vmext:RoutingKey is required"):
        empty.require("routing_key")  # an empty element counts as missing
    el = e.write_service(SERVICE)
    el.remove(el.find(f"{{{media.VMEXT_NS}}}Exchange"))
    partial = e.read_service(tostring(el))
    with pytest.raises(BadRequest, match="vmext:Exchange is required in Service"):
        partial.require("exchange")
    assert (
        "exchange" not in partial.changes() and partial.changes()["namespace"] == SERVICE.namespace
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "A vmext:Service document is required"),
        (b'<Service xmlns="http://www.vmware.com/vcloud/v1.5" name="x"/>', "Expected a vmext"),
        (
            b'<Service xmlns="http://www.vmware.com/vcloud/extension/v1.5"><Namespace>n'
            b"</Namespace></Service>",
            "name attribute of Service is required",
        ),
        (
            b'<Service xmlns="http://www.vmware.com/vcloud/extension/v1.5" name="s">'
            b"<Enabled>yes</Enabled></Service>",
            "Enabled must be true or false",
        ),
        (
            b'<Service xmlns="http://www.vmware.com/vcloud/extension/v1.5" name="s">'
            b"<Priority>101</Priority></Service>",
            "Priority must be between 0 and 100",
        ),
    ],
)
def test_malformed_services_are_refused_with_the_reason(body: bytes, message: str):
    with pytest.raises(BadRequest, match=message):
        e.read_service(body)


def test_malformed_parts_are_refused():
    both = e.write_api_filter(ApiFilter("/a", media.VAPP))
    with pytest.raises(BadRequest, match="exactly one of UrlPattern"):
        e.read_api_filter(tostring(both))
    incomplete = e.write_service_link(LINK)
    incomplete.remove(incomplete.find(f"{{{media.VMEXT_NS}}}Rel"))
    with pytest.raises(BadRequest, match="vmext:Rel is required"):
        e.read_service_link(tostring(incomplete))
    with pytest.raises(BadRequest, match="fileSize must be between"):
        e.read_bundle_upload_params(tostring(e.write_bundle_upload_params(0, "n")))
