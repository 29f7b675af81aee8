"""Rights vcdext does not register (vCD's own, other services') are learned by URN at
registration, and ``vcdext plugins`` says which operations are open to any caller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcdext import Registrar, hookimpl
from vcdext.cli import main
from vcdext.settings import load_settings
from vcdext.testing import TestClient, make_runtime
from vcdext.vcd import register_services
from vcdext.vcd.reconcile import foreign_rights
from vcdext_cell import Cell
from vcdext_cell.seed import load_seed

SEED = """
rights_format = "urn"
[[orgs]]
name = "System"
[[orgs.users]]
name = "administrator"
password = "vmware"
rights = ["*"]
[[orgs]]
name = "acme"
[[orgs.users]]
name = "carol"
password = "vmware"
rights = ["vApp: View"]
"""


class Viewer:
    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.service(name="viewer", namespace="io.example.viewer")
        registrar.add_right("Own")
        registrar.add_operation("GET", "/api/viewer", lambda request: "<V/>", rights=["vApp: View"])
        registrar.add_operation(
            "GET", "/api/viewer/own", lambda request: "<O/>", rights=["Own", "{x.y}:Z"]
        )


@pytest.fixture
def cell(tmp_path: Path) -> Iterator[Cell]:
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0, seed=load_seed(seed)) as c:
        yield c


def test_foreign_rights_are_those_no_service_declares():
    runtime = make_runtime(viewer=Viewer())
    assert foreign_rights(runtime.registry.services.values()) == {"vApp: View", "{x.y}:Z"}


def test_vcd_own_right_is_learned_by_urn_and_then_matches(cell, tmp_path):
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
    )
    settings = load_settings(config, environ={})
    runtime = make_runtime(viewer=Viewer(), settings=settings)
    result = register_services(runtime, settings)
    vapp_view = next(r for r in cell.state.rights() if r.name == "vApp: View")
    assert result.right_ids["vApp: View"] == vapp_view.urn
    assert "{x.y}:Z" not in result.right_ids  # unknown to vCD: left out
    # carol's security context lists the URN, as the cell (and vCD) send it
    sent = cell.state.rights_of(cell.seed.org_named("acme").users[0], "urn")
    assert sent == [vapp_view.urn]
    client = TestClient(runtime)
    assert client.get("/api/viewer", rights=sent).status == 403
    runtime.dispatcher.learn_right_ids(result.right_aliases())
    assert client.get("/api/viewer", rights=sent).status == 200


def test_plugins_marks_open_operations(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "/api/hello " in x + " " and "GET" in x)
    assert "open: any authenticated caller" in line
    org_line = next(x for x in out.splitlines() if "/api/org/{org_id}/hello" in x)
    assert "open" not in org_line and "rights: {io.vcdext.hello}:View Org Greeting" in org_line
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    hello = next(p for p in doc["plugins"] if p["name"] == "hello")["service"]
    open_ops = {op["path"]: op["open"] for op in hello["operations"]}
    assert open_ops == {
        "/api/hello": True,
        "/api/hello/echo": True,
        "/api/org/{org_id}/hello": False,
    }


def test_plugins_lists_resource_classes(capsys, monkeypatch):
    monkeypatch.setenv("VCDEXT_PLUGINS_ENABLED", "backup")
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "resource classes (vCD authorization framework)" in out
    assert "DELETE  /api/backup/(?<id>[^/]+)  delete" in out
    assert "deleters: {org.example.vcd.backup}:Delete Backup in Shared org" in out
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    svc = next(p for p in doc["plugins"] if p["name"] == "backup")["service"]
    (cls,) = svc["resource_classes"]
    assert [a["method"] for a in cls["actions"]] == ["GET", "DELETE"]
    assert cls["actions"][0]["acl"][1]["organization"] == "System"
