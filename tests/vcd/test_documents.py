"""The recorded vCD documents (valid against VMware's schemas) and how vcdext reads them;
every body vcdext builds validates too."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from lxml import etree

from tests.vcd.conftest import SERVICE_CHILD_ORDER, make_service
from tests.vcd.fake_vcd import RECORDED, recorded
from vcdext.vcd import documents as d
from vcdext.vcd.model import compose_description, desired_service
from vcdext.vcloud import media
from vcdext.xml import parse

SID = "8d2f4e6a-3b1c-4f7d-9a5e-0c1b2d3e4f50"
SERVICE_HREF = f"https://vcd.example.com/api/admin/extension/service/{SID}"


@pytest.mark.parametrize("path", sorted(RECORDED.glob("*.xml")), ids=lambda p: p.name)
def test_recorded_document_is_valid(path: Path, assert_valid_vcd_xml):
    assert_valid_vcd_xml(path.read_bytes())


def test_service_document_is_read():
    root = parse(recorded("service.xml"))
    service = d.service_from_document(root)
    assert service.href == SERVICE_HREF and service.id == f"urn:vcloud:externalService:{SID}"
    assert (service.name, service.namespace, service.vendor) == (
        "hello",
        "io.vcdext.hello",
        "vcdext",
    )
    assert (service.enabled, service.authorization_enabled, service.priority) == (True, False, 50)
    assert (service.routing_key, service.exchange) == ("io.vcdext.hello", "vcdext")
    assert service.description == "Greets vCloud Director users (vcdext example plugin)"
    assert service.managed and service.bundle_digest is None
    links = d.doc_links(root)
    assert d.find_link(links, "rights") == f"{SERVICE_HREF}/rights"
    assert d.find_link(links, "add", media.API_FILTER) == f"{SERVICE_HREF}/apifilters"
    assert d.find_link(links, "add", media.SERVICE_LINK) == f"{SERVICE_HREF}/links"
    assert d.find_link(links, "bundle:upload") == f"{SERVICE_HREF}/localizationbundles"
    assert d.find_link(links, "down:apiFilters") == f"{SERVICE_HREF}/apifilters"


def test_records_are_read():
    (f,) = [d.filter_from_record(r) for r in d.records(parse(recorded("apifilters-records.xml")))]
    assert f is not None and f.url_pattern == "/api/hello"
    assert f.href.startswith("https://vcd.example.com/api/admin/extension/service/apifilter/")
    (link,) = [
        d.link_from_record(r) for r in d.records(parse(recorded("servicelinks-records.xml")))
    ]
    assert link is not None and link.spec.href == "{baseUri}org/{resourceId}/hello"
    assert link.href.startswith("https://vcd.example.com/api/admin/extension/service/link/")
    (definition,) = [
        d.api_definition_from_record(r)
        for r in d.records(parse(recorded("apidefinitions-records.xml")))
    ]
    assert definition is not None
    assert definition.spec.key == ("hello", "{baseUri}hello", "io.vcdext.hello", "vcdext")
    (service,) = d.records(parse(recorded("query-adminService.xml")))
    assert (service.get("namespace"), service.get("href")) == ("io.vcdext.hello", SERVICE_HREF)


def test_rights_are_read():
    ((name, href, ident),) = d.right_refs(parse(recorded("rightrefs.xml")))
    assert name == "{io.vcdext.hello}:View Org Greeting"
    right = d.right_from_document(parse(recorded("right.xml")))
    assert (right.name, right.description, right.category, right.bundle_key) == (
        name,
        "Read the greeting of an organization",
        "Hello",
        "RIGHT_VIEW_ORG_GREETING",
    )
    assert right.id == ident and right.href == href
    assert d.right_urn("https://vcd/api/admin/right/abc") == "urn:vcloud:right:abc"


def test_error_and_upload_socket_are_read():
    assert d.error_fields(parse(recorded("error-duplicate-service.xml"))) == (
        "BAD_REQUEST",
        "[ 7c0e2f4a-9b1d-4c3e-8f5a-6b7c8d9e0f1a ] A service with namespace io.vcdext.hello "
        "already exists.",
    )
    assert d.error_fields(parse(recorded("service.xml"))) is None
    assert d.upload_location(parse(recorded("bundle-upload-socket.xml"))).endswith("/file")


def test_every_body_vcdext_builds_is_valid(assert_valid_vcd_xml):
    want = desired_service(make_service(), exchange="vcdext")
    full = replace(want, links=(replace(want.links[0], resource_id="r1", external_id="e1"),))
    bodies = [
        d.service_element(
            full, description=compose_description("x", "0" * 16), operation_key="k", children=True
        ),
        d.service_element(replace(want, vendor="", description=""), description=""),
        d.api_filter_element("/api/demo/[^/]+"),
        d.service_link_element(full.links[0]),
        d.api_definition_element(want.api_definitions[0]),
        d.api_definition_element(replace(want.api_definitions[0], description="")),
        d.right_element(want.rights[0], namespace=want.namespace, name="View Demo"),
        d.right_element(
            replace(want.rights[0], description="", bundle_key=""),
            namespace=want.namespace,
            name="View Demo",
        ),
        d.bundle_upload_params(1234, want.namespace),
    ]
    for body in bodies:
        assert_valid_vcd_xml(etree.tostring(body))


def test_service_children_follow_the_schema_order():
    want = desired_service(make_service(), exchange="vcdext")
    body = d.service_element(want, description="text", operation_key="k", children=True)
    assert [child.tag.split("}")[1] for child in body] == SERVICE_CHILD_ORDER
    assert d.service_element(want, description="").find(f"{{{media.VMEXT_NS}}}ApiFilters") is None
