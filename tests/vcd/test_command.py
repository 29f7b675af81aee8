"""``vcdext register`` and ``vcdext unregister``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.vcd.fake_vcd import PASSWORD, FakeVcd
from vcdext.cli import main
from vcdext.vcloud.bundle import read_bundle


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeVcd) -> Path:
    """A config for the hello plugin and the fake vCD (password from the environment)."""
    monkeypatch.setattr("vcdext.vcd.client.new_session", fake.session)
    monkeypatch.setattr("vcdext.vcd.client.time.sleep", lambda seconds: None)
    monkeypatch.setenv("VCDEXT_VCD_PASSWORD", PASSWORD)
    path = tmp_path / "vcdext.toml"
    path.write_text(
        '[plugins]\nenabled = ["hello"]\n'
        '[vcd]\nurl = "https://vcd.example.com"\nusername = "administrator"\n'
    )
    return path


def test_register_then_register_again(fake, config, capsys):
    assert main(["register", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "io.vcdext.hello  create  service" in out
    assert "io.vcdext.hello  upload  bundle          de_DE, en_US, fr_FR" in out
    assert out.rstrip().endswith("vCD updated: 8 changes applied to 1 service")
    assert fake.service_by_namespace("io.vcdext.hello") is not None
    ((_, zipped),) = fake.bundles  # built from hello's catalogs
    assert (
        read_bundle(zipped)["de_DE"]["RIGHT_VIEW_ORG_GREETING"] == "Gruß der Organisation anzeigen"
    )
    assert main(["register", "--config", str(config)]) == 0
    assert capsys.readouterr().out == "vCD is up to date (1 service checked); nothing changed\n"
    assert len(fake.bundles) == 1  # unchanged catalogs: not uploaded again


def test_dry_run_prints_the_table_and_writes_nothing(fake, config, capsys):
    assert main(["register", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["SERVICE", "ACTION", "OBJECT", "DETAIL"]
    assert any("api filter" in line and "/api/org/[^/]+/hello" in line for line in lines)
    assert lines[-1] == "dry run: 8 changes planned for 1 service; nothing was changed"
    assert fake.writes == [] and not fake.services


def test_prune_removes_a_service_whose_plugin_is_no_longer_enabled(fake, config, capsys):
    assert main(["register", "--config", str(config)]) == 0
    config.write_text(config.read_text().replace('["hello"]', "[]"))
    assert main(["register", "--config", str(config)]) == 0
    assert fake.service_by_namespace("io.vcdext.hello") is not None
    assert main(["register", "--prune", "--config", str(config)]) == 0
    assert "io.vcdext.hello  delete  service" in capsys.readouterr().out
    assert fake.service_by_namespace("io.vcdext.hello") is None


@pytest.mark.parametrize("name", ["hello", "io.vcdext.hello"])
def test_unregister_by_plugin_name_or_namespace(fake, config, capsys, name):
    assert main(["register", "--config", str(config)]) == 0
    assert main(["unregister", name, "--config", str(config)]) == 0
    assert capsys.readouterr().out.endswith(
        "disabled and deleted extension service hello (io.vcdext.hello)\n"
    )
    assert not fake.services
    assert main(["unregister", name, "--config", str(config)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_wrong_password_is_one_line_without_the_password(fake, config, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    fake.password = "something else"
    assert main(["register", "--config", str(config)]) != 0
    captured = capsys.readouterr()
    assert captured.err == (
        "vcdext: error: cannot log in to https://vcd.example.com as administrator@System: "
        "401 Unauthorized\n"
    )
    assert captured.out == ""
    for text in (captured.err, captured.out, caplog.text):
        assert PASSWORD not in text


def test_unreachable_vcd_is_one_line(fake, config, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    fake.unreachable = True
    assert main(["register", "--dry-run", "--config", str(config)]) != 0
    err = capsys.readouterr().err
    assert err == (
        "vcdext: error: cannot log in to https://vcd.example.com as administrator@System: "
        "Connection refused\n"
    )
    assert PASSWORD not in err + caplog.text


def test_missing_url_is_a_config_error_naming_the_key(tmp_path, capsys):
    path = tmp_path / "vcdext.toml"
    path.write_text('[vcd]\nusername = "administrator"\n')
    for command in (["register"], ["unregister", "hello"]):
        assert main([*command, "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "vcd.url" in err and str(path) in err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["register", "--help"])
    out = capsys.readouterr().out
    assert "--dry-run" in out and "--prune" in out


def test_register_reports_its_summary_once(fake, config, capsys, caplog):
    with caplog.at_level(logging.INFO):
        assert main(["register", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert out.count("vCD updated:") == 1
    assert not [r for r in caplog.records if "vCD updated:" in r.getMessage()]
