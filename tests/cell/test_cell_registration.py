"""Extension registration: services, API filters, service links, rights, API definitions."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.cell.support import (
    NS,
    SERVICE_TYPE,
    Client,
    E,
    X,
    filter_xml,
    link_href,
    link_xml,
    right_xml,
    service_xml,
)
from vcdext_cell import Cell

SERVICES = "/api/admin/extension/service"


def register(
    admin: Client, name: str = "hello", namespace: str = "io.vcdext.hello", **kw
) -> etree._Element:
    return admin.xml("POST", SERVICES, service_xml(name, namespace, **kw), status=201)


def test_extension_root_links_to_the_services(admin: Client) -> None:
    ext = admin.xml("GET", "/api/admin/extension")
    href = link_href(ext, "down", "application/vnd.vmware.admin.extensionServices+xml")
    services = admin.xml("GET", href)
    assert link_href(services, "add", SERVICE_TYPE).endswith(SERVICES)


def test_register_service_answers_201_with_id_and_links(admin: Client, cell: Cell) -> None:
    r = admin.post(SERVICES, service_xml("hello", "io.vcdext.hello", patterns=["/api/hello"]))
    assert r.status_code == 201
    assert r.headers["Content-Type"] == f"{SERVICE_TYPE};version=36.0"
    doc = etree.fromstring(r.content)
    service_id = doc.get("id")
    assert service_id.startswith("urn:vcloud:externalService:")
    uuid = service_id.rsplit(":", 1)[1]
    assert doc.get("href") == f"{cell.url}{SERVICES}/{uuid}"
    assert r.headers["Location"] == doc.get("href")
    rels = {(x.get("rel"), x.get("type")) for x in doc.findall("v:Link", NS)}
    for expected in [
        ("remove", None),
        ("edit", SERVICE_TYPE),
        ("rights", "application/vnd.vmware.admin.rights+xml"),
        ("down:serviceLinks", "application/vnd.vmware.vcloud.query.records+xml"),
        ("down:apiFilters", "application/vnd.vmware.vcloud.query.records+xml"),
        ("bundle:upload", "application/vnd.vmware.admin.bundleUploadParams+xml"),
        ("add", "application/vnd.vmware.admin.apiFilter+xml"),
        ("add", "application/vnd.vmware.admin.serviceLink+xml"),
        ("add", "application/vnd.vmware.admin.apiDefinition+xml"),
    ]:
        assert expected in rels
    assert doc.findtext("x:Namespace", namespaces=NS) == "io.vcdext.hello"
    assert doc.findtext("x:Enabled", namespaces=NS) == "true"
    patterns = [p.text for p in doc.findall("x:ApiFilters/x:ApiFilter/x:UrlPattern", NS)]
    assert patterns == ["/api/hello"]
    assert cell.service("io.vcdext.hello").enabled


def test_service_is_listed_and_readable(admin: Client) -> None:
    created = register(admin)
    services = admin.xml("GET", SERVICES)
    href = link_href(services, "down", SERVICE_TYPE)
    assert href == created.get("href")
    again = admin.xml("GET", href)
    assert again.get("name") == "hello"


def test_enabled_defaults_to_false(admin: Client) -> None:
    doc = register(admin, enabled=None)
    assert doc.findtext("x:Enabled", namespaces=NS) == "false"


def test_put_updates_and_keeps_what_is_left_out(admin: Client) -> None:
    doc = register(admin, priority=60, description="Greets")
    update = X("Service", name="hello-renamed")
    update.append(X("Namespace", "io.vcdext.hello"))
    update.append(X("Enabled", "false"))
    update.append(X("RoutingKey", "rk2"))
    update.append(X("Exchange", "other"))
    updated = admin.xml("PUT", doc.get("href"), update)
    assert updated.get("name") == "hello-renamed"
    assert updated.findtext("x:Enabled", namespaces=NS) == "false"
    assert updated.findtext("x:RoutingKey", namespaces=NS) == "rk2"
    assert updated.findtext("x:Exchange", namespaces=NS) == "other"
    assert updated.findtext("x:Priority", namespaces=NS) == "60"
    assert updated.findtext("v:Description", namespaces=NS) == "Greets"


def test_namespace_cannot_change(admin: Client) -> None:
    doc = register(admin)
    r = admin.put(doc.get("href"), service_xml("hello", "io.vcdext.other"))
    assert r.status_code == 400
    assert "namespace" in etree.fromstring(r.content).get("message")


def test_duplicate_namespace_is_400(admin: Client) -> None:
    register(admin)
    r = admin.post(SERVICES, service_xml("again", "io.vcdext.hello"))
    assert r.status_code == 400
    assert etree.fromstring(r.content).get("minorErrorCode") == "DUPLICATE_NAME"


@pytest.mark.parametrize("missing", ["Namespace", "RoutingKey", "Exchange"])
def test_required_elements_are_checked(admin: Client, missing: str) -> None:
    doc = service_xml("hello", "io.vcdext.hello")
    doc.remove(doc.find(f"x:{missing}", NS))
    r = admin.post(SERVICES, doc)
    assert r.status_code == 400
    assert missing in etree.fromstring(r.content).get("message")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<not-xml",
        b'<Service xmlns="http://www.vmware.com/vcloud/v1.5" name="x"/>',
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    ],
)
def test_malformed_bodies_are_400(admin: Client, body: bytes) -> None:
    r = admin.post(SERVICES, body, headers={"Content-Type": SERVICE_TYPE})
    assert r.status_code == 400
    assert etree.fromstring(r.content).get("minorErrorCode") == "BAD_REQUEST"


def test_non_xml_content_type_is_415(admin: Client) -> None:
    body = etree.tostring(service_xml("hello", "io.vcdext.hello"))
    r = admin.post(SERVICES, body, headers={"Content-Type": "application/json"})
    assert r.status_code == 415


def test_bad_priority_and_pattern_are_400(admin: Client) -> None:
    assert admin.post(SERVICES, service_xml("a", "a.b", priority=101)).status_code == 400
    assert admin.post(SERVICES, service_xml("a", "a.b", patterns=["(unclosed"])).status_code == 400


def test_only_sysadmins_may_register(alice: Client) -> None:
    assert alice.get("/api/admin/extension").status_code == 403
    assert alice.post(SERVICES, service_xml("x", "x.y")).status_code == 403


def test_delete_of_an_enabled_service_is_allowed(admin: Client, cell: Cell) -> None:
    doc = register(admin, patterns=["/api/hello"])
    assert admin.delete(doc.get("href")).status_code == 204
    assert admin.get(doc.get("href")).status_code == 404
    assert cell.services() == []


def test_api_filters_add_list_read_remove(admin: Client) -> None:
    service = register(admin, patterns=["/api/hello"])
    add = link_href(service, "add", "application/vnd.vmware.admin.apiFilter+xml")
    created = admin.xml("POST", add, filter_xml("/api/hello/.*"), status=201)
    assert created.get("id").startswith("urn:vcloud:apiFilter:")
    assert created.findtext("x:UrlPattern", namespaces=NS) == "/api/hello/.*"
    records = admin.xml("GET", link_href(service, "down:apiFilters"))
    patterns = sorted(r.get("urlPattern") for r in records.findall("v:ApiFilterRecord", NS))
    assert patterns == ["/api/hello", "/api/hello/.*"]
    assert {r.get("service") for r in records.findall("v:ApiFilterRecord", NS)} == {
        service.get("href")
    }
    # pyvcloud removes a filter by reading it and following rel="remove" (no type).
    read = admin.xml("GET", created.get("href"))
    assert admin.delete(link_href(read, "remove")).status_code == 204
    records = admin.xml("GET", link_href(service, "down:apiFilters"))
    assert [r.get("urlPattern") for r in records.findall("v:ApiFilterRecord", NS)] == ["/api/hello"]
    assert admin.delete(created.get("href")).status_code == 404


def test_api_filter_needs_exactly_one_of_pattern_and_content_type(admin: Client) -> None:
    service = register(admin)
    add = link_href(service, "add", "application/vnd.vmware.admin.apiFilter+xml")
    both = filter_xml("/api/x")
    both.append(X("ResponseContentType", "application/json"))
    assert admin.post(add, both).status_code == 400
    assert admin.post(add, X("ApiFilter")).status_code == 400
    response_filter = X("ApiFilter")
    response_filter.append(X("ResponseContentType", "application/vnd.vmware.vcloud.vApp+xml"))
    created = admin.xml("POST", add, response_filter, status=201)
    assert created.findtext("x:ResponseContentType", namespaces=NS)


def test_service_links_inline_and_added_and_removed(admin: Client) -> None:
    org_type = "application/vnd.vmware.vcloud.org+xml"
    inline = link_xml("down", "{baseUri}org/{resourceId}/hello", "text/plain", org_type)
    service = register(admin, links=[inline])
    add = link_href(service, "add", "application/vnd.vmware.admin.serviceLink+xml")
    added = admin.xml(
        "POST", add, link_xml("alternate", "{baseUri}x", "text/plain", org_type), status=200
    )
    assert added.get("id").startswith("urn:vcloud:serviceLink:")
    records = admin.xml("GET", link_href(service, "down:serviceLinks"))
    found = {
        (r.get("rel"), r.get("linkHref"), r.get("resourceType"))
        for r in records.findall("v:ServiceLinkRecord", NS)
    }
    assert found == {
        ("down", "{baseUri}org/{resourceId}/hello", org_type),
        ("alternate", "{baseUri}x", org_type),
    }
    assert admin.delete(added.get("href")).status_code == 204
    records = admin.xml("GET", link_href(service, "down:serviceLinks"))
    assert len(records.findall("v:ServiceLinkRecord", NS)) == 1


def test_service_link_fields_are_required(admin: Client) -> None:
    service = register(admin)
    add = link_href(service, "add", "application/vnd.vmware.admin.serviceLink+xml")
    incomplete = X("ServiceLink")
    incomplete.append(X("LinkHref", "{baseUri}x"))
    assert admin.post(add, incomplete).status_code == 400


def test_rights_are_namespaced_with_urns(admin: Client, cell: Cell) -> None:
    service = register(admin)
    rights_href = link_href(service, "rights", "application/vnd.vmware.admin.rights+xml")
    refs = admin.xml("GET", rights_href)
    add = link_href(refs, "add", "application/vnd.vmware.admin.right+xml")
    right = admin.xml("POST", add, right_xml("Do Things", bundle_key="DO_THINGS"), status=201)
    assert right.get("name") == "{io.vcdext.hello}:Do Things"
    assert right.get("id").startswith("urn:vcloud:right:")
    assert right.findtext("v:ServiceNamespace", namespaces=NS) == "io.vcdext.hello"
    refs = admin.xml("GET", rights_href)
    assert [r.get("name") for r in refs.findall("x:Right", NS)] == ["{io.vcdext.hello}:Do Things"]
    assert admin.post(add, right_xml("Do Things")).status_code == 400  # duplicate
    # An already prefixed name is not prefixed twice.
    twice = admin.xml("POST", add, right_xml("{io.vcdext.hello}:Other"), status=201)
    assert twice.get("name") == "{io.vcdext.hello}:Other"
    assert admin.delete(right.get("href")).status_code == 204
    assert admin.get(right.get("href")).status_code == 404
    assert "{io.vcdext.hello}:Do Things" not in {r.name for r in cell.rights()}


def test_seeded_right_keeps_its_urn_when_registered_and_after_reregistration(
    admin: Client, cell: Cell
) -> None:
    name = "{io.vcdext.hello}:View Org Greeting"
    seeded = next(r for r in cell.rights() if r.name == name)
    service = register(admin)
    rights_href = link_href(service, "rights")
    right = admin.xml("POST", rights_href, right_xml("View Org Greeting"), status=201)
    assert right.get("id") == seeded.urn
    admin.delete(service.get("href"))
    service = register(admin)
    again = admin.xml(
        "POST", link_href(service, "rights"), right_xml("View Org Greeting"), status=201
    )
    assert again.get("id") == seeded.urn


def test_api_definitions_add_list_remove(admin: Client) -> None:
    service = register(admin)
    definition = X("ApiDefinition", name="Hello API")
    definition.append(E("Description", "The greeting API"))
    definition.append(X("EntryPoint", "{baseUri}hello"))
    definition.append(X("Namespace", "io.vcdext.hello"))
    definition.append(X("ApiVendor", "vcdext"))
    versions = X("SupportedApiVersions")
    versions.append(X("Version", "1.0"))
    definition.append(versions)
    files = X("Files")
    descriptor = X("FileDescriptor")
    descriptor.append(X("Description", "schema"))
    descriptor.append(X("File", href="https://example.com/greeting.xsd", type="text/xml"))
    files.append(descriptor)
    definition.append(files)
    add = link_href(service, "add", "application/vnd.vmware.admin.apiDefinition+xml")
    created = admin.xml("POST", add, definition, status=201)
    assert created.get("id").startswith("urn:vcloud:apiDefinition:")
    assert (
        created.find("x:Files/x:FileDescriptor/x:File", NS).get("href")
        == "https://example.com/greeting.xsd"
    )
    records = admin.xml("GET", link_href(service, "down:apiDefinitions"))
    (record,) = records.findall("v:AdminApiDefinitionRecord", NS)
    assert record.get("name") == "Hello API"
    assert record.get("serviceNamespace") == "io.vcdext.hello"
    assert admin.xml("GET", created.get("href")).get("name") == "Hello API"
    assert admin.delete(created.get("href")).status_code == 204
    records = admin.xml("GET", link_href(service, "down:apiDefinitions"))
    assert records.findall("v:AdminApiDefinitionRecord", NS) == []


def test_parts_of_an_unknown_service_are_404(admin: Client) -> None:
    base = f"{SERVICES}/00000000-0000-0000-0000-000000000000"
    assert admin.get(base).status_code == 404
    assert admin.get(f"{base}/apifilters").status_code == 404
    assert admin.post(f"{base}/apifilters", filter_xml("/api/x")).status_code == 404
    assert admin.post(f"{base}/rights", right_xml("x")).status_code == 404


def test_deleting_a_service_removes_its_filters_and_links(admin: Client, cell: Cell) -> None:
    org_type = "application/vnd.vmware.vcloud.org+xml"
    service = register(
        admin,
        patterns=["/api/hello"],
        links=[link_xml("down", "{baseUri}x", "text/plain", org_type)],
    )
    admin.delete(service.get("href"))
    assert cell.state.filters() == []
    assert cell.state.links() == []
