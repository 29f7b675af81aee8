"""MQTT registration (runtime.transport = "mqtt") against the local cell's cloudapi: the
extension, its API filters and its token; its rights, service links and bundle through the
extension's legacy admin service; the rights' URNs learned; --dry-run; idempotence; the token
file; --prune and unregister (the AMQP rules: only extensions marked as vcdext's, only when no
longer declared)."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

import vcdext_backup.plugin as backup
import vcdext_hello.plugin as hello
from tests.cell.support import Client
from tests.support.seeds import two_tenants
from vcdext import Registrar, hookimpl
from vcdext.app import _register_with_vcd, create_runtime
from vcdext.cli import main
from vcdext.errors import VcdExtError
from vcdext.settings import load_settings
from vcdext.testing import TestClient, make_runtime
from vcdext.vcd import VcdClient, register_services
from vcdext.vcd.authorization import VcdAuthorizer
from vcdext.vcd.extension_prune import HeldExtension, plan_extension_prune, select_extension
from vcdext.vcd.extensions import ExtensionRegistration, register_extensions
from vcdext.vcloud.query import read_api_definition_record
from vcdext_cell import Cell
from vcdext_cell.seed import load_seed

HELLO = "urn:vcloud:extension-api:vcdext:hello:1.0.0"


@pytest.fixture
def cell() -> Iterator[Cell]:
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0) as c:
        yield c


def config(cell: Cell, tmp_path: Path, extra: str = "", plugins: str = "") -> Path:
    path = tmp_path / "vcdext.toml"
    path.write_text(
        f'[runtime]\ntransport = "mqtt"\n'
        f'[mqtt]\ntoken_file = "{tmp_path / "secret" / "tokens.json"}"\n{extra}'
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
        f'[plugins]\nenabled = ["hello"]\n{plugins}'
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
    # Its API definition, named after the service, at {baseUri} + its first path.
    assert any(
        re.split(r"\s{2,}", line)[1:] == ["add", "api definition", "hello at {baseUri}hello"]
        for line in out.splitlines()
    ), out
    assert "dry run: 9 changes planned for 1 MQTT extension; nothing was changed" in out
    assert cell.extensions.extensions() == []
    assert not (tmp_path / "secret" / "tokens.json").exists()


def test_registration_then_a_second_run_plans_nothing(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    first = register(path, capsys)
    assert "vCD updated: 9 changes applied to 1 MQTT extension" in first
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


def test_the_api_definition_goes_to_the_extensions_legacy_service(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    uuid = legacy_service_id(cell)
    (definition,) = cell.state.definitions(uuid)
    # Named and namespaced as the plugin's (as over AMQP), not after the admin service.
    assert (definition.name, definition.entry_point, definition.namespace) == (
        "hello",
        "{baseUri}hello",
        "io.vcdext.hello",
    )
    # What a client finds from the extension: its Link header names the admin service's
    # apidefinitions, whose records hold it.
    settings = load_settings(path, environ={})
    with VcdClient.from_settings(settings) as client:
        client.connect()
        _, headers = client.cloudapi("GET", f"1.0.0/extensions/api/{HELLO}")
        (href,) = re.findall(r"<([^>]*/apidefinitions)>", headers["Link"])
        found = [read_api_definition_record(r) for r in client.records(href)]
    assert [(d.value.name, d.value.entry_point) for d in found if d] == [
        ("hello", "{baseUri}hello")
    ]
    # Someone changed it in vCD (definitions cannot be edited): removed and added again.
    cell.state._definitions[definition.id] = replace(definition, entry_point="{baseUri}old")
    out = register(path, capsys, "--dry-run")
    rows = [re.split(r"\s{2,}", line)[1:] for line in out.splitlines()[1:-1]]
    assert rows == [
        ["remove", "api definition", "hello at {baseUri}old"],
        ["add", "api definition", "hello at {baseUri}hello"],
    ], out
    assert cell.state.definitions(uuid)[0].entry_point == "{baseUri}old"
    assert "2 changes applied" in register(path, capsys)
    assert [d.entry_point for d in cell.state.definitions(uuid)] == ["{baseUri}hello"]
    assert register(path, capsys).strip().endswith("nothing changed")


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


GOOD = "urn:vcloud:extension-api:io.example.good:good:1.0.0"
WITH_GOOD = 'modules = ["tests.fake_plugins.good"]\n'


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, object]]:
    """Every cloudapi call the client makes: (method, path, body)."""
    seen: list[tuple[str, str, object]] = []
    original = VcdClient.cloudapi

    def recording(self, method, path, body=None, *, params=None):  # type: ignore[no-untyped-def]
        seen.append((method, path, body))
        return original(self, method, path, body, params=params)

    monkeypatch.setattr(VcdClient, "cloudapi", recording)
    return seen


def two_then_one(cell: Cell, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """hello and good registered over MQTT; the returned config enables hello only."""
    register(config(cell, tmp_path, plugins=WITH_GOOD), capsys)
    assert {e.id for e in cell.extensions.extensions()} == {HELLO, GOOD}
    assert [f.pattern for f in cell.extensions.filters(GOOD)] == ["/api/good"]
    return config(cell, tmp_path)


def test_registered_extensions_carry_the_vcdext_marker(cell, tmp_path, capsys):
    register(config(cell, tmp_path), capsys)
    (ext,) = cell.extensions.extensions()
    # the marker line, with the digest of the bundle uploaded with it
    assert re.search(r"\n\[managed by vcdext; bundle sha256:[0-9a-f]{8,64}\]\Z", ext.description)


def test_a_dropped_plugin_is_left_alone_without_prune(cell, tmp_path, capsys):
    only_hello = two_then_one(cell, tmp_path, capsys)
    out = register(only_hello, capsys)
    assert "nothing changed" in out and "warning" not in out
    assert {e.id for e in cell.extensions.extensions()} == {HELLO, GOOD}


def test_prune_dry_run_lists_the_deletions_and_changes_nothing(cell, tmp_path, capsys, calls):
    only_hello = two_then_one(cell, tmp_path, capsys)
    calls.clear()
    out = register(only_hello, capsys, "--prune", "--dry-run")
    rows = [line.split(None, 3) for line in out.splitlines() if line.startswith(GOOD)]
    assert [r[1:3] for r in rows] == [
        ["delete", "extension"],
        ["remove", "api"],
        ["delete", "token"],
    ], out
    assert "io.example.good/good/1.0.0 (disable, then delete; --prune)" in rows[0][3]
    assert rows[1][3] == "filter  /api/good"
    assert "dry run: 3 changes planned for 2 MQTT extensions; nothing was changed" in out
    assert all(method == "GET" for method, _, _ in calls), calls
    assert {e.id for e in cell.extensions.extensions()} == {HELLO, GOOD}
    assert len(cell.extensions.filters(GOOD)) == 1
    assert {t.extension_id for t in cell.extensions.tokens()} == {HELLO, GOOD}
    assert GOOD in json.loads((tmp_path / "secret" / "tokens.json").read_text())
    assert "warning" not in out


def test_prune_deletes_the_extension_its_filters_and_its_token(cell, tmp_path, capsys, calls):
    only_hello = two_then_one(cell, tmp_path, capsys)
    (good_filter,) = cell.extensions.filters(GOOD)
    (good_token,) = [t for t in cell.extensions.tokens() if t.extension_id == GOOD]
    calls.clear()
    out = register(only_hello, capsys, "--prune")
    assert "vCD updated: 3 changes applied to 2 MQTT extensions" in out
    writes = [(m, p) for m, p, _ in calls if m != "GET"]
    assert writes == [
        ("PUT", f"1.0.0/extensions/api/{GOOD}"),  # disabled first, as CSE does
        ("DELETE", f"1.0.0/apiFilters/{good_filter.id}"),
        ("DELETE", f"1.0.0/tokens/{good_token.id}"),
        ("DELETE", f"1.0.0/extensions/api/{GOOD}"),
    ]
    assert next(b for m, _, b in calls if m == "PUT")["enabled"] is False  # type: ignore[index]
    assert [e.id for e in cell.extensions.extensions()] == [HELLO]
    assert cell.extensions.filters(GOOD) == []
    assert [t.extension_id for t in cell.extensions.tokens()] == [HELLO]
    assert good_token.secret not in out
    stored = json.loads((tmp_path / "secret" / "tokens.json").read_text())
    assert set(stored) == {HELLO}, "the dead token stays in the token file"
    again = register(only_hello, capsys, "--prune", "--dry-run")
    assert "vCD is up to date (1 MQTT extension checked); nothing changed" in again
    assert register(only_hello, capsys, "--prune").strip().endswith("nothing changed")
    assert len(cell.extensions.filters(HELLO)) == 3


def test_prune_leaves_extensions_vcdext_did_not_register(cell, tmp_path, capsys):
    path = config(cell, tmp_path)
    register(path, capsys)
    settings = load_settings(path, environ={})
    foreign = {"vendor": "acme", "name": "billing", "version": "2.0", "description": "theirs"}
    with VcdClient.from_settings(settings) as client:
        client.connect()
        client.cloudapi("POST", "1.0.0/extensions/api", foreign)
    out = register(path, capsys, "--prune")
    assert "nothing changed" in out
    assert len(cell.extensions.extensions()) == 2


def test_prune_deletes_the_old_version_after_extension_version_changes(cell, tmp_path, capsys):
    register(config(cell, tmp_path), capsys)
    bumped = config(cell, tmp_path, extra='extension_version = "2.0.0"\n')
    out = register(bumped, capsys, "--prune")
    assert "vcdext/hello/1.0.0 (disable, then delete; --prune)" in out
    assert [e.id for e in cell.extensions.extensions()] == [
        "urn:vcloud:extension-api:vcdext:hello:2.0.0"
    ]


def test_unregister_deletes_the_extension_its_filters_and_token(cell, tmp_path, capsys):
    path = config(cell, tmp_path, plugins=WITH_GOOD)
    register(path, capsys)
    assert main(["unregister", "hello", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"disabled and deleted MQTT extension {HELLO}" in out
    assert "remove  api filter" in out and "delete  token" in out
    assert [e.id for e in cell.extensions.extensions()] == [GOOD]
    assert cell.extensions.filters(HELLO) == []
    assert [t.extension_id for t in cell.extensions.tokens()] == [GOOD]
    assert set(json.loads((tmp_path / "secret" / "tokens.json").read_text())) == {GOOD}
    assert main(["unregister", "hello", "--config", str(path)]) == 0
    assert "no MQTT extension vcdext/hello/1.0.0" in capsys.readouterr().out
    # by namespace, and by vendor/name/version for an extension no plugin declares
    assert main(["unregister", "io.example.good", "--config", str(path)]) == 0
    assert cell.extensions.extensions() == []
    settings = load_settings(path, environ={})
    with VcdClient.from_settings(settings) as client:
        client.connect()
        client.cloudapi(
            "POST", "1.0.0/extensions/api", {"vendor": "acme", "name": "billing", "version": "2"}
        )
    assert main(["unregister", "acme/billing/2", "--config", str(path)]) == 0
    assert cell.extensions.extensions() == []


def held(vendor: str, name: str, version: str, *, managed: bool = True) -> HeldExtension:
    ext_id = f"urn:vcloud:extension-api:{vendor}:{name}:{version}"
    return HeldExtension(ext_id, vendor, name, version, True, managed, {})


def test_plan_extension_prune_takes_only_managed_extensions_not_kept():
    gone, kept, foreign = (
        held("a", "gone", "1"),
        held("a", "kept", "1"),
        held("b", "x", "1", managed=False),
    )
    assert plan_extension_prune([kept, foreign, gone], [("a", "kept", "1")]) == [gone]


def test_select_extension_by_id_owner_or_unique_name():
    one, two, other = held("a", "svc", "1"), held("b", "svc", "1"), held("a", "solo", "1")
    everything = [one, two, other]
    assert select_extension(everything, two.id) == two
    assert select_extension(everything, "a/svc/1") == one
    assert select_extension(everything, "solo") == other
    assert select_extension(everything, "none") is None
    with pytest.raises(VcdExtError, match="2 MQTT extensions are named 'svc'"):
        select_extension(everything, "svc")


def test_amqp_prune_leaves_the_admin_service_behind_an_mqtt_extension(cell, tmp_path, capsys):
    """An MQTT extension's legacy admin service holds its rights and links and carries its
    description, vcdext's marker included: an AMQP `--prune` (another instance, or after
    switching transports) must not take it for a dropped AMQP service."""
    register(config(cell, tmp_path), capsys)  # hello over MQTT
    (ext,) = cell.extensions.extensions()
    behind = [s for s in cell.services() if s.id == ext.uuid]
    assert behind and "managed by vcdext" in behind[0].description
    amqp = tmp_path / "amqp.toml"
    amqp.write_text(
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
        '[plugins]\nenabled = []\nmodules = ["tests.fake_plugins.good"]\n'
    )
    out = register(amqp, capsys, "--prune")
    assert ext.uuid in {s.id for s in cell.services()}, out
    assert [e.id for e in cell.extensions.extensions()] == [HELLO]


def test_prune_is_refused_while_an_enabled_plugin_failed_to_load(cell, tmp_path, capsys):
    """A plugin that did not load (a missing dependency after an upgrade) looks dropped:
    pruning then would delete its extension under every instance still serving it."""
    register(config(cell, tmp_path, plugins=WITH_GOOD), capsys)
    broken = config(cell, tmp_path, plugins='modules = ["good=tests.fake_plugins.broken"]\n')
    assert main(["register", "--config", str(broken), "--prune"]) == 2
    err = capsys.readouterr().err
    assert "--prune refused" in err and "good" in err
    assert {e.id for e in cell.extensions.extensions()} == {HELLO, GOOD}
    assert "nothing changed" in register(broken, capsys)  # without --prune: registers the rest


def test_amqp_prune_stops_when_vcd_refuses_the_extension_list(cell, tmp_path, capsys, monkeypatch):
    """Without the list, the admin services behind MQTT extensions cannot be told from
    dropped AMQP services: nothing is pruned (a 404, vCD before 10.2, means there are none)."""
    from vcdext.vcd.errors import VcdApiError

    register(config(cell, tmp_path), capsys)
    (ext,) = cell.extensions.extensions()
    original = VcdClient.cloudapi

    def refusing(self, method, path, body=None, *, params=None):  # type: ignore[no-untyped-def]
        if method == "GET" and path == "1.0.0/extensions/api":
            raise VcdApiError(method=method, url=path, status=403, minor_code="FORBIDDEN")
        return original(self, method, path, body, params=params)

    monkeypatch.setattr(VcdClient, "cloudapi", refusing)
    amqp = tmp_path / "amqp.toml"
    amqp.write_text(
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
        '[plugins]\nenabled = []\nmodules = ["tests.fake_plugins.good"]\n'
    )
    assert main(["register", "--config", str(amqp), "--prune"]) == 2
    assert "cannot tell which admin services" in capsys.readouterr().err
    assert ext.uuid in {s.id for s in cell.services()}


def test_a_delete_whose_answer_was_lost_counts_as_done(cell, tmp_path, capsys, monkeypatch):
    """The client retries a DELETE whose answer was lost and finds the object gone (404):
    that is the deletion done, and the extension's token still leaves the token file."""
    from vcdext.vcd.errors import VcdApiError

    register(config(cell, tmp_path, plugins=WITH_GOOD), capsys)
    original = VcdClient.cloudapi

    def lossy(self, method, path, body=None, *, params=None):  # type: ignore[no-untyped-def]
        answer = original(self, method, path, body, params=params)
        if method == "DELETE" and path.startswith("1.0.0/extensions/api/"):
            raise VcdApiError(method=method, url=path, status=404, minor_code="NOT_FOUND")
        return answer

    monkeypatch.setattr(VcdClient, "cloudapi", lossy)
    register(config(cell, tmp_path), capsys, "--prune")
    assert [e.id for e in cell.extensions.extensions()] == [HELLO]
    stored = json.loads((tmp_path / "secret" / "tokens.json").read_text())
    assert set(stored) == {HELLO}


# -- vCD's authorization framework: the backup plugin declares a resource class ----------------

BACKUP = "urn:vcloud:extension-api:Example:backup:1.0.0"


def backup_config(cell: Cell, tmp_path: Path) -> Path:
    path = config(cell, tmp_path)
    path.write_text(path.read_text().replace('enabled = ["hello"]', 'enabled = ["backup"]'))
    return path


def plan_rows(out: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line)[1:] for line in out.splitlines()[1:-1]]


def test_resource_classes_go_to_the_admin_service_and_authorization_is_enabled_last(
    cell, tmp_path, capsys
):
    path = backup_config(cell, tmp_path)
    rows = plan_rows(register(path, capsys, "--dry-run"))
    classes = [r for r in rows if r[1].startswith(("resource class", "acl rule"))]
    assert classes[:2] == [
        ["add", "resource class", f"Backup ({backup.BACKUP_TYPE})"],
        ["add", "resource class action", "Backup: view = GET /api/backup/(?<id>[^/]+)"],
    ], rows
    # Before the extension exists, a rule names the right as the plugin does.
    assert [
        "add",
        "acl rule",
        "Backup/view: viewers = holders of {org.example.vcd.backup}:View Backups, "
        "organization Shared, resources Shared",
    ] in classes
    assert len(classes) == 7  # the class, 2 actions, 4 rules
    # After the rights its rules name, and authorization on only after all of it.
    assert rows.index(classes[0]) > max(i for i, r in enumerate(rows) if r[1] == "right")
    assert rows[-1] == ["update", "extension", "authorizationEnabled: False → True"]
    assert cell.extensions.extensions() == []

    register(path, capsys)
    (ext,) = cell.extensions.extensions()
    assert (ext.id, ext.authorization_enabled) == (BACKUP, True)
    assert cell.state.service(ext.uuid).authorization_enabled
    (resource_class,) = cell.state.resource_classes(ext.uuid)
    assert resource_class.name == "Backup"
    actions = {a.name: a for a in cell.state.actions(resource_class.id)}
    assert set(actions) == {"view", "delete"}
    rules = {r.name: r for r in cell.state.rules(actions["view"].id)}
    assert set(rules) == {"viewers", "system administrators"}
    # The rule names the right as vCD holds it on the extension's admin service.
    view = next(r for r in cell.state.rights(ext.uuid) if r.name.endswith(":View Backups"))
    principal = rules["viewers"].principal
    assert principal is not None and principal.entity is not None
    assert principal.entity.href.rstrip("/").endswith(view.id)
    assert register(path, capsys, "--dry-run").strip().endswith("nothing changed")
    assert register(path, capsys).strip().endswith("nothing changed")


def test_a_lost_acl_rule_is_added_again_and_authorization_stays_on(cell, tmp_path, capsys):
    path = backup_config(cell, tmp_path)
    register(path, capsys)
    (ext,) = cell.extensions.extensions()
    (resource_class,) = cell.state.resource_classes(ext.uuid)
    view = next(a for a in cell.state.actions(resource_class.id) if a.name == "view")
    (viewers,) = [r for r in cell.state.rules(view.id) if r.name == "viewers"]
    cell.state.delete_rule(viewers.id)
    rows = plan_rows(register(path, capsys, "--dry-run"))
    assert [r[:2] for r in rows] == [["add", "acl rule"]], rows
    assert "1 change applied" in register(path, capsys)
    assert {r.name for r in cell.state.rules(view.id)} == {"viewers", "system administrators"}
    assert cell.extensions.extensions()[0].authorization_enabled


def test_authorization_is_switched_off_first_when_classes_are_no_longer_declared(
    cell, tmp_path, capsys, monkeypatch
):
    path = backup_config(cell, tmp_path)
    register(path, capsys)
    monkeypatch.setattr(backup.service, "_resource_classes", [])
    rows = plan_rows(register(path, capsys, "--dry-run"))
    assert rows[0] == ["update", "extension", "authorizationEnabled: True → False"], rows
    assert ["remove", "resource class", f"Backup ({backup.BACKUP_TYPE})"] in rows
    register(path, capsys)
    (ext,) = cell.extensions.extensions()
    assert not ext.authorization_enabled
    assert cell.state.resource_classes(ext.uuid) == []
    assert register(path, capsys).strip().endswith("nothing changed")


def test_the_cell_applies_an_mqtt_extensions_acl_rules_before_forwarding(
    tmp_path, capsys, assert_valid_vcd_xml
):
    seed = tmp_path / "seed.toml"
    seed.write_text(two_tenants())
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0, seed=load_seed(seed)) as cell:
        register(backup_config(cell, tmp_path), capsys)
        bob = Client(cell.url, assert_valid_vcd_xml).login("bob@acme", "vmware")
        refused = bob.get("/api/backup/b1")
        assert refused.status_code == 403
        assert b"No ACL rule of the extension allows this request" in refused.content
        admin = Client(cell.url, assert_valid_vcd_xml).login("administrator@System", "vmware")
        # allowed by the System administrators rule: forwarded (the cell has no broker here)
        assert admin.get("/api/backup/b1").status_code == 500


def test_the_authorization_check_finds_the_extensions_admin_service(
    tmp_path, capsys, assert_valid_vcd_xml
):
    seed = tmp_path / "seed.toml"
    seed.write_text(two_tenants())
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0, seed=load_seed(seed)) as cell:
        path = backup_config(cell, tmp_path)
        settings = load_settings(path, environ={})
        runtime = make_runtime(backup=backup, settings=settings)
        services = runtime.registry.services.values()
        with VcdClient.from_settings(settings) as client:
            result = register_extensions(client, services, settings)
            # vCD's namespace of the admin service, not the plugin's
            assert result.namespaces == {"backup": "Example.backup"}
            authorizer = VcdAuthorizer(client, result.namespaces)
            admin = cell.user("administrator", "System")
            bob = cell.user("bob", "acme")
            assert authorizer.is_authorized(
                "backup", f"urn:vcloud:user:{admin.id}", "GET", "/api/backup/b1"
            )
            assert not authorizer.is_authorized(
                "backup", f"urn:vcloud:user:{bob.id}", "GET", "/api/backup/b1"
            )


def test_vcdext_run_over_mqtt_connects_handlers_to_the_admin_services_check(cell, tmp_path):
    settings = load_settings(backup_config(cell, tmp_path), environ={})
    runtime = create_runtime(settings)
    assert _register_with_vcd(runtime)
    authorizer = runtime.dispatcher.authorizer
    assert isinstance(authorizer, VcdAuthorizer)
    assert authorizer.namespaces == {"backup": "Example.backup"}
