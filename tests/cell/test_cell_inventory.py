"""The inventory (orgs, VDCs, vApps, VMs) and the service links rendered into it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.cell.support import NS, Client, X, link_href, link_xml, service_xml
from vcdext.errors import ConfigError
from vcdext_cell import Cell, load_seed
from vcdext_cell.seed import derived_id

ORG = "application/vnd.vmware.vcloud.org+xml"
ADMIN_ORG = "application/vnd.vmware.admin.organization+xml"
VDC = "application/vnd.vmware.vcloud.vdc+xml"
VAPP = "application/vnd.vmware.vcloud.vApp+xml"
VM = "application/vnd.vmware.vcloud.vm+xml"
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
    for path in (
        "/api/org/nope",
        "/api/vdc/nope",
        "/api/vApp/vapp-nope",
        "/api/vApp/vm-nope",
        "/api/admin/org/nope",
    ):
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
owner = "dave"
[[orgs.vdcs.vapps.vms]]
name = "m2"
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
        f"/api/vApp/vm-{globex.vdcs[0].vapps[0].vms[0].id}",
        f"/api/tasksList/{globex.id}",
    ):
        r = carol.get(path)
        assert r.status_code == 403, path
        assert (
            etree.fromstring(r.content).get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
        )
    assert carol.get(f"/api/org/{two_orgs.org('acme').id}").status_code == 200


# -- VMs --------------------------------------------------------------------------------


def test_demo_vapps_have_owners_and_vms(alice: Client, cell: Cell) -> None:
    acme = cell.org("acme")
    alice_user, bob_user = acme.users
    vdc = alice.xml("GET", f"/api/vdc/{acme.vdcs[0].id}")
    names = [e.get("name") for e in vdc.findall("v:ResourceEntities/v:ResourceEntity", NS)]
    assert names == ["acme-web", "acme-db"]
    owners, vms = {}, {}
    for entity in vdc.findall("v:ResourceEntities/v:ResourceEntity", NS):
        vapp = alice.xml("GET", entity.get("href"))
        owner = vapp.find("v:Owner/v:User", NS)
        owners[vapp.get("name")] = (owner.get("name"), owner.get("id"))
        vms[vapp.get("name")] = [vm.get("name") for vm in vapp.findall("v:Children/v:Vm", NS)]
    assert owners == {
        "acme-web": ("alice", f"urn:vcloud:user:{alice_user.id}"),
        "acme-db": ("bob", f"urn:vcloud:user:{bob_user.id}"),
    }
    assert vms == {"acme-web": ["web-1", "web-2"], "acme-db": ["db-1"]}


def test_a_vm_is_read_from_its_vapps_children(alice: Client, cell: Cell) -> None:
    vapp_seed = cell.org("acme").vdcs[0].vapps[0]
    web1 = vapp_seed.vms[0]
    vapp = alice.xml("GET", f"/api/vApp/vapp-{vapp_seed.id}")
    child = vapp.find("v:Children/v:Vm", NS)
    assert (child.get("type"), child.get("href")) == (VM, f"{cell.url}/api/vApp/vm-{web1.id}")
    r = alice.get(child.get("href"))
    assert r.status_code == 200 and r.headers["Content-Type"] == f"{VM};version=36.0"
    vm = etree.fromstring(r.content)
    assert vm.tag == "{http://www.vmware.com/vcloud/v1.5}Vm"
    assert (vm.get("name"), vm.get("id")) == ("web-1", f"urn:vcloud:vm:{web1.id}")
    assert vm.get("id") == child.get("id") and vm.get("href") == child.get("href")
    assert link_href(vm, "up", VAPP) == vapp.get("href")
    assert web1.id == derived_id("vm", "acme", "acme-vdc", "acme-web", "web-1")


def test_service_links_are_rendered_on_vms(admin: Client, alice: Client, cell: Cell) -> None:
    vapp = cell.org("acme").vdcs[0].vapps[0]
    web1, web2 = vapp.vms
    notes = "application/vnd.example.notes+xml"
    _register(
        admin,
        service_links=[
            link_xml("down", "{baseUri}vm/{resourceId}/notes", notes, VM),
            link_xml("edit", "{baseUri}only-web-2", "text/plain", VM, f"urn:vcloud:vm:{web2.id}"),
        ],
    )
    base = f"{cell.url}/api/"
    one = alice.xml("GET", f"/api/vApp/vm-{web1.id}")
    assert link_href(one, "down", notes) == f"{base}vm/{web1.id}/notes"
    assert not [x for x in links(one) if x[0] == "edit"]
    two = alice.xml("GET", f"/api/vApp/vm-{web2.id}")
    assert link_href(two, "down", notes) == f"{base}vm/{web2.id}/notes"
    assert link_href(two, "edit", "text/plain") == f"{base}only-web-2"
    # A VM link is not a vApp link.
    assert not [x for x in links(alice.xml("GET", f"/api/vApp/vapp-{vapp.id}")) if x[1] == notes]


def test_vms_are_read_from_the_seed(tmp_path: Path) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(
        '[[orgs]]\nname = "o"\n[[orgs.users]]\nname = "u"\npassword = "p"\n'
        '[[orgs.vdcs]]\nname = "v"\n[[orgs.vdcs.vapps]]\nname = "a"\nowner = "U"\n'
        '[[orgs.vdcs.vapps.vms]]\nname = "m1"\n'
        '[[orgs.vdcs.vapps.vms]]\nname = "m2"\nid = "11111111-2222-4333-8444-555555555555"\n'
    )
    org = load_seed(path).org_named("o")
    (vapp,) = org.vdcs[0].vapps
    assert vapp.owner_id == org.users[0].id
    assert [(m.name, m.id, m.vapp_id) for m in vapp.vms] == [
        ("m1", derived_id("vm", "o", "v", "a", "m1"), vapp.id),
        ("m2", "11111111-2222-4333-8444-555555555555", vapp.id),
    ]


@pytest.mark.parametrize(
    ("tail", "key", "problem"),
    [
        ('owner = "nobody"\n', "orgs[0].vdcs[0].vapps[0].owner", "not a user"),
        ('[[orgs.vdcs.vapps.vms]]\nname = ""\n', "vapps[0].vms[0].name", "non-empty"),
        ('[[orgs.vdcs.vapps.vms]]\nname = "m"\ncpus = 2\n', "vms[0].cpus", "unknown key"),
        (
            '[[orgs.vdcs.vapps.vms]]\nname = "m"\n[[orgs.vdcs.vapps.vms]]\nname = "M"\n',
            "vms",
            "twice",
        ),
        ('[[orgs.vdcs.vapps.vms]]\nname = "m"\nid = "u-1"\n', "vms[0].id", "UUID"),
        (
            '[[orgs.vdcs.vapps.vms]]\nname = "m"\nid = "11111111-2222-4333-8444-555555555555"\n'
            '[[orgs.vdcs.vapps.vms]]\nname = "n"\nid = "11111111-2222-4333-8444-555555555555"\n',
            "orgs",
            "same id",
        ),
    ],
)
def test_bad_vms_in_a_seed_name_the_key(tmp_path: Path, tail: str, key: str, problem: str) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(
        '[[orgs]]\nname = "o"\n[[orgs.users]]\nname = "u"\npassword = "p"\n'
        '[[orgs.vdcs]]\nname = "v"\n[[orgs.vdcs.vapps]]\nname = "a"\n' + tail
    )
    with pytest.raises(ConfigError) as info:
        load_seed(path)
    assert key in str(info.value) and problem in str(info.value)
