"""Typed settings: defaults, TOML, environment overrides, clear errors, masking."""

import pytest

from vcdext import ConfigError
from vcdext.settings import all_settings, load_settings, mask_secret, render_settings


def write(tmp_path, text):
    path = tmp_path / "vcdext.toml"
    path.write_text(text)
    return path


def test_defaults_without_file():
    s = load_settings(None, environ={})
    assert (s.amqp.exchange, s.runtime.workers, s.prefetch) == ("vcdext", 8, 16)
    assert s.plugins.enabled is None
    assert s.source == "defaults"


def test_file_values_and_plugin_tables(tmp_path):
    path = write(
        tmp_path,
        """
[amqp]
url = "amqp://u:p@h//"
prefetch = 5
[runtime]
workers = 3
log_level = "debug"
[plugins]
enabled = ["hello"]
[plugins.hello]
routing_key = "hi"
greeting = { text = "hey" }
""",
    )
    s = load_settings(path, environ={})
    assert (s.amqp.url, s.prefetch, s.runtime.workers) == ("amqp://u:p@h//", 5, 3)
    assert s.runtime.log_level == "DEBUG"
    assert s.plugins.enabled == ("hello",)
    assert s.plugins.for_plugin("hello")["greeting"] == {"text": "hey"}
    assert s.plugins.for_plugin("other") == {}


def test_config_file_from_environment(tmp_path):
    path = write(tmp_path, "[runtime]\nworkers = 2\n")
    assert load_settings(None, environ={"VCDEXT_CONFIG": str(path)}).runtime.workers == 2


def test_environment_overrides_file(tmp_path):
    path = write(tmp_path, "[runtime]\nworkers = 2\n")
    env = {
        "VCDEXT_RUNTIME_WORKERS": "6",
        "VCDEXT_PLUGINS_ENABLED": "a, b",
        "VCDEXT_VCD_VERIFY_TLS": "false",
    }
    s = load_settings(path, environ=env)
    assert s.runtime.workers == 6
    assert s.plugins.enabled == ("a", "b")
    assert s.vcd.verify_tls is False


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[runtime]\nworkers = 'many'\n", "runtime.workers", "expected an integer"),
        ("[runtime]\nworkers = 0\n", "runtime.workers", "at least 1"),
        ("[runtime]\nworkers = true\n", "runtime.workers", "expected an integer"),
        ("[amqp]\nurll = 'x'\n", "amqp.urll", "unknown key"),
        ("[amqpp]\n", "amqpp", "unknown section"),
        ("[plugins]\nenabled = 'hello'\n", "plugins.enabled", "list of strings"),
        ("[runtime]\nlog_level = 'LOUD'\n", "runtime.log_level", "one of"),
        ("[vcd]\nverify_tls = 'yes'\n", "vcd.verify_tls", "true or false"),
        ("[amqp\n", "(file)", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path, text, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert info.value.key == key
    assert str(path) in str(info.value)
    assert problem in str(info.value)


def test_bad_environment_value_names_the_variable():
    with pytest.raises(ConfigError, match="environment VCDEXT_AMQP_PREFETCH: amqp.prefetch"):
        load_settings(None, environ={"VCDEXT_AMQP_PREFETCH": "lots"})


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_secrets_are_masked_when_shown(tmp_path):
    path = write(
        tmp_path,
        '[amqp]\nurl = "amqp://guest:hunter2@broker:5672//"\n'
        '[vcd]\npassword = "s3cret"\n[plugins.x]\napi_token = "tok123"\n',
    )
    text = render_settings(load_settings(path, environ={}))
    for secret in ("hunter2", "s3cret", "tok123"):
        assert secret not in text
    assert 'url = "amqp://guest:********@broker:5672//"' in text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("amqp://u:p@h:1/v", "amqp://u:********@h:1/v"),
        ("memory://", "memory://"),
        ("amqp://u@h//", "amqp://u@h//"),
        ("plain", "********"),
        ("", ""),
    ],
)
def test_mask_secret(value, shown):
    assert mask_secret(value) == shown


def test_every_setting_has_a_description_and_an_env_name():
    for info in all_settings():
        assert info.description.strip(), info.key
        assert info.env == "VCDEXT_" + info.key.upper().replace(".", "_")


def test_a_bad_secret_value_is_not_echoed(tmp_path):
    path = write(tmp_path, "[vcd]\npassword = 123456\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert "123456" not in str(info.value)
    assert "vcd.password" in str(info.value)


def test_every_password_of_a_failover_url_is_masked():
    shown = mask_secret("amqp://u:p1@h1//;amqp://u:p2@h2//")
    assert "p1" not in shown and "p2" not in shown
    assert shown == "amqp://u:********@h1//;amqp://u:********@h2//"


def test_a_misspelled_environment_variable_is_an_error():
    with pytest.raises(ConfigError, match="environment VCDEXT_AMQP_URLL") as info:
        load_settings(None, environ={"VCDEXT_AMQP_URLL": "amqp://x//"})
    assert "VCDEXT_AMQP_URL" in str(info.value)
    # Variables outside the settings' sections are not ours to judge.
    load_settings(None, environ={"VCDEXT_SCHEMAS": "/x", "VCDEXT_CONFIGX": "y"})
