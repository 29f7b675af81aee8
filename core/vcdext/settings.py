"""Typed settings: a TOML file, then ``VCDEXT_<SECTION>_<KEY>`` environment overrides.

Every key is a field of a frozen dataclass, declared once with :func:`setting`: its type (the
annotation), choices (a ``Literal``), default, description, minimum and whether it is secret.
One validator, :func:`parse_table`, reads the config file's sections, the environment
overrides and other TOML files (the local cell's seed) from those declarations. A bad value
raises :class:`~vcdext.errors.ConfigError` naming the key and where the value came from.

Other distributions add a section through the ``vcdext.settings`` entry-point group (name:
the section, value: its dataclass); :meth:`Settings.section` returns it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
import re
import tomllib
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from .errors import ConfigError

log = logging.getLogger(__name__)

#: Environment variable naming the config file when ``--config`` is not given.
CONFIG_ENV = "VCDEXT_CONFIG"
ENV_PREFIX = "VCDEXT_"
#: Entry-point group through which other distributions contribute a config section.
SETTINGS_GROUP = "vcdext.settings"
#: The default of a :func:`setting` that must be given.
REQUIRED: Any = dataclasses.MISSING
#: Broker URL schemes vcdext serves on (kombu transports).
BROKER_SCHEMES = ("amqp", "amqps", "pyamqp", "memory")
_MASK = "********"
_META = "vcdext.setting"

T = TypeVar("T")


@dataclass(frozen=True)
class _Spec:
    description: str
    secret: bool = False
    minimum: float | None = None
    check: Callable[[Any], Any] | None = None
    mask: Callable[[Any], str] | None = None
    extra_tables: bool = False


def setting(
    default: Any,
    description: str,
    *,
    secret: bool = False,
    minimum: float | None = None,
    check: Callable[[Any], Any] | None = None,
    mask: Callable[[Any], str] | None = None,
) -> Any:
    """A field of a settings dataclass; its type is the field's annotation.

    :param default: the value when the key is absent; :data:`REQUIRED` makes it mandatory.
        Choices are a ``Literal[...]`` annotation (matched case-insensitively).
    :param secret: never shown: ``vcdext config show`` and error messages print a mask, and
        the section's ``repr`` leaves it out.
    :param minimum: the smallest number accepted.
    :param check: called with the typed value; returns the value to keep or raises
        :class:`ValueError` with a short problem (which must not contain the value).
    :param mask: how a secret value is shown (default: masked whole).
    """
    spec = _Spec(description, secret, minimum, check, mask)
    if default is dataclasses.MISSING:
        return field(metadata={_META: spec}, repr=not secret)
    if isinstance(default, list | dict | set):
        raise TypeError("a setting's default must be immutable (use a tuple)")
    return field(default=default, metadata={_META: spec}, repr=not secret)  # no secret in reprs


def _tables_field() -> Any:
    # A field collecting every unknown sub-table of its section (``[plugins.<name>]``).
    return field(
        default_factory=lambda: MappingProxyType({}),
        metadata={_META: _Spec("", extra_tables=True)},
    )


# -- masking ------------------------------------------------------------------------------

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://(.*)", re.DOTALL)
_NETLOC = re.compile(r"(\[[0-9A-Fa-f:.]*\]|[^:\[\]@]*)(:[0-9]{0,5})?")


def _mask_url(url: str) -> str | None:
    match = _URL.fullmatch(url.strip())
    if match is None:
        return None
    scheme, rest = match.groups()
    userinfo, at, hostpart = rest.rpartition("@")  # a password may hold '@', '/', '?', '#'
    netloc = re.split(r"[/?#]", hostpart, maxsplit=1)[0]
    if _NETLOC.fullmatch(netloc) is None:
        return None
    if not at or ":" not in userinfo:
        return f"{scheme}://{rest}"
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{_MASK}@{hostpart}"


def mask_secret(value: Any) -> str:
    """The value with any password removed: a URL (or ``;``-separated failover list of URLs)
    keeps everything but its passwords; anything that does not parse as such is masked whole."""
    if not isinstance(value, str):
        return _MASK
    if not value:
        return ""
    masked = [_mask_url(part) for part in value.split(";")]
    if any(m is None for m in masked):
        return _MASK
    return ";".join(m for m in masked if m is not None)


def check_broker_url(url: str) -> str:
    """``url`` if kombu can use it as vcdext's broker, else :class:`ValueError` (whose text
    never contains the URL). Accepts a ``;``-separated failover list; connects to nothing."""
    from kombu.utils.url import parse_url

    parts = url.split(";")
    for i, part in enumerate(parts, 1):
        which = f"URL {i} of the failover list" if len(parts) > 1 else "the URL"
        part = part.strip()
        match = _URL.match(part)
        if match is None:
            raise ValueError(f"{which} is not a broker URL like amqp://user:password@host:5672//")
        scheme = match.group(1).lower()
        if scheme not in BROKER_SCHEMES:
            named = f" {scheme!r}" if len(parts) == 1 else ""
            raise ValueError(
                f"{which} has an unsupported scheme{named} (use {', '.join(BROKER_SCHEMES)})"
            )
        try:
            parse_url(part)
        except ValueError:  # its text may quote a piece of the password
            raise ValueError(
                f"{which} cannot be parsed: the port must be a number up to 65535, and a "
                "password's '/', '?', '#', '@' or ';' must be percent-encoded"
            ) from None
    return url


# -- the sections -------------------------------------------------------------------------


def _check_port(port: int) -> int:
    if port > 65535:
        raise ValueError("must be a TCP port, at most 65535")
    return port


@dataclass(frozen=True)
class AmqpSettings:
    """``[amqp]``: the broker vCD publishes extension requests to."""

    url: str = setting(
        "amqp://guest:guest@localhost:5672//",
        "Broker URL (kombu syntax: amqp, amqps, pyamqp or memory; failover URLs separated by "
        "';'). Use the broker vCD is configured with; the password is masked.",
        secret=True,
        check=check_broker_url,
        mask=mask_secret,
    )
    exchange: str = setting(
        "vcdext", "Durable direct exchange that vCD publishes requests to; declared at start-up."
    )
    prefetch: int = setting(
        0,
        "Unacknowledged requests held at once; 0 means four times runtime.workers.",
        minimum=0,
    )
    heartbeat: int = setting(60, "AMQP heartbeat in seconds (0 turns heartbeats off).", minimum=0)
    max_message_bytes: int = setting(
        1_048_576,
        "Largest request message accepted; a larger one is answered 413 without being decoded. "
        "The default carries vCD's own 512 KB request limit once base64-encoded.",
        minimum=1024,
    )
    max_redeliveries: int = setting(
        5,
        "A request redelivered more often than this is rejected without requeue (dead-lettered "
        "where a DLX is configured) instead of being run again.",
        minimum=0,
    )


@dataclass(frozen=True)
class RuntimeSettings:
    """``[runtime]``: how requests are processed."""

    workers: int = setting(
        8, "Handler threads; a slow handler never blocks the AMQP loop.", minimum=1
    )
    timeout: float = setting(
        10.0,
        "vCD's extensibility.timeout in seconds; requests older than this are not worth answering.",
        minimum=0.1,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = setting(
        "INFO", "Log level: DEBUG, INFO, WARNING or ERROR."
    )
    log_format: Literal["text", "json"] = setting(
        "text",
        "Log line format: text, or json (one JSON object per line, with each request's ids, "
        "service, operation, status, duration, user and org).",
    )
    health_port: int = setting(
        0,
        "Port of the HTTP server for /healthz, /readyz and /metrics (vcdext run); 0: none.",
        minimum=0,
        check=_check_port,
    )
    health_host: str = setting(
        "127.0.0.1", "Address the health port listens on (0.0.0.0 for probes from outside)."
    )
    transport: Literal["amqp", "mqtt"] = setting(
        "amqp",
        "How vCD reaches the services: amqp (an operator's RabbitMQ, [amqp]) or mqtt (vCD "
        "10.2+'s own message bus, [mqtt]; see docs/running.md).",
    )


@dataclass(frozen=True)
class PluginsSettings:
    """``[plugins]``: which installed plugins run, and their own ``[plugins.<name>]`` tables."""

    enabled: tuple[str, ...] | None = setting(
        None, "Plugins to run, by entry-point name; unset means every installed plugin."
    )
    required: tuple[str, ...] = setting(
        (), "Plugins whose failure to load stops start-up (others are skipped)."
    )
    modules: tuple[str, ...] = setting(
        (),
        "Plugin modules to load by import path, without packaging them: 'pkg.mod' (named "
        "after its last part) or 'name=pkg.mod'. Always enabled.",
    )
    #: The ``[plugins.<name>]`` tables, handed to each plugin as its config.
    options: Mapping[str, Mapping[str, Any]] = _tables_field()

    def for_plugin(self, name: str) -> Mapping[str, Any]:
        """The ``[plugins.<name>]`` table (empty when absent)."""
        return self.options.get(name, MappingProxyType({}))


@dataclass(frozen=True)
class VcdSettings:
    """``[vcd]``: the vCloud Director the runtime registers with (absent: register nothing)."""

    url: str = setting(
        "",
        "vCD base URL, e.g. https://vcd.example.com (a trailing /api is accepted). "
        "Empty: serve AMQP only and register nothing.",
    )
    username: str = setting("", "System administrator user name.")
    org: str = setting("System", "Organization to log in to (System for a sysadmin).")
    password: str = setting(
        "", "Password (prefer VCDEXT_VCD_PASSWORD or vcd.password_file).", secret=True
    )
    password_file: str = setting(
        "", "File whose first line is the password (used when vcd.password is empty)."
    )
    verify_tls: bool = setting(True, "Verify vCD's TLS certificate.")
    ca_bundle: str = setting(
        "", "CA bundle (PEM file) to verify vCD's certificate with; empty: system CAs."
    )
    api_version: str = setting(
        "", "vCloud API version to use; empty: the highest both sides support (at least 5.1)."
    )
    timeout: float = setting(30.0, "Seconds to wait for one vCD API call.", minimum=0.1)


def _check_mqtt_url(url: str) -> str:
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    if url and scheme not in ("ws", "wss"):
        raise ValueError("must be a ws:// or wss:// URL (MQTT over WebSocket, as vCD serves it)")
    if url:
        parts = urlsplit(url)
        try:
            parts.port  # noqa: B018 (raises for a port that is not a number)
        except ValueError:
            port_ok = False
        else:
            port_ok = True
        hidden = "@" in parts.path + parts.query + parts.fragment  # "user:84/pw@host": host?
        if not port_ok or not parts.hostname or hidden:  # never echo it: it may hold a password
            raise ValueError(
                "host and port cannot be read; percent-encode '/', '?', '#' and '@' in the "
                "user and password"
            )
    return url


def _check_qos(qos: int) -> int:
    if qos > 2:
        raise ValueError("must be 0, 1 or 2")
    return qos


@dataclass(frozen=True)
class MqttSettings:
    """``[mqtt]``: vCD's own message bus (used when ``runtime.transport = "mqtt"``)."""

    url: str = setting(
        "",
        "Broker URL, wss://host/messaging/mqtt; empty: vcd.url's host. A user:password in the "
        "URL replaces the extension token login (brokers other than vCD's).",
        secret=True,
        check=_check_mqtt_url,
        mask=mask_secret,
    )
    verify_tls: bool = setting(True, "Verify the broker's TLS certificate.")
    ca_bundle: str = setting("", "CA bundle (PEM file) for the broker; empty: system CAs.")
    qos: int = setting(
        1, "MQTT QoS of subscriptions and replies: 0, 1 or 2.", minimum=0, check=_check_qos
    )
    client_id: str = setting(
        "", "MQTT client id prefix; empty: vcdext-<host>-<pid> (unique per process)."
    )
    token_file: str = setting(
        "~/.vcdext/mqtt-tokens.json",
        "File (mode 0600) holding each extension's token; written by registration.",
    )
    extension_version: str = setting(
        "1.0.0", "The version of each service's cloudapi extension (vendor/name/version)."
    )
    keepalive: int = setting(60, "MQTT keep-alive in seconds.", minimum=5)
    max_message_bytes: int = setting(
        2_097_152,
        "Largest request message accepted; a larger one is answered 413 without being decoded.",
        minimum=1024,
    )


_BUILTIN: dict[str, type[Any]] = {
    "amqp": AmqpSettings,
    "mqtt": MqttSettings,
    "runtime": RuntimeSettings,
    "plugins": PluginsSettings,
    "vcd": VcdSettings,
}


@dataclass(frozen=True)
class Settings:
    """All settings: one attribute per built-in section, contributed sections by name."""

    amqp: AmqpSettings = field(default_factory=AmqpSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    plugins: PluginsSettings = field(default_factory=PluginsSettings)
    vcd: VcdSettings = field(default_factory=VcdSettings)
    #: Where the settings came from (the file path, or ``"defaults"``).
    source: str = "defaults"
    #: Sections contributed through ``vcdext.settings`` entry points, by section name.
    sections: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Where each key that was set came from (file path, ``environment VCDEXT_…``, a flag).
    origins: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def prefetch(self) -> int:
        """The effective prefetch count."""
        return self.amqp.prefetch or 4 * self.runtime.workers

    def section(self, cls: type[T]) -> T:
        """The contributed section declared by ``cls`` (its defaults when it was not loaded)."""
        for value in self.sections.values():
            if type(value) is cls:
                found: T = value
                return found
        return cls()

    def source_of(self, key: str) -> str:
        """Where ``key``'s value came from: the file path, ``environment VCDEXT_…`` or a
        flag; for a key nobody set, the file that was read (else ``defaults``)."""
        while key:
            if key in self.origins:
                return self.origins[key]
            key = key.rpartition(".")[0]
        return self.source

    def override(self, key: str, value: str, *, source: str) -> Settings:
        """A copy with ``key`` (``section.name``) set from the text ``value`` (a command-line
        flag such as ``--amqp-url``), validated as an environment override would be.

        :raises ConfigError: naming ``key`` and ``source``.
        """
        return _apply(self, _all_sections(), key, value, source)


# -- declarations -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Field:
    name: str
    type: Any  # the annotation, ``| None`` removed
    kind: str
    spec: _Spec
    default: Any  # dataclasses.MISSING when required or built by a factory
    required: bool


_FIELDS: dict[type[Any], tuple[_Field, ...]] = {}


def _fields(cls: type[Any]) -> tuple[_Field, ...]:
    if cls not in _FIELDS:
        _FIELDS[cls] = _declared_fields(cls)
    return _FIELDS[cls]


def _declared_fields(cls: type[Any]) -> tuple[_Field, ...]:
    hints = get_type_hints(cls)
    found = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(_META)
        if not isinstance(spec, _Spec):
            raise TypeError(f"{cls.__qualname__}.{f.name} is not declared with setting()")
        tp = hints[f.name]
        if get_origin(tp) in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                raise TypeError(f"{cls.__qualname__}.{f.name}: unsupported type {tp}")
            tp = args[0]
        kind = "tables" if spec.extra_tables else _kind(tp, f"{cls.__qualname__}.{f.name}")
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        found.append(_Field(f.name, tp, kind, spec, f.default, required))
    return tuple(found)


def _kind(tp: Any, where: str) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal and all(isinstance(a, str) for a in args):
        return "choice"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return "table"
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        if args[0] is str:
            return "list"
        if isinstance(args[0], type) and dataclasses.is_dataclass(args[0]):
            return "array of tables"
    if tp in (str, int, float, bool):
        return str(tp.__name__)
    raise TypeError(f"{where}: unsupported setting type {tp}")


def _check_section(name: str, cls: Any) -> str | None:
    """Why ``cls`` cannot be the section ``name`` (``None`` when it can)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return "is not a dataclass"
    try:
        fields = _fields(cls)
        cls()
    except TypeError as exc:
        return f"is not a settings dataclass ({exc})"
    if any(f.kind in ("table", "array of tables") for f in fields):
        return "has nested tables (a config section holds plain keys)"
    return None


@functools.cache
def _contributed() -> dict[str, type[Any]]:
    """The ``vcdext.settings`` entry points: ``section = "module:Dataclass"`` adds a config
    section; ``"plugins.<name>" = "module:Dataclass"`` declares a plugin's own table."""
    found: dict[str, type[Any]] = {}
    for entry in sorted(entry_points(group=SETTINGS_GROUP), key=lambda e: e.name):
        name = entry.name
        problem = None
        if name in _BUILTIN or not re.fullmatch(r"[a-z][a-z0-9]*|plugins\.[\w-]+", name):
            problem = "is not an allowed section name"
        else:
            try:
                cls = entry.load()
            except Exception as exc:  # a broken add-on must not take the whole CLI down
                problem = f"failed to load ({type(exc).__name__}: {exc})"
            else:
                problem = _check_section(name, cls)
        if problem:
            log.warning("settings section %r (%s) %s; skipped", name, entry.value, problem)
        else:
            found[name] = cls
    return found


def _all_sections() -> dict[str, type[Any]]:
    extra = {n: c for n, c in _contributed().items() if "." not in n}
    return {**_BUILTIN, **extra}


def _plugin_schemas() -> dict[str, type[Any]]:
    return {n.split(".", 1)[1]: c for n, c in _contributed().items() if n.startswith("plugins.")}


# -- the validator ------------------------------------------------------------------------


class _Invalid(ValueError):
    pass


def _convert(tp: Any, value: Any, from_env: bool) -> Any:
    if tp is str:
        if isinstance(value, str):
            return value
        raise _Invalid("expected a string")
    if tp is bool:
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise _Invalid("expected true or false")
    if tp is int or tp is float:
        what = "an integer" if tp is int else "a number"
        if from_env and isinstance(value, str):
            try:
                value = tp(value.strip())
            except ValueError:
                raise _Invalid(f"expected {what}") from None
        accepted = int if tp is int else (int, float)
        if isinstance(value, bool) or not isinstance(value, accepted):
            raise _Invalid(f"expected {what}")
        if isinstance(value, float) and not math.isfinite(value):  # nan, an endless timeout
            raise _Invalid(f"expected {what}")
        return tp(value)
    if get_origin(tp) is Literal:
        choices: tuple[str, ...] = get_args(tp)
        if isinstance(value, str):
            for choice in choices:
                if value.strip().lower() == choice.lower():
                    return choice
        raise _Invalid(f"expected one of {', '.join(choices)}")
    # tuple[str, ...]
    if from_env and isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                raise _Invalid("expected a JSON array of strings or a,b,c") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise _Invalid("expected a list of strings")


def _shown(spec: _Spec, value: Any) -> str:
    if spec.secret:  # never echo a secret
        return repr(spec.mask(value) if spec.mask else _MASK)
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _value(f: _Field, raw: Any, key: str, source: str, *, from_env: bool) -> Any:
    tp: Any = f.type
    if f.kind == "table":
        return parse_table(tp, raw, source=source, where=key)
    if f.kind == "array of tables":
        if not isinstance(raw, list):
            raise ConfigError(key, source, "expected an array of tables ([[...]])")
        inner = get_args(tp)[0]
        return tuple(
            parse_table(inner, item, source=source, where=f"{key}[{i}]")
            for i, item in enumerate(raw)
        )
    try:
        value = _convert(tp, raw, from_env)
        if f.spec.minimum is not None and value < f.spec.minimum:
            raise _Invalid(f"must be at least {f.spec.minimum:g}")
        if f.spec.check is not None:
            value = f.spec.check(value)
    except ValueError as exc:
        raise ConfigError(key, source, f"{exc}, got {_shown(f.spec, raw)}") from None
    return value


def parse_table(cls: type[T], table: Any, *, source: str, where: str = "") -> T:
    """Validate one TOML table against the settings dataclass ``cls`` (fields declared with
    :func:`setting`; nested dataclasses are sub-tables, ``tuple[Dataclass, ...]`` arrays of
    tables) and build it.

    :param source: where the table came from (a file path), named in every error.
    :param where: the table's key path (``"amqp"``, ``"orgs[0]"``), prefixed to each key.
    :raises ConfigError: an unknown key, a missing required key or a bad value.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(where or "(file)", source, "expected a table")
    fields = {f.name: f for f in _fields(cls)}
    extra = next((f for f in fields.values() if f.kind == "tables"), None)
    values: dict[str, Any] = {}
    tables: dict[str, Mapping[str, Any]] = {}
    for name, raw in table.items():
        key = f"{where}.{name}" if where else name
        f = fields.get(name)
        if f is None or f is extra:
            if extra is not None and isinstance(raw, Mapping):
                tables[name] = MappingProxyType(dict(raw))
                continue
            known = ", ".join(n for n, g in fields.items() if g is not extra)
            raise ConfigError(key, source, f"unknown key (known keys: {known})")
        values[name] = _value(f, raw, key, source, from_env=False)
    for f in fields.values():
        if f.required and f.name not in values and f is not extra:
            raise ConfigError(f"{where}.{f.name}" if where else f.name, source, "is required")
    if extra is not None:
        values[extra.name] = MappingProxyType(tables)
    return cls(**values)


def _apply(
    settings: Settings, sections: Mapping[str, type[Any]], key: str, raw: str, source: str
) -> Settings:
    section, _, name = key.partition(".")
    cls = sections.get(section)
    f = next((f for f in _fields(cls) if f.name == name), None) if cls else None
    if cls is None or f is None or f.kind in ("tables", "table", "array of tables"):
        raise ConfigError(key, source, "unknown setting")
    current = getattr(settings, section) if section in _BUILTIN else settings.section(cls)
    changed = dataclasses.replace(current, **{name: _value(f, raw, key, source, from_env=True)})
    origins = MappingProxyType({**settings.origins, key: source})
    if section in _BUILTIN:
        return dataclasses.replace(settings, origins=origins, **{section: changed})
    extra = MappingProxyType({**settings.sections, section: changed})
    return dataclasses.replace(settings, origins=origins, sections=extra)


# -- documented keys ----------------------------------------------------------------------


@dataclass(frozen=True)
class SettingInfo:
    """One documented key, as listed by ``vcdext config show`` and in ``docs/``."""

    key: str
    kind: str
    default: Any
    description: str
    secret: bool
    env: str


def _infos(sections: Mapping[str, type[Any]]) -> Iterator[SettingInfo]:
    for section, cls in sections.items():
        for f in _fields(cls):
            if f.kind in ("tables", "table", "array of tables"):
                continue
            yield SettingInfo(
                key=f"{section}.{f.name}",
                kind=f.kind,
                default=f.default,
                description=f.spec.description,
                secret=f.spec.secret,
                env=f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}",
            )


def all_settings() -> Iterator[SettingInfo]:
    """Every documented key, section by section (contributed sections included)."""
    return _infos(_all_sections())


# -- loading ------------------------------------------------------------------------------


def read_toml(
    path: str | os.PathLike[str],
    key: str,
    *,
    source: str | None = None,
    syntax_key: str | None = None,
) -> dict[str, Any]:
    """Read a TOML file. A missing or unreadable file is a :class:`ConfigError` naming
    ``key`` and ``source`` (default: the path); invalid TOML names ``syntax_key`` (default
    ``key``) and the path."""
    path_text = str(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(key, source or path_text, "no such file") from None
    except OSError as exc:
        raise ConfigError(key, source or path_text, f"cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(syntax_key or key, path_text, f"not valid TOML: {exc}") from None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the TOML file (``path``, given as ``--config``, or ``$VCDEXT_CONFIG``; none means
    defaults), then apply ``VCDEXT_<SECTION>_<KEY>`` overrides from ``environ`` (default: the
    process environment). Every error names the key and where its value came from."""
    env = os.environ if environ is None else environ
    named_by = "--config"
    if path is None and env.get(CONFIG_ENV):
        path, named_by = env[CONFIG_ENV], f"environment {CONFIG_ENV}"
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        data = read_toml(path, source, source=named_by, syntax_key="(file)")
    sections = _all_sections()
    for section, table in data.items():
        if section not in sections:
            raise ConfigError(section, source, f"unknown section (known: {', '.join(sections)})")
        if not isinstance(table, dict):
            raise ConfigError(section, source, "expected a table")
    built = {
        name: parse_table(cls, data.get(name, {}), source=source, where=name)
        for name, cls in sections.items()
    }
    plugins: PluginsSettings = built["plugins"]
    for plugin, schema in _plugin_schemas().items():
        if plugin in plugins.options:  # validated; the plugin still receives the table
            parse_table(schema, plugins.options[plugin], source=source, where=f"plugins.{plugin}")
    origins = {f"{s}.{k}": source for s, table in data.items() for k in table}
    settings = Settings(
        **{name: built[name] for name in _BUILTIN},
        source=source,
        sections=MappingProxyType({n: v for n, v in built.items() if n not in _BUILTIN}),
        origins=MappingProxyType(origins),
    )
    infos = list(_infos(sections))
    known_env = {info.env for info in infos}
    for name in sorted(env):
        section = next((s for s in sections if name.startswith(f"{ENV_PREFIX}{s.upper()}_")), "")
        if section and name not in known_env:
            similar = sorted(
                e for e in known_env if e.startswith(f"{ENV_PREFIX}{section.upper()}_")
            )
            raise ConfigError(
                name[len(ENV_PREFIX) :].lower().replace("_", ".", 1),
                f"environment {name}",
                f"unknown setting (known in [{section}]: {', '.join(similar)})",
            )
    for info in infos:
        if info.env in env:
            settings = _apply(
                settings, sections, info.key, env[info.env], f"environment {info.env}"
            )
    return settings


# -- showing ------------------------------------------------------------------------------

#: Parts of a plugin setting's name that mark it secret in ``vcdext config show``.
SECRET_WORDS = (
    "pass",  # password, passwd, passphrase
    "secret",
    "token",
    "key",  # apikey, api_key, private_key (routing_key excepted)
    "credential",
    "auth",
    "bearer",
    "private",
    "cookie",
)


def _looks_secret(name: str) -> bool:
    lowered = name.lower()
    return lowered != "routing_key" and any(word in lowered for word in SECRET_WORDS)


def _masked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _MASK if _looks_secret(str(k)) else _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    return value


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value))


def render_settings(settings: Settings) -> str:
    """The effective settings as commented TOML, secrets masked (``vcdext config show``)."""
    lines = [f"# effective settings (source: {settings.source}; environment overrides applied)"]
    for section, cls in _all_sections().items():
        values = getattr(settings, section) if section in _BUILTIN else settings.section(cls)
        lines.append(f"\n[{section}]")
        for f in _fields(cls):
            if f.kind == "tables":
                continue
            value = getattr(values, f.name)
            env = f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}"
            lines.append(f"# {f.spec.description} (env {env})")
            if value is None:
                lines.append(f"# {f.name} = (unset)")
            elif f.spec.secret and value != "":
                shown = f.spec.mask(value) if f.spec.mask else _MASK
                lines.append(f"{f.name} = {json.dumps(shown)}")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
    schemas = _plugin_schemas()
    for plugin, table in settings.plugins.options.items():
        lines.append(f"\n[plugins.{plugin}]")
        declared = {f.name: f for f in _fields(schemas[plugin])} if plugin in schemas else {}
        for key, value in table.items():
            spec = declared[key].spec if key in declared else None
            secret = spec.secret if spec is not None else _looks_secret(key)
            if secret:
                lines.append(f"{key} = {json.dumps(_MASK)}")
            else:
                lines.append(f"{key} = {_toml_value(_masked(value))}")
    return "\n".join(lines) + "\n"
