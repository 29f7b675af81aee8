"""Registration against the local cell over HTTP (integration of the client and the cell).

The issue's "must show" list, end to end: a fresh registration creates the service, filters,
links and rights; a second run changes nothing; changed operations yield the minimal change;
a plugin removed from `enabled` is left alone unless --prune; a wrong password or an
unreachable vCD is one clear line naming the URL and user.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcdext import Registrar, hookimpl
from vcdext.cli import main
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime
from vcdext.vcd import register_services
from vcdext.vcd.plan import AddFilter, RemoveFilter
from vcdext_cell import Cell

PASSWORD = "vmware"


@pytest.fixture
def cell() -> Iterator[Cell]:
    with Cell(amqp_url="memory://", host="127.0.0.1", port=0) as c:
        yield c


def settings_for(
    cell: Cell, tmp_path: Path, plugins: str = "", password: str = PASSWORD, url: str | None = None
) -> Path:
    path = tmp_path / "vcdext.toml"
    path.write_text(
        f'[vcd]\nurl = "{url or cell.url}"\nusername = "administrator"\n'
        f'password = "{password}"\n[plugins]\n{plugins}\n'
    )
    return path


def in_cell(cell: Cell, namespace: str) -> dict[str, object]:
    service = cell.service(namespace)
    assert service is not None, f"{namespace} is not registered"
    state = cell.state
    return {
        "service": service,
        "filters": sorted(f.url_pattern or "" for f in state.filters(service.id)),
        "links": sorted((x.rel, x.href, x.resource_type) for x in state.links(service.id)),
        "rights": sorted(r.name for r in state.rights(service.id)),
    }


def test_fresh_registration_then_a_second_run_changes_nothing(cell, tmp_path, capsys):
    config = settings_for(cell, tmp_path, 'enabled = ["hello"]')
    assert main(["register", "--config", str(config)]) == 0
    first = capsys.readouterr().out
    got = in_cell(cell, "io.vcdext.hello")
    assert got["service"].enabled
    assert got["service"].routing_key == "io.vcdext.hello"
    assert got["service"].exchange == "vcdext"
    assert got["filters"] == ["/api/hello", "/api/hello/echo", "/api/org/[^/]+/hello"]
    assert got["links"] == [
        ("down", "{baseUri}org/{resourceId}/hello", "application/vnd.vmware.vcloud.org+xml")
    ]
    assert got["rights"] == ["{io.vcdext.hello}:View Org Greeting"]
    assert "create" in first

    assert main(["register", "--config", str(config)]) == 0
    second = capsys.readouterr().out
    assert "nothing changed" in second.lower(), second
    assert in_cell(cell, "io.vcdext.hello") == got


def plugin(paths: list[str]) -> object:
    class Shop:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.service(name="shop", namespace="io.example.shop")
            for path in paths:
                registrar.add_operation("GET", path, lambda request, **params: "<x/>")

    return Shop()


def test_changing_operations_yields_the_minimal_change(cell, tmp_path):
    settings: Settings = load_settings(settings_for(cell, tmp_path), environ={})
    before = make_runtime(
        shop=plugin(["/api/shop", "/api/shop/{id}", "/api/shop/old"]), settings=settings
    )
    assert register_services(before, settings).changed
    untouched = {f.id for f in cell.state.filters() if f.url_pattern != "/api/shop/old"}

    after = make_runtime(
        shop=plugin(["/api/shop", "/api/shop/{id}", "/api/shop/new"]), settings=settings
    )
    result = register_services(after, settings)
    actions = [type(a) for _, a in result.plan.actions]
    assert sorted(a.__name__ for a in actions) == ["AddFilter", "RemoveFilter"]
    added = next(a for _, a in result.plan.actions if isinstance(a, AddFilter))
    assert added.url_pattern == "/api/shop/new"
    assert any(isinstance(a, RemoveFilter) for _, a in result.plan.actions)
    now = in_cell(cell, "io.example.shop")
    assert now["filters"] == ["/api/shop", "/api/shop/[^/]+", "/api/shop/new"]
    assert untouched <= {f.id for f in cell.state.filters()}, "kept filters were recreated"


def test_a_plugin_removed_from_enabled_is_left_alone_unless_pruned(cell, tmp_path, capsys):
    both = settings_for(
        cell, tmp_path, 'enabled = ["hello"]\nmodules = ["tests.fake_plugins.good"]'
    )
    assert main(["register", "-c", str(both)]) == 0
    assert cell.service("io.example.good") is not None

    only_hello = settings_for(cell, tmp_path, 'enabled = ["hello"]')
    assert main(["register", "-c", str(only_hello)]) == 0
    assert cell.service("io.example.good") is not None
    capsys.readouterr()

    assert main(["register", "--dry-run", "--prune", "-c", str(only_hello)]) == 0
    assert "io.example.good" in capsys.readouterr().out
    assert cell.service("io.example.good") is not None, "dry run changed something"

    assert main(["register", "--prune", "-c", str(only_hello)]) == 0
    assert cell.service("io.example.good") is None
    assert cell.service("io.vcdext.hello") is not None


def test_unregister_disables_then_deletes(cell, tmp_path):
    config = settings_for(cell, tmp_path, 'enabled = ["hello"]')
    assert main(["register", "-c", str(config)]) == 0
    assert main(["unregister", "hello", "-c", str(config)]) == 0
    assert cell.service("io.vcdext.hello") is None


def test_wrong_password_is_one_line_naming_url_and_user(cell, tmp_path, capsys):
    config = settings_for(cell, tmp_path, 'enabled = ["hello"]', password="not-the-pa55word")
    assert main(["register", "-c", str(config)]) != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("vcdext: error:")]
    assert len(errors) == 1, err
    assert cell.url in errors[0] and "administrator" in errors[0]
    assert "not-the-pa55word" not in err


def test_unreachable_vcd_is_one_line_naming_url_and_user(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f'[vcd]\nurl = "{url}"\nusername = "administrator"\n'
        'password = "s3cret-pw"\n[plugins]\nenabled = ["hello"]\n'
    )
    assert main(["register", "-c", str(config)]) != 0
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("vcdext: error:")]
    assert len(errors) == 1, err
    assert url in errors[0] and "administrator" in errors[0]
    assert "s3cret-pw" not in err
