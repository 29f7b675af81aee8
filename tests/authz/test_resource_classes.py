"""Resource classes, actions and ACL rules: declared by a plugin, registered with vCD (the
local cell) idempotently, shown by --dry-run, and checked at load (issue 11, item 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vcdext import Acl, PluginError, Registrar, ResourceAction, Service, hookimpl
from vcdext.cli import main
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime
from vcdext.vcd import register_services
from vcdext.vcd.plan import AddAclRule, RemoveAclRule
from vcdext_cell import Cell

NS = "io.example.vault"


def vault(rule_org: str = "Shared", extra_principal: str = "*") -> Service:
    service = Service("vault", namespace=NS, vendor="Example")
    service.right("Open Vault")

    @service.operation("GET", "/api/vault/{box}")
    def get_box(request: object, box: str) -> str:
        return "<Box/>"

    service.resource_class(
        "Box",
        mime_type="application/vnd.example.box+xml",
        url_template="{baseUri}vault/{resourceId}",
        nid="io.example.vault",
        urn_pattern="box:(?<id>.+)",
        actions=[
            ResourceAction(
                "Open Box",
                "GET",
                "/api/vault/(?<id>[^/]+)",
                acl=[
                    Acl("openers", principal="Open Vault", organization=rule_org),
                    Acl("anyone", principal=extra_principal, organization="Shared"),
                ],
            )
        ],
    )
    return service


def plugin(service: Service) -> object:
    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_service(service)

    return Plugin()


@pytest.fixture
def cell() -> Iterator[Cell]:
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0) as c:
        yield c


def settings_for(cell: Cell, tmp_path: Path) -> Settings:
    path = tmp_path / "vcdext.toml"
    path.write_text(f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n')
    return load_settings(path, environ={})


def snapshot(cell: Cell) -> dict[str, object]:
    service = cell.service(NS)
    assert service is not None
    state = cell.state
    classes = state.resource_classes(service.id)
    actions = [a for c in classes for a in state.actions(c.id)]
    rules = [r for a in actions for r in state.rules(a.id)]
    action_rows = [(a.id, a.name, a.http_method, a.url_pattern) for a in actions]
    rule_rows = [
        (
            r.id,
            r.name,
            r.organization.access if r.organization else "",
            r.principal.access if r.principal else "",
            r.principal.entity.href if r.principal and r.principal.entity else "",
        )
        for r in rules
    ]
    return {
        "enabled": service.authorization_enabled,
        "classes": [(c.id, c.name, c.mime_type, c.urn_pattern) for c in classes],
        "actions": sorted(action_rows, key=lambda a: a[1:]),
        "rules": sorted(rule_rows, key=lambda r: r[1:]),
    }


def test_registration_creates_classes_actions_rules_and_enables_authorization(cell, tmp_path):
    settings = settings_for(cell, tmp_path)
    runtime = make_runtime(vault=plugin(vault()), settings=settings)
    dry = register_services(runtime, settings, dry_run=True)
    table = dry.plan.table()
    assert "resource class" in table and "Box (application/vnd.example.box+xml)" in table
    assert "Box: Open Box = GET /api/vault/(?<id>[^/]+)" in table
    assert f"openers = holders of {{{NS}}}:Open Vault, organization Shared" in table
    assert "authorization enabled: false → true" in table
    assert cell.service(NS) is None, "the dry run changed something"

    result = register_services(runtime, settings)
    assert result.changed
    got = snapshot(cell)
    assert got["enabled"] is True
    assert [c[1:] for c in got["classes"]] == [
        ("Box", "application/vnd.example.box+xml", "box:(?<id>.+)")
    ]
    assert [a[1:] for a in got["actions"]] == [("Open Box", "GET", "/api/vault/(?<id>[^/]+)")]
    right = next(r for r in cell.state.rights() if r.name == f"{{{NS}}}:Open Vault")
    assert [r[1:] for r in got["rules"]] == [
        ("anyone", "Shared", "Shared", ""),
        ("openers", "Shared", "Entity", f"{cell.url}/api/admin/right/{right.id}"),
    ]

    again = register_services(runtime, settings)
    assert again.plan.is_empty, again.plan.table()
    assert snapshot(cell) == got


def test_a_changed_rule_is_replaced_and_nothing_else(cell, tmp_path):
    settings = settings_for(cell, tmp_path)
    register_services(make_runtime(vault=plugin(vault()), settings=settings), settings)
    before = snapshot(cell)
    changed = make_runtime(vault=plugin(vault(rule_org="Published")), settings=settings)
    result = register_services(changed, settings)
    kinds = sorted(type(a).__name__ for _, a in result.plan.actions)
    assert kinds == ["AddAclRule", "RemoveAclRule"]
    removed = next(a for _, a in result.plan.actions if isinstance(a, RemoveAclRule))
    added = next(a for _, a in result.plan.actions if isinstance(a, AddAclRule))
    assert removed.name == added.rule.name == "openers"
    after = snapshot(cell)
    assert after["classes"] == before["classes"] and after["actions"] == before["actions"]
    assert ("Published", "Entity") in {(r[2], r[3]) for r in after["rules"]}
    assert register_services(changed, settings).plan.is_empty


def test_a_service_without_classes_keeps_authorization_off_and_loses_them(cell, tmp_path):
    settings = settings_for(cell, tmp_path)
    register_services(make_runtime(vault=plugin(vault()), settings=settings), settings)
    plain = Service("vault", namespace=NS, vendor="Example")
    plain.right("Open Vault")
    plain.operation("GET", "/api/vault/{box}")(lambda request, box: "<Box/>")
    result = register_services(make_runtime(vault=plugin(plain), settings=settings), settings)
    assert "authorization enabled: true → false" in result.plan.table()
    got = snapshot(cell)
    assert got["enabled"] is False and got["classes"] == [] and got["actions"] == []


def test_register_dry_run_command_lists_them(cell, tmp_path, capsys, monkeypatch):
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f'[vcd]\nurl = "{cell.url}"\nusername = "administrator"\npassword = "vmware"\n'
        '[plugins]\nenabled = ["hello"]\nmodules = ["tests.fake_plugins.vault"]\n'
    )
    assert main(["register", "--dry-run", "-c", str(config)]) == 0
    out = capsys.readouterr().out
    assert "acl rule" in out and "resource class action" in out


def test_load_time_checks():
    with pytest.raises(ValueError, match="at least one Acl"):
        ResourceAction("x", "GET", "/api/x", acl=[])
    with pytest.raises(ValueError, match="method must be one of"):
        ResourceAction("x", "PATCH", "/api/x", acl=[Acl("a")])
    with pytest.raises(ValueError, match="not a valid regular expression"):
        ResourceAction("x", "GET", "/api/x/(", acl=[Acl("a")])
    with pytest.raises(ValueError, match="organization must be one of"):
        Acl("a", organization="Everyone")
    service = Service("s", namespace="io.example.s")
    with pytest.raises(ValueError, match="at least one action"):
        service.resource_class("C", actions=[])

    undeclared = Service("u", namespace="io.example.u")
    undeclared.resource_class(
        "C", actions=[ResourceAction("a", "GET", "/api/u", acl=[Acl("r", principal="Nope")])]
    )
    with pytest.raises(PluginError, match="ACL rule names right 'Nope'"):
        make_runtime(u=plugin(undeclared), settings=Settings())
