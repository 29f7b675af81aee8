"""Typed settings: defaults, TOML, environment overrides, clear errors, masking."""

import dataclasses
from dataclasses import dataclass
from typing import Literal

import pytest

from vcdext import ConfigError
from vcdext import settings as settings_module
from vcdext.settings import (
    REQUIRED,
    all_settings,
    load_settings,
    mask_secret,
    parse_table,
    render_settings,
    setting,
)


def write(tmp_path, text):
    path = tmp_path / "vcdext.toml"
    path.write_text(text)
    return path


def test_defaults_without_file():
    s = load_settings(None, environ={})
    assert (s.amqp.exchange, s.runtime.workers, s.prefetch) == ("vcdext", 8, 32)
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


# -- broker URLs are validated where they are read, without connecting -----------------------


@pytest.mark.parametrize(
    "url",
    [
        "amqp://guest:guest@localhost:5672//",
        "amqps://u:p@broker.example.com:5671/vhost",
        "pyamqp://u@h//",
        "memory://",
        "amqp://u:p%2Fw%23x%3F@h//",  # special characters percent-encoded
        "amqp://u:p@h1//;amqp://u:p@h2//",  # failover
    ],
)
def test_good_broker_urls_are_accepted(url):
    assert load_settings(None, environ={"VCDEXT_AMQP_URL": url}).amqp.url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://127.0.0.1:8082", "unsupported scheme 'http'"),
        ("redis://localhost:6379/0", "unsupported scheme 'redis'"),
        ("amqp://guest:guest@localhost:notaport//", "cannot be parsed"),
        ("amqp://guest:guest@localhost:70000//", "cannot be parsed"),
        ("localhost:5672", "not a broker URL"),
        ("amqp://u:p@h1//;h2", "URL 2 of the failover list"),
    ],
)
def test_a_bad_broker_url_is_a_config_error_naming_its_source(tmp_path, url, problem):
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"VCDEXT_AMQP_URL": url})
    assert (info.value.key, info.value.source) == ("amqp.url", "environment VCDEXT_AMQP_URL")
    assert problem in info.value.problem
    path = write(tmp_path, f"[amqp]\nurl = {url!r}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert (info.value.key, info.value.source) == ("amqp.url", str(path))


def test_a_bad_broker_url_error_never_shows_its_password():
    for url in ("amqp://u:SEKRIT/x@h//", "amqp://u:SEKRIT@h:99999//", "ftp://u:SEKRIT@h"):
        with pytest.raises(ConfigError) as info:
            load_settings(None, environ={"VCDEXT_AMQP_URL": url})
        leaked = "SEKRIT" in str(info.value)
        assert not leaked, "a broker URL's password appeared in a config error"


def test_a_flag_overrides_through_the_same_validation():
    settings = load_settings(None, environ={})
    changed = settings.override("amqp.url", "memory://", source="--amqp-url")
    assert changed.amqp.url == "memory://"
    assert changed.source_of("amqp.url") == "--amqp-url"
    assert settings.amqp.url != "memory://"  # a copy
    with pytest.raises(ConfigError) as info:
        settings.override("amqp.url", "http://127.0.0.1:8082", source="--amqp-url")
    assert str(info.value).startswith("--amqp-url: amqp.url: ")
    with pytest.raises(ConfigError, match="unknown setting"):
        settings.override("amqp.nope", "x", source="--nope")


# -- every value names its real source -------------------------------------------------------


def test_each_key_names_where_its_value_came_from(tmp_path):
    path = write(tmp_path, '[vcd]\nurl = "https://vcd"\n[plugins.hello]\nrouting_key = "r"\n')
    s = load_settings(path, environ={"VCDEXT_VCD_USERNAME": "admin"})
    assert s.source_of("vcd.url") == str(path)
    assert s.source_of("vcd.username") == "environment VCDEXT_VCD_USERNAME"
    assert s.source_of("plugins.hello.routing_key") == str(path)
    assert s.source_of("vcd.org") == str(path)  # unset: the file that did not set it
    assert load_settings(None, environ={}).source_of("vcd.org") == "defaults"


def test_a_missing_config_file_named_by_the_environment_blames_the_variable():
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"VCDEXT_CONFIG": "/nonexistent.toml"})
    assert str(info.value) == "environment VCDEXT_CONFIG: /nonexistent.toml: no such file"
    with pytest.raises(ConfigError) as info:
        load_settings("/nonexistent.toml", environ={})
    assert str(info.value) == "--config: /nonexistent.toml: no such file"


@pytest.mark.parametrize("value", ["[broken", '["a", 1]', "[" * 100_000])
def test_a_bad_list_in_the_environment_is_one_config_error(value):
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"VCDEXT_PLUGINS_ENABLED": value})
    assert info.value.source == "environment VCDEXT_PLUGINS_ENABLED"
    assert info.value.key == "plugins.enabled"
    assert len(str(info.value)) < 200


# -- masking ---------------------------------------------------------------------------------

PASSWORD = "Pw-x9"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"amqp://u:{PASSWORD}#1@h//", "amqp://u:********@h//"),
        (f"amqp://u:{PASSWORD}/1@h:5672//", "amqp://u:********@h:5672//"),
        (f"amqp://u:{PASSWORD}?1@h//", "amqp://u:********@h//"),
        (f"amqp://u:{PASSWORD}@1@h//", "amqp://u:********@h//"),
        (f"amqp://u:{PASSWORD};1@h//", "********"),  # ';' splits it: unparseable parts
        (f"amqp://u:{PASSWORD}@h1//;amqp://u:{PASSWORD}@h2//", None),
        (f"amqp://u:{PASSWORD}@h:port//", "********"),
        (f"not a url {PASSWORD}", "********"),
        (f"amqp://[::1:{PASSWORD}@h", None),
    ],
)
def test_mask_secret_never_shows_a_password(url, shown):
    masked = mask_secret(url)
    leaked = PASSWORD in masked
    assert not leaked, "mask_secret showed the password"
    if shown is not None:
        assert masked == shown


def _plugin_table_text(tmp_path, table):
    path = write(tmp_path, "[plugins.demo]\n" + table)
    return render_settings(load_settings(path, environ={}))


@pytest.mark.parametrize(
    "line",
    [
        f'credentials = "{PASSWORD}"',
        f'passwd = "{PASSWORD}"',
        f'db_pass = "{PASSWORD}"',
        f'auth = "{PASSWORD}"',
        f'bearer = "{PASSWORD}"',
        f'apikey = "{PASSWORD}"',
        f'private_key_pem = "{PASSWORD}"',
        f'db = {{ host = "h", password = "{PASSWORD}" }}',
        f'servers = [{{ name = "a", token = "{PASSWORD}" }}]',
        f'outer = {{ inner = {{ secret = "{PASSWORD}" }} }}',
    ],
)
def test_plugin_table_secrets_are_masked(tmp_path, line):
    text = _plugin_table_text(tmp_path, line + '\nrouting_key = "rk"\ncolour = "blue"\n')
    leaked = PASSWORD in text
    assert not leaked, "config show printed a plugin secret"
    assert 'routing_key = "rk"' in text and 'colour = "blue"' in text


def test_config_show_masks_an_unencoded_broker_password(tmp_path):
    # Such a URL is refused on load; the rendering itself must still not leak it.
    s = load_settings(None, environ={})
    s = dataclasses.replace(s, amqp=dataclasses.replace(s.amqp, url=f"amqp://u:{PASSWORD}/x@h//"))
    leaked = PASSWORD in render_settings(s)
    assert not leaked, "config show printed the broker password"


# -- declarations, the one validator, contributed sections -----------------------------------


@dataclass(frozen=True, kw_only=True)
class _Item:
    name: str = setting(REQUIRED, "A name.", check=lambda v: v.strip() or _empty())
    size: int = setting(1, "A size.", minimum=1)


def _empty():
    raise ValueError("must not be blank")


@dataclass(frozen=True, kw_only=True)
class _Doc:
    mode: Literal["fast", "safe"] = setting("safe", "A choice.")
    pin: str = setting("", "A secret.", secret=True)
    tags: tuple[str, ...] = setting((), "Tags.")
    item: _Item | None = setting(None, "One sub-table.")  # noqa: RUF009 (a field)
    items: tuple[_Item, ...] = setting((), "An array of tables.")


def test_parse_table_reads_declared_types_and_nesting():
    doc = parse_table(
        _Doc,
        {
            "mode": "FAST",
            "tags": ["a"],
            "item": {"name": " x "},
            "items": [{"name": "y", "size": 3}],
        },
        source="f.toml",
    )
    assert doc.mode == "fast"  # choices match case-insensitively, kept as declared
    assert doc.tags == ("a",)
    assert doc.item == _Item(name="x")
    assert doc.items == (_Item(name="y", size=3),)


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ({"mode": "slow"}, "doc.mode", "expected one of fast, safe, got 'slow'"),
        ({"items": [{"size": 2}]}, "doc.items[0].name", "is required"),
        ({"items": [{"name": "a", "size": 0}]}, "doc.items[0].size", "at least 1"),
        ({"item": {"name": "  "}}, "doc.item.name", "must not be blank"),
        ({"items": {"name": "a"}}, "doc.items", "array of tables"),
        ({"items": ["a"]}, "doc.items[0]", "expected a table"),
        ({"item": {"nme": "a"}}, "doc.item.nme", "unknown key (known keys: name, size)"),
    ],
)
def test_parse_table_names_the_key_path_and_source(table, key, problem):
    with pytest.raises(ConfigError) as info:
        parse_table(_Doc, table, source="f.toml", where="doc")
    assert (info.value.key, info.value.source) == (key, "f.toml")
    assert problem in info.value.problem


def test_parse_table_never_echoes_a_secret():
    with pytest.raises(ConfigError) as info:
        parse_table(_Doc, {"pin": 4321}, source="f.toml")
    leaked = "4321" in str(info.value)
    assert not leaked, "a secret value appeared in a config error"


def test_declarations_must_be_typed_settings():
    with pytest.raises(TypeError, match="immutable"):
        setting([], "A list.")

    @dataclass(frozen=True)
    class Plain:
        x: int = 1

    with pytest.raises(TypeError, match="not declared with setting"):
        parse_table(Plain, {}, source="f")

    @dataclass(frozen=True)
    class Odd:
        x: complex = setting(1j, "Unsupported.")

    with pytest.raises(TypeError, match="unsupported setting type"):
        parse_table(Odd, {}, source="f")


@dataclass(frozen=True)
class _ExtraSection:
    level: int = setting(3, "A contributed key.", minimum=0)
    token: str = setting("", "A contributed secret.", secret=True)


@dataclass(frozen=True)
class _DemoPluginSettings:
    pin: str = setting("", "Declared secret under an innocent name.", secret=True)
    retries: int = setting(2, "A declared plugin key.")


@pytest.fixture
def contributed(monkeypatch):
    def use(found):
        monkeypatch.setattr(settings_module, "_contributed", lambda: dict(found))

    return use


def test_a_contributed_section_is_validated_overridden_and_shown(tmp_path, contributed):
    contributed({"extra": _ExtraSection})
    path = write(tmp_path, '[extra]\nlevel = 5\ntoken = "tok-1"\n')
    s = load_settings(path, environ={"VCDEXT_EXTRA_LEVEL": "7"})
    assert s.section(_ExtraSection) == _ExtraSection(level=7, token="tok-1")
    assert s.source_of("extra.level") == "environment VCDEXT_EXTRA_LEVEL"
    assert "extra.level" in {info.key for info in all_settings()}
    text = render_settings(s)
    assert "[extra]" in text and "level = 7" in text and "tok-1" not in text
    with pytest.raises(ConfigError, match="extra.level: must be at least 0"):
        load_settings(None, environ={"VCDEXT_EXTRA_LEVEL": "-1"})
    with pytest.raises(ConfigError, match="VCDEXT_EXTRA_LEVL"):
        load_settings(None, environ={"VCDEXT_EXTRA_LEVL": "1"})
    assert load_settings(None, environ={}).section(_ExtraSection) == _ExtraSection()


def test_a_section_nobody_contributes_is_unknown(tmp_path, contributed):
    contributed({})
    path = write(tmp_path, "[cell]\nport = 1\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert (info.value.key, info.value.problem) == (
        "cell",
        "unknown section (known: amqp, mqtt, runtime, plugins, vcd)",
    )
    # Its environment variables are not ours to judge then.
    load_settings(None, environ={"VCDEXT_CELL_PORT": "1"})


def test_a_plugin_declares_its_table_and_its_secrets(tmp_path, contributed):
    contributed({"plugins.demo": _DemoPluginSettings})
    path = write(tmp_path, '[plugins.demo]\npin = "p-1234"\nretries = 4\n')
    s = load_settings(path, environ={})
    assert s.plugins.for_plugin("demo") == {"pin": "p-1234", "retries": 4}  # handed unchanged
    text = render_settings(s)
    assert "p-1234" not in text and "retries = 4" in text
    bad = write(tmp_path, '[plugins.demo]\nretries = "many"\n')
    with pytest.raises(ConfigError, match="plugins.demo.retries: expected an integer"):
        load_settings(bad, environ={})


def test_broken_contributions_are_skipped_with_a_warning(monkeypatch, caplog):
    class Entry:
        def __init__(self, name, value, loaded):
            self.name, self.value, self._loaded = name, value, loaded

        def load(self):
            if isinstance(self._loaded, Exception):
                raise self._loaded
            return self._loaded

    entries = [
        Entry("good", "m:Good", _ExtraSection),
        Entry("broken", "m:Broken", ImportError("no module m")),
        Entry("amqp", "m:Amqp", _ExtraSection),  # a built-in name
        Entry("notdc", "m:NotDc", dict),
    ]
    monkeypatch.setattr(settings_module, "entry_points", lambda group: entries)
    found = settings_module._contributed.__wrapped__()
    assert found == {"good": _ExtraSection}
    assert {"broken", "amqp", "notdc"} <= {
        word.strip("'") for r in caplog.records for word in r.getMessage().split()
    }


@pytest.mark.parametrize(
    ("text", "environ"),
    [
        ("[runtime]\ntimeout = inf\n", {}),
        ("[vcd]\ntimeout = 1e400\n", {}),
        ("", {"VCDEXT_RUNTIME_TIMEOUT": "inf"}),
        ("", {"VCDEXT_RUNTIME_TIMEOUT": "Infinity"}),
    ],
)
def test_an_infinite_number_is_refused(tmp_path, text, environ):
    # runtime.timeout is the reply TTL and the shutdown grace: an infinite one would make
    # every reply unpublishable (kombu turns it into integer milliseconds).
    with pytest.raises(ConfigError, match="expected a number"):
        load_settings(write(tmp_path, text), environ=environ)


def test_the_repr_of_settings_shows_no_secret():
    # Runtime.settings reaches every plugin hook; a plugin that logs it, or a traceback
    # printer that shows locals, must not print a password.
    s = load_settings(
        None,
        environ={"VCDEXT_VCD_PASSWORD": "hunter2", "VCDEXT_AMQP_URL": "amqp://u:sekrit@h//"},
    )

    @dataclass(frozen=True)
    class Contributed:
        token: str = setting("abc-token", "A token.", secret=True)
        region: str = setting("eu", "A region.")

    shown = repr(s) + repr(Contributed())
    assert "hunter2" not in shown and "sekrit" not in shown and "abc-token" not in shown
    assert "region='eu'" in shown


def test_an_mqtt_url_whose_password_hides_the_port_is_refused_without_echoing_it():
    """An unescaped '/' in the password makes the rest of it read as host:port; the error
    names the key and what to do, never the password."""
    from vcdext.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        load_settings(
            None, environ={"VCDEXT_MQTT_URL": "wss://ext:S3cr/et@127.0.0.1:1/messaging/mqtt"}
        )
    message = str(caught.value)
    assert "mqtt.url" in message and "percent-encode" in message
    assert "S3cr" not in message and "et@" not in message
    assert load_settings(
        None, environ={"VCDEXT_MQTT_URL": "wss://ext:S3cr%2Fet@127.0.0.1:1/messaging/mqtt"}
    ).mqtt.url
    # A password that starts with digits: "admin:8443" reads as host and port, the rest as
    # the path; the token would go to host "admin".
    with pytest.raises(ConfigError) as caught:
        load_settings(
            None, environ={"VCDEXT_MQTT_URL": "wss://admin:8443/Secret@vcd.example.com/mqtt"}
        )
    assert "Secret" not in str(caught.value) and "8443" not in str(caught.value)
