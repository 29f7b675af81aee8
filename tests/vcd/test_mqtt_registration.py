"""MQTT registration (runtime.transport = "mqtt") against the local cell's cloudapi: the
extension, its API filters and its token; its rights, service links and bundle through the
extension's legacy admin service; the rights' URNs learned; --dry-run; idempotence; the token
file."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

import vcdext_hello.plugin as hello
from vcdext import Registrar, hookimpl
from vcdext.cli import main
from vcdext.errors import VcdExtError
from vcdext.settings import load_settings
from vcdext.testing import TestClient, make_runtime
from vcdext.vcd import VcdClient, register_services
from vcdext.vcd.extensions import ExtensionRegistration, register_extensions
from vcdext_cell import Cell
from vcdext_cell.seed import load_seed

HELLO = "urn:vcloud:extension-api:vcdext:hello:1.0.0"


@pytest.fixture
def cell() -> Iterator[Cell]:
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0) as c:
        yield c


def config(cell: Cell, tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "vcdext.toml"
    path.write_text(
        f'[runtime]\ntransport = "mqtt"\n'
        f'[mqtt]\ntoken_file = "{tmp_path / "secret" / "tokens.json"}"\n{extra}'
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
        f'[plugins]\nenabled = ["hello"]\n'
    )
    return path


def register(path: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["register", "--config", str(path), *args]) == 0
    return capsys.readouterr().out


def test_dry_run_plans_extension_filters_and_token_and_changes_nothing(cell, tmp_path, capsys):
    out = register(config(cell, tmp_path), capsys, "--dry-run")
    rows = [line.split(None, 3)[1:] for line in out.splitlines()[1:-1]]
    assert [
        "create",
        "extension",
        "vcdext/hello/1.0.0 (topic topic/extension/vcdext/hello/1.0.0/ext)",
    ] in rows
    for pattern in ("/api/hello", "/api/hello/echo", "/api/org/"):
        assert any(
            line.split()[1:3] == ["add", "api"] and pattern in line for line in out.splitlines()
        ), out
    assert any(row[:2] == ["create", "token"] for row in rows), out
    # Its right and service link, with the names the plugin declares (vCD's namespace for
    # the extension's service is known only once it exists).
    assert ["add", "right", "{io.vcdext.hello}:View Org Greeting"] in rows
    assert any(row[:2] == ["add", "service"] and "org/{resourceId}/hello" in row[2] for row in rows)
    assert any(row[:2] == ["upload", "bundle"] and "en_US" in row[2] for row in rows), out
    assert "dry run: 8 changes planned for 1 MQTT extension; nothing was changed" in out
    assert cell.extensions.extensions() == []
    assert not (tmp_path / "secret" / "tokens.json").exists()


def test_registration_then_a_second_run_plans_nothing(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    first = register(path, capsys)
    assert "vCD updated: 8 changes applied to 1 MQTT extension" in first
    (ext,) = cell.extensions.extensions()
    assert (ext.id, ext.enabled, ext.authorization_enabled) == (HELLO, True, False)
    assert ext.description.startswith("Greets vCloud Director users")
    patterns = sorted(f.pattern for f in cell.extensions.filters(HELLO))
    assert len(patterns) == 3
    assert cell.extensions.match("/api/hello") == ext
    assert cell.extensions.match("/api/org/0b1c/hello") == ext
    (token,) = cell.extensions.tokens()
    assert token.owner == "vcdext/hello/1.0.0"
    token_file = tmp_path / "secret" / "tokens.json"
    assert json.loads(token_file.read_text()) == {HELLO: token.secret}
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert token.secret not in first
    again = register(path, capsys, "--dry-run")
    assert "vCD is up to date (1 MQTT extension checked); nothing changed" in again
    assert register(path, capsys).strip().endswith("nothing changed")
    assert len(cell.extensions.tokens()) == 1


def test_a_lost_token_file_or_a_revoked_token_gets_a_new_token(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    (tmp_path / "secret" / "tokens.json").unlink()
    out = register(path, capsys, "--dry-run")
    assert "create  token" in out and "1 change planned" in out
    register(path, capsys)
    assert len(cell.extensions.tokens()) == 2
    stored = json.loads((tmp_path / "secret" / "tokens.json").read_text())[HELLO]
    assert stored == cell.extensions.tokens()[-1].secret


def test_changed_operations_and_description_are_the_minimal_change(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    stale = cell.extensions.filters(HELLO)[0]
    cell.extensions._filters.pop(stale.id)  # vCD lost one filter
    settings = load_settings(path, environ={})
    with VcdClient.from_settings(settings) as client:
        services = make_runtime(hello=hello, settings=settings).registry.services.values()
        result = register_extensions(client, services, settings)
    assert [(s.verb, s.subject, s.detail) for _, s in result.steps] == [
        ("add", "api filter", stale.pattern)
    ]


def test_vcd_before_api_35_has_no_mqtt_extensions(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    text = path.read_text().replace(
        'password = "vmware"', 'password = "vmware"\napi_version = "33.0"'
    )
    path.write_text(text)
    assert main(["register", "--config", str(path)]) != 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("vcdext: error:") and "API 35.0, vCD 10.2" in line
    settings = load_settings(path, environ={})
    with VcdClient.from_settings(settings) as client:
        client.connect()
        with pytest.raises(VcdExtError, match="API 35.0, vCD 10.2"):
            register_extensions(client, [], settings)


def hello_services(settings):
    return make_runtime(hello=hello, settings=settings).registry.services.values()


def legacy_service_id(cell: Cell) -> str:
    (ext,) = cell.extensions.extensions()
    return ext.uuid


def test_rights_and_service_links_go_to_the_extensions_legacy_service(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    uuid = legacy_service_id(cell)
    # The cell names the extension's admin service <vendor>.<name>; vCD prefixes the right
    # with that namespace, not with the plugin's.
    assert cell.state.service(uuid).namespace == "vcdext.hello"
    (right,) = cell.state.rights(uuid)
    assert right.name == "{vcdext.hello}:View Org Greeting"
    (link,) = cell.state.links(uuid)
    assert link.href == "{baseUri}org/{resourceId}/hello"
    settings = load_settings(path, environ={})
    with VcdClient.from_settings(settings) as client:
        result = register_extensions(client, hello_services(settings), settings, dry_run=True)
    assert result.steps == []
    # The runtime learns the URN under the name its operations require (and vCD's own).
    aliases = result.right_aliases()
    urn = right.urn
    assert aliases[hello.VIEW_ORG_GREETING] == (urn, urn.rsplit(":", 1)[-1])
    assert aliases["{vcdext.hello}:View Org Greeting"][0] == urn


def test_a_lost_right_is_planned_in_a_dry_run_and_added_again(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    uuid = legacy_service_id(cell)
    (right,) = cell.state.rights(uuid)
    cell.state.delete_right(right.id)
    out = register(path, capsys, "--dry-run")
    assert ["add", "right", "{vcdext.hello}:View Org Greeting"] in [
        line.split(None, 3)[1:] for line in out.splitlines()
    ], out
    assert "1 change planned" in out and cell.state.rights(uuid) == []
    out = register(path, capsys)
    assert "1 change applied" in out
    assert [r.name for r in cell.state.rights(uuid)] == ["{vcdext.hello}:View Org Greeting"]


def test_a_changed_right_is_updated_and_an_undeclared_one_is_left_with_a_note(
    cell, tmp_path, capsys
):
    path = config(cell, tmp_path)
    register(path, capsys)
    uuid = legacy_service_id(cell)
    (right,) = cell.state.rights(uuid)
    cell.state._rights[right.id] = replace(right, description="old text")
    cell.state.add_right(replace(right, id="0f7d", name="{vcdext.hello}:Gone", description=""))
    settings = load_settings(path, environ={})
    with VcdClient.from_settings(settings) as client:
        result = register_extensions(client, hello_services(settings), settings)
    assert [(s.verb, s.subject) for _, s in result.steps] == [("update", "right")]
    (step,) = [s for _, s in result.steps]
    assert step.detail.startswith("{vcdext.hello}:View Org Greeting: description: 'old text'")
    # The cell, like vCD from API 33.0, refuses PUT /admin/right: a warning, not a failure.
    (warning,) = result.warnings
    assert "could not update right {vcdext.hello}:View Org Greeting (405" in warning
    assert result.notes == [
        "right {vcdext.hello}:Gone is no longer declared; left in vCD (roles may hold it)"
    ]
    assert "note: right {vcdext.hello}:Gone" in result.report()


def test_a_deleted_extension_leaves_its_rights_and_a_new_one_adopts_them(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    (before,) = cell.state.rights(legacy_service_id(cell))
    login = requests.post(
        f"{cell.url}/cloudapi/1.0.0/sessions",
        auth=("administrator@System", "vmware"),
        headers={"Accept": "application/json;version=38.0"},
        timeout=10,
    )
    token = login.headers["X-VMWARE-VCLOUD-ACCESS-TOKEN"]
    admin = {"Authorization": f"Bearer {token}", "Accept": "application/json;version=38.0"}
    gone = requests.delete(
        f"{cell.url}/cloudapi/1.0.0/extensions/api/{HELLO}", headers=admin, timeout=10
    )
    assert gone.status_code == 204
    assert cell.state.right(before.id).service_id is None  # the right stays, as in vCD
    register(path, capsys)
    (after,) = cell.state.rights(legacy_service_id(cell))
    assert (after.name, after.urn) == (before.name, before.urn)


def test_the_bundle_goes_to_the_legacy_service_and_its_digest_to_the_extension(
    cell, tmp_path, capsys
):
    path = config(cell, tmp_path)
    register(path, capsys)
    uuid = legacy_service_id(cell)
    bundles = cell.state.bundles(uuid)
    assert {"en_US", "de_DE", "fr_FR"} <= set(bundles)
    assert bundles["en_US"]["RIGHT_VIEW_ORG_GREETING"] == "View Org Greeting"
    (ext,) = cell.extensions.extensions()
    digest = ext.description.rsplit("bundle sha256:", 1)[1].rstrip("]")
    assert len(digest) >= 8
    # vCD lost the digest (someone edited the description): the bundle is uploaded again,
    # then the digest recorded; nothing else changes.
    cell.extensions._extensions[ext.id] = replace(
        ext, description=ext.description.replace(f"; bundle sha256:{digest}", "")
    )
    settings = load_settings(path, environ={})
    runtime = make_runtime(hello=hello, settings=settings)
    with VcdClient.from_settings(settings) as client:
        result = register_extensions(
            client,
            runtime.registry.services.values(),
            settings,
            messages=runtime.bundle_messages(),
        )
    assert [(s.verb, s.subject) for _, s in result.steps] == [("upload", "bundle")]
    (ext,) = cell.extensions.extensions()
    assert ext.description.endswith(f"bundle sha256:{digest}]")


class Viewer:
    """A service whose operations need its own right and one of vCD's."""

    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.service(name="viewer", namespace="io.example.viewer", vendor="acme")
        registrar.add_right("Own")
        registrar.add_operation("GET", "/api/viewer", lambda request: "<V/>", rights=["vApp: View"])
        registrar.add_operation("GET", "/api/viewer/own", lambda request: "<O/>", rights=["Own"])


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
rights = ["vApp: View", "{acme.viewer}:Own"]
"""


def test_own_and_vcds_rights_are_learned_so_operations_pass_over_mqtt(tmp_path):
    seed = tmp_path / "seed.toml"
    seed.write_text(SEED)
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0, seed=load_seed(seed)) as cell:
        settings = load_settings(config(cell, tmp_path), environ={})
        runtime = make_runtime(viewer=Viewer(), settings=settings)
        result = register_services(runtime, settings)
        assert isinstance(result, ExtensionRegistration)
        own = next(r for r in cell.state.rights() if r.name == "{acme.viewer}:Own")
        vapp_view = next(r for r in cell.state.rights() if r.name == "vApp: View")
        assert result.right_ids["{io.example.viewer}:Own"] == own.urn
        assert result.right_ids["vApp: View"] == vapp_view.urn
        # carol's security context, as the cell (and vCD) send it over MQTT: URNs
        sent = cell.state.rights_of(cell.seed.org_named("acme").users[0], "urn")
        assert sorted(sent) == sorted([own.urn, vapp_view.urn])
    client = TestClient(runtime)
    assert client.get("/api/viewer/own", rights=sent).status == 403
    assert client.get("/api/viewer", rights=sent).status == 403
    runtime.dispatcher.learn_right_ids(result.right_aliases())
    assert client.get("/api/viewer/own", rights=sent).status == 200
    assert client.get("/api/viewer", rights=sent).status == 200
    assert client.get("/api/viewer/own", rights=[vapp_view.urn]).status == 403


def test_a_refused_bundle_is_a_warning_and_is_tried_again(tmp_path, capsys, monkeypatch):
    from vcdext.errors import BadRequest
    from vcdext_cell.routes_extension import ExtensionRoutes

    def refuse(self, call, id):
        raise BadRequest("no bundles for this service")

    monkeypatch.setattr(ExtensionRoutes, "upload_bundle", refuse)
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0) as cell:
        path = config(cell, tmp_path)
        out = register(path, capsys)
        assert "warning: vCD refused the localization bundle of " + HELLO + " (400" in out
        (ext,) = cell.extensions.extensions()
        assert "bundle sha256" not in ext.description  # not recorded: the next run tries again
        assert [r.name for r in cell.state.rights(ext.uuid)] == ["{vcdext.hello}:View Org Greeting"]
        again = register(path, capsys, "--dry-run")
        assert "1 change planned" in again and "upload  bundle" in again


def test_a_right_vcd_prefixes_otherwise_is_matched_by_its_short_name(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    (right,) = cell.state.rights(legacy_service_id(cell))
    renamed = replace(right, name="{urn:vendor:vcdext}:View Org Greeting")
    cell.state._rights[right.id] = renamed
    settings = load_settings(path, environ={})
    with VcdClient.from_settings(settings) as client:
        result = register_extensions(client, hello_services(settings), settings)
    assert result.steps == []  # not added a second time
    assert result.right_aliases()[hello.VIEW_ORG_GREETING][0] == right.urn
    assert result.right_ids["{urn:vendor:vcdext}:View Org Greeting"] == right.urn
