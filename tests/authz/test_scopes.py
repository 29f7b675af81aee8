"""Declared rights and scopes, enforced before the handler (issue 11, items 1 and 2)."""

from __future__ import annotations

import json

import pytest

from vcdext import Registrar, Request, Service, current, hookimpl
from vcdext.context import SYSTEM_ORG_ID
from vcdext.testing import TestClient, make_runtime

SYSTEM = f"urn:vcloud:org:{SYSTEM_ORG_ID}"
ACME = "urn:vcloud:org:11111111-2222-3333-4444-555555555555"
OTHER = "urn:vcloud:org:99999999-2222-3333-4444-555555555555"

service = Service("vault", namespace="io.example.vault", vendor="Example")
READ = service.right("Read Vault")


@service.operation("GET", "/api/vault/open")
def open_door(request: Request) -> str:
    ctx = current()
    return json.dumps(
        {
            "user": ctx.user,
            "org": ctx.org,
            "rights": sorted(ctx.rights),
            "admin": ctx.is_system_admin,
        }
    )


@service.operation("GET", "/api/vault/admin", admin_only=True)
def admin(request: Request) -> str:
    return "<Admin/>"


@service.operation("GET", "/api/vault/vapp", rights=["vApp: View"])
def needs_vcd_right(request: Request) -> str:
    return "<VApp/>"


@service.operation("GET", "/api/vault/both", rights=["Read Vault", "{io.example.other}:Peek"])
def needs_two(request: Request) -> str:
    return "<Both/>"


@service.operation("GET", "/api/vault/org/{org}", rights=["Read Vault"], same_org="org")
def org_vault(request: Request, org: str) -> str:
    return "<Org/>"


class Vault:
    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.add_service(service)


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_runtime(vault=Vault()), user="urn:vcloud:user:u1", org=ACME)


def test_handlers_see_user_org_rights_and_admin_flag(client):
    r = client.get("/api/vault/open", rights=["urn:vcloud:right:r1"])
    assert json.loads(r.text) == {
        "user": "urn:vcloud:user:u1",
        "org": ACME,
        "rights": ["urn:vcloud:right:r1"],
        "admin": False,
    }
    r = client.get("/api/vault/open", org=SYSTEM)
    assert json.loads(r.text)["admin"] is True


def test_admin_only_requires_the_system_org(client, assert_valid_vcd_xml):
    denied = client.get("/api/vault/admin")
    assert denied.status == 403
    assert "System administrators" in denied.xml().get("message")
    assert_valid_vcd_xml(denied.body)
    # rights do not help: only the org counts
    assert client.get("/api/vault/admin", rights=[READ]).status == 403
    assert client.get("/api/vault/admin", org=SYSTEM).status == 200


def test_vcd_own_and_other_services_rights_can_be_required(client):
    assert client.get("/api/vault/vapp").status == 403
    assert client.get("/api/vault/vapp", rights=["vApp: View"]).status == 200
    assert client.get("/api/vault/both", rights=[READ]).status == 403
    message = client.get("/api/vault/both", rights=[READ]).xml().get("message")
    assert "{io.example.other}:Peek" in message and READ not in message
    assert client.get("/api/vault/both", rights=[READ, "{io.example.other}:Peek"]).status == 200


def test_rights_match_by_learned_urn_or_uuid_as_well_as_by_name(client):
    urn = "urn:vcloud:right:0f0e0d0c-0000-4000-8000-000000000001"
    vapp_urn = "urn:vcloud:right:0f0e0d0c-0000-4000-8000-000000000002"
    assert client.get("/api/vault/vapp", rights=[vapp_urn]).status == 403
    client.runtime.dispatcher.learn_right_ids(
        {READ: [urn, urn.rsplit(":", 1)[-1]], "vApp: View": [vapp_urn]}
    )
    assert client.get("/api/vault/vapp", rights=[vapp_urn]).status == 200
    org = ACME.rsplit(":", 1)[-1]
    assert client.get(f"/api/vault/org/{org}", rights=[urn]).status == 200
    assert client.get(f"/api/vault/org/{org}", rights=[urn.rsplit(":", 1)[-1]]).status == 200
    assert client.get(f"/api/vault/org/{org}", rights=[READ]).status == 200
    assert client.get(f"/api/vault/org/{org}", rights=["urn:vcloud:right:other"]).status == 403


def test_same_org_scope_with_rights(client):
    other = OTHER.rsplit(":", 1)[-1]
    assert client.get(f"/api/vault/org/{other}", rights=[READ]).status == 403
    assert client.get(f"/api/vault/org/{other}", rights=[READ], org=SYSTEM).status == 200
    # a System administrator still needs the right
    assert client.get(f"/api/vault/org/{other}", org=SYSTEM).status == 403


def test_is_open_says_who_may_call():
    ops = {op.name: op for op in service.operations}
    assert ops["open_door"].is_open
    assert not ops["admin"].is_open
    assert not ops["needs_vcd_right"].is_open
