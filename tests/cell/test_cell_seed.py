"""Seed files: the demo seed, parsing, validation, stable ids; the Cell's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcdext.errors import ConfigError
from vcdext.settings import load_settings
from vcdext_cell import Cell, CellError, demo_seed, load_seed
from vcdext_cell.seed import SYSTEM_ORG, derived_id


def test_demo_seed_has_an_admin_and_two_acme_users() -> None:
    seed = demo_seed()
    assert [o.name for o in seed.orgs] == ["System", "acme"]
    assert seed.org_named("system").users[0].name == "administrator"
    alice, bob = seed.org_named("acme").users
    assert alice.rights == ("{io.vcdext.hello}:View Org Greeting",)
    assert bob.rights == ()
    assert seed.rights_format == "urn"


def test_ids_are_derived_from_names_and_stable() -> None:
    assert (
        demo_seed().org_named("acme").id
        == demo_seed().org_named("acme").id
        == derived_id("org", "acme")
    )


def test_seed_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(
        'rights_format = "name"\n'
        '[[orgs]]\nname = "globex"\nid = "11111111-2222-4333-8444-555555555555"\n'
        '[[orgs.users]]\nname = "hank"\npassword = "s3cret"\nrights = ["a", "b"]\n'
    )
    seed = load_seed(path)
    assert seed.rights_format == "name"
    assert seed.orgs[0].name == SYSTEM_ORG  # always present
    assert seed.org_named("globex").id == "11111111-2222-4333-8444-555555555555"
    assert seed.right_names == ("a", "b")
    assert "s3cret" not in repr(seed)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour = 1", "colour"),
        ('rights_format = "both"', "rights_format"),
        ('[[orgs]]\nname = "a"\nid = "nope"', "orgs[0].id"),
        ('[[orgs]]\nname = "a"\n[[orgs]]\nname = "A"', "orgs"),
        ('[[orgs]]\nname = "a@b"', "orgs[0].name"),
        ('[[orgs]]\nname = "a"\n[[orgs.users]]\nname = "u"', "orgs[0].users[0].password"),
        (
            '[[orgs]]\nname = "a"\n[[orgs.users]]\nname = "u"\npassword = "p"\nrights = "x"',
            "rights",
        ),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_seeds_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "seed.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_seed(path)
    assert key in str(info.value)
    assert str(path) in str(info.value)


def test_missing_seed_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_seed(tmp_path / "absent.toml")


def test_cell_takes_its_settings_from_the_cell_section(tmp_path: Path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text('[[orgs]]\nname = "only"\n')
    settings = load_settings(
        None,
        environ={
            "VCDEXT_CELL_PORT": "0",
            "VCDEXT_CELL_TIMEOUT": "2.5",
            "VCDEXT_CELL_SEED": str(seed),
            "VCDEXT_AMQP_URL": "memory://",
        },
    )
    with Cell(settings) as cell:
        assert cell.timeout == 2.5
        assert cell.url.startswith("http://127.0.0.1:")
        assert [o.name for o in cell.seed.orgs] == ["System", "only"]
        assert cell.api_url == cell.url + "/api"


def test_credentials_hide_passwords() -> None:
    cell = Cell(amqp_url="memory://", port=0)
    admin = next(c for c in cell.demo_credentials if c.sysadmin)
    assert admin.login == "administrator@System"
    assert admin.password == "vmware"
    assert "vmware" not in repr(admin)


def test_unreachable_broker_fails_start_clearly() -> None:
    cell = Cell(amqp_url="amqp://guest:topsecret@127.0.0.1:1//", port=0)
    with pytest.raises(CellError) as info:
        cell.start()
    assert "cannot connect" in str(info.value)
    assert "topsecret" not in str(info.value)


def test_port_in_use_fails_start_clearly() -> None:
    with Cell(amqp_url="memory://", port=0) as first:
        port = int(first.url.rsplit(":", 1)[1])
        with pytest.raises(CellError, match="cannot listen"):
            Cell(amqp_url="memory://", port=port).start()


def test_url_needs_a_started_cell() -> None:
    with pytest.raises(CellError):
        _ = Cell(amqp_url="memory://").url
