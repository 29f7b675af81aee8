"""Handlers ask vCD's authorization check (``ctx.authorize``, cached briefly) and register
service resources at run time (``ctx.add_service_resource``), against the local cell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.seeds import two_tenants
from vcdext import Acl, Registrar, Request, ResourceAction, Service, current, hookimpl
from vcdext.settings import load_settings
from vcdext.testing import TestClient, make_runtime
from vcdext.vcd import VcdClient, register_services
from vcdext.vcd.authorization import VcdAuthorizer
from vcdext_cell import Cell
from vcdext_cell.seed import load_seed

OPEN = "{io.example.safe}:Open"
SEED = two_tenants(OPEN)

service = Service("safe", namespace="io.example.safe")
service.right("Open")
service.resource_class(
    "Safe",
    actions=[
        ResourceAction(
            "open",
            "GET",
            "/api/safe/(?<id>[^/]+)",
            acl=[Acl("owners", principal="Open", organization="Shared")],
        )
    ],
)


@service.operation("POST", "/api/safe/{name}")
def create(request: Request, name: str) -> str:
    return f"<Safe href='{current().add_service_resource('Safe', name)}'/>"


@service.operation("GET", "/api/safe/{name}/check")
def check(request: Request, name: str) -> str:
    return str(current().authorize("GET", f"/api/safe/{name}"))


class Plugin:
    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.add_service(service)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[Cell]:
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0, seed=load_seed(seed)) as c:
        yield c


def urns(cell: Cell, login: str) -> dict[str, str]:
    name, org_name = login.split("@")
    org = cell.seed.org_named(org_name)
    user = next(u for u in org.users if u.name == name)
    return {"user": f"urn:vcloud:user:{user.id}", "org": f"urn:vcloud:org:{org.id}"}


def test_authorize_asks_vcd_caches_and_resources_change_the_answer(cell, tmp_path):
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
    )
    settings = load_settings(config, environ={})
    runtime = make_runtime(safe=Plugin(), settings=settings)
    register_services(runtime, settings)
    vcd = VcdClient.from_settings(settings)
    vcd.connect()
    clock = Clock()
    authorizer = VcdAuthorizer(vcd, {"safe": "io.example.safe"}, ttl=5, clock=clock)
    runtime.dispatcher.authorizer = authorizer
    client = TestClient(runtime)

    created = client.post("/api/safe/s1", **urns(cell, "alice@acme"))
    assert created.status == 200, created.text
    (resource,) = cell.state.resources()
    assert resource.external_object_id == "s1"
    assert resource.org is not None and resource.org.href.endswith(cell.seed.org_named("acme").id)
    assert resource.id in created.text

    assert client.get("/api/safe/s1/check", **urns(cell, "alice@acme")).text == "True"
    assert client.get("/api/safe/s1/check", **urns(cell, "bob@acme")).text == "False"
    assert client.get("/api/safe/s1/check", **urns(cell, "carol@globex")).text == "False"
    asked = authorizer.asked
    assert asked == 3

    # cached: the same question within the TTL does not reach vCD
    assert client.get("/api/safe/s1/check", **urns(cell, "carol@globex")).text == "False"
    assert authorizer.asked == asked
    clock.now += 6
    assert client.get("/api/safe/s1/check", **urns(cell, "carol@globex")).text == "False"
    assert authorizer.asked == asked + 1

    # a new resource (carol's org owns it) forgets the cache
    assert client.post("/api/safe/g1", **urns(cell, "carol@globex")).status == 200
    assert client.get("/api/safe/g1/check", **urns(cell, "carol@globex")).text == "True"
    assert client.get("/api/safe/g1/check", **urns(cell, "alice@acme")).text == "False"
    authorizer.close()


def test_without_vcd_the_handler_gets_503():
    client = TestClient(make_runtime(safe=Plugin()))
    r = client.get("/api/safe/s1/check")
    assert r.status == 503
    assert "not available" in r.xml().get("message")
