"""The vcdext command: help, plugins listing, config show, clear errors."""

import json

import pytest

from vcdext.cli import main


def test_help_lists_the_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("run", "plugins", "config"):
        assert command in out


def test_plugins_shows_hello_with_operations_and_filters(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "hello  (vcdext-hello" in out
    assert "GET     /api/hello " in out
    assert "/api/org/[^/]+/hello" in out
    assert "{io.vcdext.hello}:View Org Greeting" in out


def test_plugins_json(capsys):
    assert main(["plugins", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    hello = next(p for p in doc["plugins"] if p["name"] == "hello")
    assert hello["service"]["namespace"] == "io.vcdext.hello"
    assert "/api/hello/echo" in hello["service"]["api_filters"]


def test_config_show_masks_secrets(tmp_path, capsys, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text('[amqp]\nurl = "amqp://svc:topsecret@mq//"\n')
    monkeypatch.setenv("VCDEXT_VCD_PASSWORD", "pa55word")
    assert main(["config", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "topsecret" not in out and "pa55word" not in out
    assert "amqp://svc:********@mq//" in out


def test_bad_config_is_one_line_naming_key_and_file(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text("[runtime]\nworkers = -1\n")
    assert main(["--config", str(config), "plugins"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "runtime.workers" in err and str(config) in err


def test_unknown_enabled_plugin_is_reported(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text('[plugins]\nenabled = ["nope"]\n')
    assert main(["plugins", "-c", str(config)]) == 2
    assert "unknown plugin 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["run"], ["plugins"], ["config", "show"]])
def test_each_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([*command, "--help"])
    assert info.value.code == 0
    assert "--config" in capsys.readouterr().out


def test_run_with_an_incomplete_vcd_section_stops_before_serving(monkeypatch, capsys):
    monkeypatch.setenv("VCDEXT_AMQP_URL", "memory://")
    monkeypatch.setenv("VCDEXT_VCD_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("VCDEXT_VCD_USERNAME", "admin")
    assert main(["run"]) == 2
    assert "vcd.password" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["cell", "dev"])
def test_a_non_positive_cell_timeout_is_a_usage_error(command, capsys):
    assert main([command, "--port", "0", "--timeout", "-1"]) == 2
    assert "--timeout: must be positive" in capsys.readouterr().err
