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


# -- config errors: one line, the key, its real source, exit 2 -------------------------------


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_a_bad_amqp_url_flag_is_a_config_error(capsys):
    assert main(["run", "--no-register", "--amqp-url", "http://127.0.0.1:8082"]) == 2
    err = _one_error_line(capsys)
    assert err.startswith("vcdext: error: --amqp-url: amqp.url: ")
    assert "unsupported scheme 'http'" in err


@pytest.mark.parametrize("command", [["run", "--no-register"], ["config", "show"]])
def test_a_bad_amqp_url_in_the_environment_is_refused(command, monkeypatch, capsys):
    monkeypatch.setenv("VCDEXT_AMQP_URL", "amqp://guest:guest@localhost:notaport//")
    assert main(command) == 2
    err = _one_error_line(capsys)
    assert err.startswith("vcdext: error: environment VCDEXT_AMQP_URL: amqp.url: ")
    assert "guest@" not in err


def test_vcdext_run_with_a_bad_broker_url_exits_2_without_a_traceback(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")}
    done = subprocess.run(
        [sys.executable, "-m", "vcdext", "run", "--no-register", "--amqp-url", "http://x:8082"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "vcdext: error: --amqp-url: amqp.url: the URL has an unsupported scheme 'http' "
        "(use amqp, amqps, pyamqp, memory), got 'http://x:8082'"
    ]


def test_a_bad_vcd_url_from_the_environment_names_the_variable(monkeypatch, capsys):
    monkeypatch.setenv("VCDEXT_VCD_URL", "127.0.0.1:8082")
    assert main(["register", "--dry-run"]) == 2
    err = _one_error_line(capsys)
    assert "environment VCDEXT_VCD_URL: vcd.url:" in err and "defaults" not in err


def test_a_password_file_from_the_environment_is_blamed_on_it(tmp_path, monkeypatch, capsys):
    config = tmp_path / "g.toml"
    config.write_text('[vcd]\nurl = "https://vcd.example.com"\nusername = "admin"\n')
    monkeypatch.setenv("VCDEXT_VCD_PASSWORD_FILE", "/nope")
    assert main(["--config", str(config), "register", "--dry-run"]) == 2
    err = _one_error_line(capsys)
    assert "environment VCDEXT_VCD_PASSWORD_FILE: vcd.password_file:" in err
    assert str(config) not in err


def test_an_unknown_enabled_plugin_from_the_environment_names_it(monkeypatch, capsys):
    monkeypatch.setenv("VCDEXT_PLUGINS_ENABLED", "helo")
    assert main(["plugins"]) == 2
    err = _one_error_line(capsys)
    assert "environment VCDEXT_PLUGINS_ENABLED: plugins.enabled: unknown plugin 'helo'" in err


def test_a_missing_config_named_by_the_environment(monkeypatch, capsys):
    monkeypatch.setenv("VCDEXT_CONFIG", "/nonexistent.toml")
    assert main(["plugins"]) == 2
    err = _one_error_line(capsys)
    assert "environment VCDEXT_CONFIG: /nonexistent.toml: no such file" in err
    assert "--config" not in err


def test_a_broken_json_list_in_the_environment_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("VCDEXT_PLUGINS_ENABLED", "[broken")
    assert main(["plugins"]) == 2
    err = _one_error_line(capsys)
    assert "environment VCDEXT_PLUGINS_ENABLED: plugins.enabled:" in err


def test_config_show_masks_every_kind_of_plugin_secret(tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(
        "[plugins.notes]\n"
        'credentials = "c-secret-1"\n'
        'auth = "a-secret-2"\n'
        'db = { user = "u", password = "p-secret-3" }\n'
        'colour = "blue"\n'
    )
    assert main(["config", "show", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    leaked = [s for s in ("c-secret-1", "a-secret-2", "p-secret-3") if s in out]
    assert not leaked, f"{len(leaked)} plugin secret(s) printed"
    assert 'colour = "blue"' in out and 'user = "u"' in out


@pytest.mark.parametrize("argv", [[], ["config"]])
def test_a_missing_command_shows_help_and_exits_2(argv, capsys):
    # `vcdext config` without `show` is the same usage error as `vcdext` alone.
    assert main(argv) == 2
    assert "usage: vcdext" in capsys.readouterr().out
