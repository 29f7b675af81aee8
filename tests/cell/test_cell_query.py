"""The query service: types, formats, filters (as pyvcloud and requests encode them), paging."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest
from lxml import etree

from tests.cell.support import NS, Client, right_xml, service_xml

SERVICES = "/api/admin/extension/service"


@pytest.fixture
def three(admin: Client) -> list[etree._Element]:
    """Three services: hello (enabled), hi and greet (disabled), each with one filter."""
    out = []
    for name, namespace, enabled in (
        ("hello", "io.vcdext.hello", True),
        ("hi", "io.vcdext.hi", False),
        ("greet", "org.example.greet", False),
    ):
        body = service_xml(name, namespace, enabled=enabled, patterns=[f"/api/{name}"])
        out.append(admin.xml("POST", SERVICES, body, status=201))
    return out


def names(doc: etree._Element, record: str = "AdminServiceRecord") -> list[str]:
    return [r.get("name") for r in doc.findall(f"v:{record}", NS)]


def test_query_list_links_every_type_and_format(admin: Client) -> None:
    doc = admin.xml("GET", "/api/query")
    found = {(x.get("name"), x.get("type")) for x in doc.findall("v:Link", NS)}
    assert ("adminService", "application/vnd.vmware.vcloud.query.idrecords+xml") in found
    assert ("apiFilter", "application/vnd.vmware.vcloud.query.records+xml") in found
    assert ("right", "application/vnd.vmware.vcloud.query.references+xml") in found


def test_org_users_see_no_admin_queries(alice: Client) -> None:
    assert alice.xml("GET", "/api/query").findall("v:Link", NS) == []
    assert alice.get("/api/query?type=adminService").status_code == 403


def test_admin_service_records(admin: Client, three) -> None:
    doc = admin.xml("GET", "/api/query?type=adminService&format=records")
    assert doc.tag == "{http://www.vmware.com/vcloud/v1.5}QueryResultRecords"
    assert doc.get("name") == "adminService"
    assert doc.get("total") == "3"
    hello = doc.find("v:AdminServiceRecord", NS)
    assert hello.get("namespace") == "io.vcdext.hello"
    assert hello.get("enabled") == "true"
    assert hello.get("routingKey") == "rk"
    assert hello.get("exchange") == "vcdext"
    assert hello.get("href") == three[0].get("href")
    assert hello.get("id") == three[0].get("id")


def test_references_format(admin: Client, three) -> None:
    r = admin.get("/api/query?type=adminService&format=references")
    assert r.headers["Content-Type"].startswith(
        "application/vnd.vmware.vcloud.query.references+xml"
    )
    doc = etree.fromstring(r.content)
    assert doc.tag == "{http://www.vmware.com/vcloud/v1.5}AdminServiceReferences"
    refs = doc.findall("v:AdminServiceReference", NS)
    assert [x.get("href") for x in refs] == [s.get("href") for s in three]


def test_pyvcloud_style_filter_finds_one(admin: Client, three) -> None:
    # pyvcloud: '...&page=1&filterEncoded=true&filter=name==%s;namespace==%s' with quote_plus.
    flt = f"name=={quote_plus('hello')};namespace=={quote_plus('io.vcdext.hello')}"
    doc = admin.xml(
        "GET",
        f"/api/query?type=adminService&format=idrecords&page=1&filterEncoded=true&filter={flt}",
    )
    assert names(doc) == ["hello"]


def test_requests_params_style_filter(admin: Client, three) -> None:
    r = admin.get(
        "/api/query",
        params={"type": "adminService", "filter": "name==hi;namespace==io.vcdext.hi"},
    )
    assert "%3D%3D" in r.url  # the whole filter was encoded
    assert names(etree.fromstring(r.content)) == ["hi"]


def test_filter_operators(admin: Client, three) -> None:
    q = "/api/query?type=adminService&filter="
    assert names(admin.xml("GET", q + "namespace==io.vcdext.*")) == ["hello", "hi"]
    assert names(admin.xml("GET", q + "enabled!=true")) == ["hi", "greet"]
    assert names(admin.xml("GET", q + "name==hello,name==greet")) == ["hello", "greet"]
    assert names(admin.xml("GET", q + "name==nothing")) == []
    assert admin.get(q + "bogus==1").status_code == 400
    assert admin.get(q + "name=gt=1").status_code == 400


def test_filters_by_service_urn_as_pyvcloud_does(admin: Client, three) -> None:
    urn = three[1].get("id")
    doc = admin.xml(
        "GET", f"/api/query?type=apiFilter&format=idrecords&filter=service=={quote(urn)}"
    )
    (record,) = doc.findall("v:ApiFilterRecord", NS)
    assert record.get("urlPattern") == "/api/hi"
    assert record.get("service") == urn  # idrecords: references are URNs
    doc = admin.xml("GET", f"/api/query?type=apiFilter&filter=service=={three[1].get('href')}")
    (record,) = doc.findall("v:ApiFilterRecord", NS)
    assert record.get("service") == three[1].get("href")  # records: hrefs


def test_paging_with_next_page_links(admin: Client, three) -> None:
    doc = admin.xml("GET", "/api/query?type=adminService&pageSize=2")
    assert names(doc) == ["hello", "hi"]
    assert doc.get("pageSize") == "2"
    next_page = next(x.get("href") for x in doc.findall("v:Link", NS) if x.get("rel") == "nextPage")
    doc = admin.xml("GET", next_page)
    assert names(doc) == ["greet"]
    assert doc.get("page") == "2"
    assert not [x for x in doc.findall("v:Link", NS) if x.get("rel") == "nextPage"]


def test_pyvcloud_page_size_quirk_is_tolerated(admin: Client, three) -> None:
    # pyvcloud appends 'pageSize=' without '&': page becomes '1pageSize=25'.
    doc = admin.xml("GET", "/api/query?type=adminService&page=1pageSize=25")
    assert doc.get("page") == "1"
    assert len(names(doc)) == 3


def test_page_size_is_capped_at_128(admin: Client) -> None:
    assert admin.xml("GET", "/api/query?type=right&pageSize=1000").get("pageSize") == "128"


def test_sorting(admin: Client, three) -> None:
    assert names(admin.xml("GET", "/api/query?type=adminService&sortAsc=name")) == [
        "greet",
        "hello",
        "hi",
    ]
    assert names(admin.xml("GET", "/api/query?type=adminService&sortDesc=name")) == [
        "hi",
        "hello",
        "greet",
    ]


def test_right_query_lists_seeded_and_registered_rights(admin: Client, three) -> None:
    rights = next(x.get("href") for x in three[0].findall("v:Link", NS) if x.get("rel") == "rights")
    admin.xml("POST", rights, right_xml("Do Things"), status=201)
    doc = admin.xml("GET", "/api/query?type=right&filter=name=={io.vcdext.hello}*")
    assert sorted(names(doc, "RightRecord")) == [
        "{io.vcdext.hello}:Do Things",
        "{io.vcdext.hello}:View Org Greeting",
    ]


def test_unknown_type_and_format_are_400(admin: Client) -> None:
    assert admin.get("/api/query?type=vm").status_code == 400
    assert admin.get("/api/query?type=adminService&format=csv").status_code == 400


def test_service_link_and_definition_queries(admin: Client, three) -> None:
    assert admin.xml("GET", "/api/query?type=serviceLink").get("total") == "0"
    assert (
        admin.xml("GET", "/api/query?type=adminApiDefinition&format=references").get("total") == "0"
    )
