"""The cell's authorization framework: resource classes, actions, ACL rules and service
resources over HTTP (every document schema-checked by the client), the authorization check
evaluated as the protocol notes (§5) describe, and enforcement before forwarding."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from tests.cell.support import NS, Client, link_href
from tests.support.seeds import two_tenants
from vcdext.vcloud import media
from vcdext.vcloud.authorization import (
    read_authorization_check_response,
    read_resource_class,
    read_resource_class_action,
    read_service_resource,
    write_authorization_check_params,
    write_resource_class,
    write_resource_class_action,
    write_service_resource,
)
from vcdext.vcloud.extension import read_service, write_right, write_service
from vcdext.vcloud.model import (
    AclAccess,
    AclRule,
    ApiFilter,
    AuthorizationCheck,
    Reference,
    ResourceClass,
    ResourceClassAction,
    Right,
    Service,
    ServiceResource,
)
from vcdext_cell import Cell
from vcdext_cell.seed import load_seed

DELETE = "{io.example.box}:Delete Box"
SEED = two_tenants(DELETE)


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[Cell]:
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0, timeout=2, seed=load_seed(seed)) as c:
        yield c


@pytest.fixture
def admin(cell: Cell, assert_valid_vcd_xml) -> Client:
    return Client(cell.url, assert_valid_vcd_xml).login("administrator@System", "vmware")


def user_ref(cell: Cell, login: str) -> Reference:
    name, org = login.split("@")
    user = next(u for u in cell.seed.org_named(org).users if u.name == name)
    return Reference(f"{cell.url}/api/admin/user/{user.id}", media.USER, name)


def org_ref(cell: Cell, org: str) -> Reference:
    return Reference(f"{cell.url}/api/org/{cell.seed.org_named(org).id}", media.ORG, org)


class Box:
    """A service with one class: GET for members of the owning org, DELETE for holders of
    Delete Box in the owning org, PUT for one resource only, POST for one user only."""

    def __init__(self, cell: Cell, admin: Client, *, enabled: bool = True) -> None:
        self.cell, self.admin = cell, admin
        body = write_service(
            Service("box", "io.example.box", "box", "vcdext", True, enabled),
            filters=[ApiFilter("/api/box/.*")],
        )
        doc = admin.xml(
            "POST",
            "/api/admin/extension/service",
            body,
            201,
            headers={"Content-Type": media.SERVICE},
        )
        self.service = read_service(doc).held
        rights = self.service.link(media.REL_RIGHTS)
        right = admin.xml(
            "POST",
            rights,
            write_right(Right("Delete Box")),
            201,
            headers={"Content-Type": media.RIGHT},
        )
        right_ref = Reference(right.get("href"), media.RIGHT, DELETE)
        classes = link_href(
            etree.fromstring(etree.tostring(write_service(self.service))),
            media.REL_ADD,
            media.RESOURCE_CLASS,
        )
        c = admin.xml(
            "POST",
            classes,
            write_resource_class(ResourceClass("Box", urn_pattern="box:(?<id>.+)")),
            201,
            headers={"Content-Type": media.RESOURCE_CLASS},
        )
        self.resource_class = read_resource_class(c)
        add_action = self.resource_class.link(media.REL_ADD, media.RESOURCE_CLASS_ACTION)
        add_resource = self.resource_class.link(media.REL_ADD, media.SERVICE_RESOURCE)
        acme, globex = org_ref(cell, "acme"), org_ref(cell, "globex")
        b1 = admin.xml(
            "POST",
            add_resource,
            write_service_resource(ServiceResource("b1", acme, "b1")),
            201,
            headers={"Content-Type": media.SERVICE_RESOURCE},
        )
        self.b1 = read_service_resource(b1)
        admin.xml(
            "POST",
            add_resource,
            write_service_resource(ServiceResource("g1", globex, "g1")),
            201,
            headers={"Content-Type": media.SERVICE_RESOURCE},
        )
        pattern = "/api/box/(?<id>[^/]+)"

        def action(name: str, method: str, *rules: AclRule) -> None:
            body = write_resource_class_action(
                ResourceClassAction(name, method, pattern), rules=list(rules)
            )
            doc = admin.xml(
                "POST", add_action, body, 201, headers={"Content-Type": media.RESOURCE_CLASS_ACTION}
            )
            _, created = read_resource_class_action(doc)
            assert [r.value.name for r in created] == [r.name for r in rules]

        action(
            "view",
            "GET",
            AclRule("members", AclAccess("Shared"), AclAccess("Shared"), AclAccess("Shared")),
        )
        action(
            "delete",
            "DELETE",
            AclRule(
                "deleters", AclAccess("Shared"), AclAccess("Shared"), AclAccess("Entity", right_ref)
            ),
        )
        action(
            "edit",
            "PUT",
            AclRule(
                "only b1",
                AclAccess("Entity", self.b1_ref()),
                AclAccess("Published"),
                AclAccess("Shared"),
            ),
        )
        action(
            "post",
            "POST",
            AclRule(
                "only bob",
                None,
                AclAccess("Published"),
                AclAccess("Entity", user_ref(cell, "bob@acme")),
            ),
        )

    def b1_ref(self) -> Reference:
        return Reference(self.b1.href, media.SERVICE_RESOURCE, "b1")

    def check(self, login: str, method: str, url: str, *, everywhere: bool = False) -> bool:
        href = (
            f"{self.cell.url}/api/admin/extension/service/authorizationcheck"
            if everywhere
            else self.service.link(media.REL_AUTHORIZATION_CHECK)
        )
        body = write_authorization_check_params(
            AuthorizationCheck(user_ref(self.cell, login), method, url)
        )
        doc = self.admin.xml(
            "POST", href, body, 200, headers={"Content-Type": media.AUTHORIZATION_CHECK_PARAMS}
        )
        return read_authorization_check_response(doc)


def test_shared_organization_means_the_owning_org(cell, admin):
    box = Box(cell, admin)
    assert box.check("alice@acme", "GET", "/api/box/b1")
    assert box.check("bob@acme", "GET", "/api/box/b1")
    assert not box.check("carol@globex", "GET", "/api/box/b1")
    assert box.check("carol@globex", "GET", "/api/box/g1")
    # the URL relative to the API root is matched too
    assert not box.check("carol@globex", "GET", "/box/b1")


def test_principal_entity_right_means_holders_of_it(cell, admin):
    box = Box(cell, admin)
    assert box.check("alice@acme", "DELETE", "/api/box/b1")
    assert not box.check("bob@acme", "DELETE", "/api/box/b1")
    assert not box.check("carol@globex", "DELETE", "/api/box/b1"), "right, but not the org"
    assert box.check("carol@globex", "DELETE", "/api/box/g1")


def test_resource_entity_and_user_entity_and_published(cell, admin):
    box = Box(cell, admin)
    assert box.check("carol@globex", "PUT", "/api/box/b1"), "Published: any org"
    assert not box.check("alice@acme", "PUT", "/api/box/g1"), "only b1"
    assert box.check("bob@acme", "POST", "/api/box/b1")
    assert not box.check("alice@acme", "POST", "/api/box/b1"), "only bob"


def test_uncovered_urls_and_disabled_services_are_authorized(cell, admin):
    box = Box(cell, admin)
    assert box.check("carol@globex", "GET", "/api/elsewhere/b1")
    assert not box.check("carol@globex", "GET", "/api/box/b1", everywhere=True)
    off = cell.state.update_service(box.service.id, authorization_enabled=False)
    assert not off.authorization_enabled
    assert box.check("carol@globex", "GET", "/api/box/b1")
    assert box.check("carol@globex", "GET", "/api/box/b1", everywhere=True)


def test_only_system_administrators_may_check_or_define(cell, admin, assert_valid_vcd_xml):
    box = Box(cell, admin)
    alice = Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")
    body = write_authorization_check_params(
        AuthorizationCheck(user_ref(cell, "alice@acme"), "GET", "/api/box/b1")
    )
    r = alice.post(
        box.service.link(media.REL_AUTHORIZATION_CHECK),
        body,
        headers={"Content-Type": media.AUTHORIZATION_CHECK_PARAMS},
    )
    assert r.status_code == 403
    r = alice.get(box.resource_class.href)
    assert r.status_code == 403


def test_lists_and_cascading_deletes(cell, admin):
    box = Box(cell, admin)
    actions = admin.xml("GET", box.resource_class.link(media.REL_RESOURCE_CLASS_ACTIONS))
    assert sorted(
        r.get("httpMethod") for r in actions.findall("v:ResourceClassActionRecord", NS)
    ) == ["DELETE", "GET", "POST", "PUT"]
    resources = admin.xml("GET", box.resource_class.link(media.REL_SERVICE_RESOURCES))
    assert sorted(
        r.get("externalObjectId") for r in resources.findall("v:ServiceResourceRecord", NS)
    ) == ["b1", "g1"]
    assert cell.state.rules() and cell.state.resources()
    assert admin.delete(box.resource_class.href).status_code == 204
    assert cell.state.actions() == [] and cell.state.rules() == [] and cell.state.resources() == []


def test_forwarding_refuses_what_no_rule_allows(cell, admin, assert_valid_vcd_xml):
    Box(cell, admin)
    carol = Client(cell.url, assert_valid_vcd_xml).login("carol@globex", "vmware")
    r = carol.get("/api/box/b1")
    assert r.status_code == 403
    assert etree.fromstring(r.content).get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
    assert cell.state.forwarded() == [], "a refused request must not reach the service"
    alice = Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")
    assert alice.get("/api/box/b1").status_code != 403  # allowed: forwarded (nobody answers)
    assert [f.path for f in cell.state.forwarded()] == ["/api/box/b1"]
