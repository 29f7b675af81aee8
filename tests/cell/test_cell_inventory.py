"""The inventory (orgs, VDCs, vApps) and the service links rendered into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.cell.support import NS, Client, X, link_href, link_xml, service_xml
from vcdext_cell import Cell

ORG = "application/vnd.vmware.vcloud.org+xml"
ADMIN_ORG = "application/vnd.vmware.admin.organization+xml"
VDC = "application/vnd.vmware.vcloud.vdc+xml"
VAPP = "application/vnd.vmware.vcloud.vApp+xml"
GREETING = "application/vnd.io.vcdext.hello.greeting+xml"
SERVICES = "/api/admin/extension/service"


def links(doc: etree._Element) -> set[tuple[str, str, str]]:
    return {(x.get("rel"), x.get("type") or "", x.get("href")) for x in doc.findall("v:Link", NS)}


def test_org_list_sysadmin_sees_all_and_users_their_own(
    admin: Client, alice: Client, cell: Cell
) -> None:
    every = admin.xml("GET", "/api/org")
    assert sorted(o.get("name") for o in every.findall("v:Org", NS)) == ["System", "acme"]
    own = alice.xml("GET", "/api/org/")
    (org,) = own.findall("v:Org", NS)
    assert org.get("href") == f"{cell.url}/api/org/{cell.org('acme').id}"


def test_org_vdc_and_vapp_are_linked(alice: Client, cell: Cell) -> None:
    acme = cell.org("acme")
    org = alice.xml("GET", f"/api/org/{acme.id}")
    assert org.get("id") == f"urn:vcloud:org:{acme.id}"
    assert org.findtext("v:FullName", namespaces=NS) == "Acme Corporation"
    vdc = alice.xml("GET", link_href(org, "down", VDC))
    assert vdc.get("name") == "acme-vdc"
    entity = vdc.find("v:ResourceEntities/v:ResourceEntity", NS)
    vapp = alice.xml("GET", entity.get("href"))
    assert vapp.get("name") == "acme-web"
    assert vapp.get("id") == f"urn:vcloud:vapp:{acme.vdcs[0].vapps[0].id}"
    assert "/api/vApp/vapp-" in vapp.get("href")


def test_admin_org_has_task_and_event_create_links(admin: Client, cell: Cell) -> None:
    acme = cell.org("acme")
    org = admin.xml("GET", f"/api/org/{acme.id}")
    admin_org = admin.xml("GET", link_href(org, "alternate", ADMIN_ORG))
    assert admin_org.tag == "{http://www.vmware.com/vcloud/v1.5}AdminOrg"
    assert link_href(admin_org, "task:create", "application/vnd.vmware.vcloud.task+xml") == (
        f"{cell.url}/api/tasksList/{acme.id}"
    )
    assert link_href(admin_org, "event:create", "application/vnd.vmware.vcloud.event+xml") == (
        f"{cell.url}/api/admin/org/{acme.id}/events"
    )


def test_unknown_objects_are_404(admin: Client) -> None:
    for path in ("/api/org/nope", "/api/vdc/nope", "/api/vApp/vapp-nope", "/api/admin/org/nope"):
        r = admin.get(path)
        assert r.status_code == 404, path
        assert etree.fromstring(r.content).get("minorErrorCode") == "RESOURCE_NOT_FOUND"


def _register(admin: Client, *, enabled: bool = True, service_links=()) -> etree._Element:
    body = service_xml("hello", "io.vcdext.hello", enabled=enabled, links=service_links)
    return admin.xml("POST", SERVICES, body, status=201)


def test_service_links_are_expanded_on_orgs(admin: Client, alice: Client, cell: Cell) -> None:
    acme = cell.org("acme")
    _register(
        admin, service_links=[link_xml("down", "{baseUri}org/{resourceId}/hello", GREETING, ORG)]
    )
    org = alice.xml("GET", f"/api/org/{acme.id}")
    # {baseUri} is the API root with a trailing slash; {resourceId} the UUID of the org.
    assert link_href(org, "down", GREETING) == f"{cell.url}/api/org/{acme.id}/hello"
    system = admin.xml("GET", f"/api/org/{cell.org('System').id}")
    assert link_href(system, "down", GREETING).endswith(f"/api/org/{cell.org('System').id}/hello")


def test_disabled_services_render_no_links(admin: Client, alice: Client, cell: Cell) -> None:
    service = _register(
        admin, enabled=False, service_links=[link_xml("down", "{baseUri}x", GREETING, ORG)]
    )
    org_path = f"/api/org/{cell.org('acme').id}"
    assert not [x for x in links(alice.xml("GET", org_path)) if x[1] == GREETING]
    enable = X("Service", name="hello")
    enable.append(X("Enabled", "true"))
    admin.xml("PUT", service.get("href"), enable)
    assert [x for x in links(alice.xml("GET", org_path)) if x[1] == GREETING]


def test_resource_id_restricts_a_link_to_one_object(admin: Client, cell: Cell) -> None:
    acme, system = cell.org("acme"), cell.org("System")
    only_acme = link_xml(
        "down", "{baseUri}acme-only", GREETING, ORG, resource_id=f"urn:vcloud:org:{acme.id}"
    )
    _register(admin, service_links=[only_acme])
    assert link_href(admin.xml("GET", f"/api/org/{acme.id}"), "down", GREETING)
    assert not [x for x in links(admin.xml("GET", f"/api/org/{system.id}")) if x[1] == GREETING]


def test_links_on_admin_org_vdc_and_vapp(admin: Client, cell: Cell) -> None:
    acme = cell.org("acme")
    vdc, vapp = acme.vdcs[0], acme.vdcs[0].vapps[0]
    _register(
        admin,
        service_links=[
            link_xml("alternate", "{baseUri}admin/{resourceId}/x", "text/plain", ADMIN_ORG),
            link_xml("alternate", "{baseUri}vdc/{resourceId}/x", "text/plain", VDC),
            link_xml("alternate", "{baseUri}vApp/{resourceId}/x", "text/plain", VAPP),
        ],
    )
    base = f"{cell.url}/api/"
    assert link_href(admin.xml("GET", f"/api/admin/org/{acme.id}"), "alternate", "text/plain") == (
        f"{base}admin/{acme.id}/x"
    )
    assert (
        link_href(admin.xml("GET", f"/api/vdc/{vdc.id}"), "alternate", "text/plain")
        == f"{base}vdc/{vdc.id}/x"
    )
    assert link_href(admin.xml("GET", f"/api/vApp/vapp-{vapp.id}"), "alternate", "text/plain") == (
        f"{base}vApp/{vapp.id}/x"
    )


SEED = """
[[orgs]]
name = "System"
[[orgs.users]]
name = "root"
password = "pw"
rights = ["*"]

[[orgs]]
name = "acme"
[[orgs.users]]
name = "carol"
password = "pw"
[[orgs.vdcs]]
name = "v1"

[[orgs]]
name = "globex"
[[orgs.users]]
name = "dave"
password = "pw"
[[orgs.vdcs]]
name = "v2"
[[orgs.vdcs.vapps]]
name = "a2"
"""


@pytest.fixture
def two_orgs(tmp_path: Path) -> Iterator[Cell]:
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    with Cell(amqp_url="memory://", port=0, seed=seed) as c:
        yield c


def test_users_cannot_read_other_orgs(two_orgs: Cell, assert_valid_vcd_xml) -> None:
    carol = Client(two_orgs.url, assert_valid_vcd_xml).login("carol@acme", "pw")
    globex = two_orgs.org("globex")
    for path in (
        f"/api/org/{globex.id}",
        f"/api/admin/org/{globex.id}",
        f"/api/vdc/{globex.vdcs[0].id}",
        f"/api/vApp/vapp-{globex.vdcs[0].vapps[0].id}",
        f"/api/tasksList/{globex.id}",
    ):
        r = carol.get(path)
        assert r.status_code == 403, path
        assert (
            etree.fromstring(r.content).get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
        )
    assert carol.get(f"/api/org/{two_orgs.org('acme').id}").status_code == 200
