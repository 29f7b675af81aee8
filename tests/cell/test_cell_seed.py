"""Seed files: the demo seed, parsing, validation, stable ids; the Cell's settings."""

from __future__ import annotations

import os
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
    assert alice.rights == (
        "{io.vcdext.hello}:View Org Greeting",
        "{org.example.vcd.backup}:View Backups",
        "{org.example.vcd.backup}:Create Backup",
        "{org.example.vcd.backup}:Delete Backup",
        # the same rights as the cell names them for MQTT extensions ({vendor.name}:Name)
        "{vcdext.hello}:View Org Greeting",
        "{Example.backup}:View Backups",
        "{Example.backup}:Create Backup",
        "{Example.backup}:Delete Backup",
    )
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


def test_the_cell_contributes_its_section_to_the_config(tmp_path: Path, capsys) -> None:
    from vcdext.cli import main
    from vcdext.settings import all_settings
    from vcdext_cell.settings import CellSettings

    config = tmp_path / "c.toml"
    config.write_text('[cell]\nport = 9999\nhost = "127.0.0.2"\n')
    settings = load_settings(config, environ={"VCDEXT_CELL_TIMEOUT": "3"})
    assert settings.section(CellSettings) == CellSettings("127.0.0.2", 9999, 3.0, "")
    assert settings.source_of("cell.timeout") == "environment VCDEXT_CELL_TIMEOUT"
    assert {"cell.host", "cell.port", "cell.timeout", "cell.seed"} <= {
        info.key for info in all_settings()
    }
    assert main(["config", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "\n[cell]\n" in out and "port = 9999" in out


@pytest.mark.parametrize(
    ("text", "key"), [("[cell]\nport = -1\n", "cell.port"), ("[cell]\nprot = 1\n", "cell.prot")]
)
def test_bad_cell_settings_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert (info.value.key, info.value.source) == (key, str(config))


@pytest.mark.parametrize("command", ["cell", "dev"])
def test_a_bad_amqp_url_flag_stops_the_cell_commands(command: str, capsys) -> None:
    from vcdext.cli import main

    assert main([command, "--port", "0", "--amqp-url", "amqp://u:p@h:notaport//"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vcdext: error: --amqp-url: amqp.url: ")
    assert "u:p@" not in err


def test_a_seed_password_is_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "seed.toml"
    path.write_text('[[orgs]]\nname = "a"\n[[orgs.users]]\nname = "u"\npassword = 98765\n')
    with pytest.raises(ConfigError) as info:
        load_seed(path)
    assert info.value.key == "orgs[0].users[0].password"
    leaked = "98765" in str(info.value)
    assert not leaked, "a seed password appeared in a config error"


@pytest.mark.parametrize("given_by", ["environment", "file", "flag"])
def test_a_missing_seed_file_names_where_cell_seed_was_set(tmp_path: Path, given_by: str) -> None:
    from vcdext.cli import _parser
    from vcdext_cell.command import cell_from_args

    absent = tmp_path / "absent.toml"
    config = tmp_path / "vcdext.toml"
    config.write_text(f"[cell]\nseed = {str(absent)!r}\n")
    args, env = ["cell", "--port", "0"], {"VCDEXT_AMQP_URL": "memory://"}
    if given_by == "environment":
        env["VCDEXT_CELL_SEED"] = str(absent)
        expected = "environment VCDEXT_CELL_SEED"
    elif given_by == "file":
        args += ["--config", str(config)]
        expected = str(config)
    else:
        args += ["--seed", str(absent)]
        expected = "--seed"
    with pytest.MonkeyPatch.context() as mp:
        for name in [n for n in os.environ if n.startswith("VCDEXT_")]:
            mp.delenv(name)
        for name, value in env.items():
            mp.setenv(name, value)
        parsed = _parser().parse_args(args)  # what `vcdext cell` builds before it serves
        settings = load_settings(getattr(parsed, "config", None))
        with pytest.raises(ConfigError) as info:
            cell_from_args(parsed, settings)
    assert info.value.source == expected
    assert info.value.key.startswith("cell.seed") and str(absent) in str(info.value)
