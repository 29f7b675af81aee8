"""Typed settings: a TOML file, then ``VCDEXT_<SECTION>_<KEY>`` environment overrides.

Every key has a type, a default and a description (``vcdext config show`` prints them all).
A bad value raises :class:`~vcdext.errors.ConfigError` naming the key and where it came from.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import ConfigError

#: Environment variable naming the config file when ``--config`` is not given.
CONFIG_ENV = "VCDEXT_CONFIG"
ENV_PREFIX = "VCDEXT_"
_MASK = "********"


def _setting(
    default: Any,
    description: str,
    *,
    kind: str,
    secret: bool = False,
    minimum: float | None = None,
) -> Any:
    return field(
        default=default,
        metadata={"description": description, "kind": kind, "secret": secret, "minimum": minimum},
    )


@dataclass(frozen=True)
class AmqpSettings:
    """``[amqp]``: the broker vCD publishes extension requests to."""

    url: str = _setting(
        "amqp://guest:guest@localhost:5672//",
        "Broker URL (kombu syntax). Use the broker vCD is configured with; the password is masked.",
        kind="str",
        secret=True,
    )
    exchange: str = _setting(
        "vcdext",
        "Durable direct exchange that vCD publishes requests to; declared at start-up.",
        kind="str",
    )
    prefetch: int = _setting(
        0,
        "Unacknowledged requests held at once; 0 means twice runtime.workers.",
        kind="int",
        minimum=0,
    )
    heartbeat: int = _setting(
        60, "AMQP heartbeat in seconds (0 turns heartbeats off).", kind="int", minimum=0
    )
    max_message_bytes: int = _setting(
        1_048_576,
        "Largest request message accepted; a larger one is answered 413 without being decoded. "
        "The default carries vCD's own 512 KB request limit once base64-encoded.",
        kind="int",
        minimum=1024,
    )
    max_redeliveries: int = _setting(
        5,
        "A request redelivered more often than this is rejected without requeue (dead-lettered "
        "where a DLX is configured) instead of being run again.",
        kind="int",
        minimum=0,
    )


@dataclass(frozen=True)
class RuntimeSettings:
    """``[runtime]``: how requests are processed."""

    workers: int = _setting(
        8, "Handler threads; a slow handler never blocks the AMQP loop.", kind="int", minimum=1
    )
    timeout: float = _setting(
        10.0,
        "vCD's extensibility.timeout in seconds; requests older than this are not worth answering.",
        kind="float",
        minimum=0.1,
    )
    log_level: str = _setting(
        "INFO", "Log level: DEBUG, INFO, WARNING or ERROR.", kind="choice:DEBUG,INFO,WARNING,ERROR"
    )


@dataclass(frozen=True)
class PluginsSettings:
    """``[plugins]``: which installed plugins run, and their own ``[plugins.<name>]`` tables."""

    enabled: tuple[str, ...] | None = _setting(
        None,
        "Plugins to run, by entry-point name; unset means every installed plugin.",
        kind="list",
    )
    required: tuple[str, ...] = _setting(
        (), "Plugins whose failure to load stops start-up (others are skipped).", kind="list"
    )
    modules: tuple[str, ...] = _setting(
        (),
        "Plugin modules to load by import path, without packaging them: 'pkg.mod' (named "
        "after its last part) or 'name=pkg.mod'. Always enabled.",
        kind="list",
    )
    #: The ``[plugins.<name>]`` tables, handed to each plugin as its config.
    options: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: MappingProxyType({}), metadata={"kind": "tables"}
    )

    def for_plugin(self, name: str) -> Mapping[str, Any]:
        """The ``[plugins.<name>]`` table (empty when absent)."""
        return self.options.get(name, MappingProxyType({}))


@dataclass(frozen=True)
class VcdSettings:
    """``[vcd]``: the vCloud Director the runtime registers with (absent: register nothing)."""

    url: str = _setting(
        "",
        "vCD base URL, e.g. https://vcd.example.com (a trailing /api is accepted). "
        "Empty: serve AMQP only and register nothing.",
        kind="str",
    )
    username: str = _setting("", "System administrator user name.", kind="str")
    org: str = _setting("System", "Organization to log in to (System for a sysadmin).", kind="str")
    password: str = _setting(
        "", "Password (prefer VCDEXT_VCD_PASSWORD or vcd.password_file).", kind="str", secret=True
    )
    password_file: str = _setting(
        "", "File whose first line is the password (used when vcd.password is empty).", kind="str"
    )
    verify_tls: bool = _setting(True, "Verify vCD's TLS certificate.", kind="bool")
    ca_bundle: str = _setting(
        "", "CA bundle (PEM file) to verify vCD's certificate with; empty: system CAs.", kind="str"
    )
    api_version: str = _setting(
        "",
        "vCloud API version to use; empty: the highest both sides support (at least 5.1).",
        kind="str",
    )
    timeout: float = _setting(
        30.0, "Seconds to wait for one vCD API call.", kind="float", minimum=0.1
    )


@dataclass(frozen=True)
class CellSettings:
    """``[cell]``: the local development cell (``vcdext dev`` / ``vcdext cell``)."""

    host: str = _setting("127.0.0.1", "Address the cell's HTTP server listens on.", kind="str")
    port: int = _setting(
        8080, "Port of the cell's HTTP server (0: any free port).", kind="int", minimum=0
    )
    timeout: float = _setting(
        10.0,
        "The cell's extensibility.timeout: seconds it waits for a reply before answering 504.",
        kind="float",
        minimum=0.1,
    )
    seed: str = _setting(
        "",
        "Seed file (TOML) with users, orgs, rights and inventory; empty: the demo seed.",
        kind="str",
    )


@dataclass(frozen=True)
class Settings:
    """All settings, one attribute per section."""

    amqp: AmqpSettings = field(default_factory=AmqpSettings)
    runtime: RuntimeSettings = field(default_factory=RuntimeSettings)
    plugins: PluginsSettings = field(default_factory=PluginsSettings)
    vcd: VcdSettings = field(default_factory=VcdSettings)
    cell: CellSettings = field(default_factory=CellSettings)
    #: Where the settings came from (the file path, or ``"defaults"``).
    source: str = "defaults"

    @property
    def prefetch(self) -> int:
        """The effective prefetch count."""
        return self.amqp.prefetch or 2 * self.runtime.workers


_SECTIONS: dict[str, type[Any]] = {
    "amqp": AmqpSettings,
    "runtime": RuntimeSettings,
    "plugins": PluginsSettings,
    "vcd": VcdSettings,
    "cell": CellSettings,
}


@dataclass(frozen=True)
class SettingInfo:
    """One documented key, as listed by ``vcdext config show`` and in ``docs/``."""

    key: str
    kind: str
    default: Any
    description: str
    secret: bool
    env: str


def all_settings() -> Iterator[SettingInfo]:
    """Every documented key, section by section."""
    for section, cls in _SECTIONS.items():
        for f in dataclasses.fields(cls):
            if f.metadata.get("kind") == "tables":
                continue
            yield SettingInfo(
                key=f"{section}.{f.name}",
                kind=f.metadata["kind"],
                default=f.default,
                description=f.metadata["description"],
                secret=f.metadata["secret"],
                env=f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}",
            )


def _coerce(value: Any, f: dataclasses.Field[Any], key: str, source: str, from_env: bool) -> Any:
    kind: str = f.metadata["kind"]
    problem = None
    shown = _MASK if f.metadata.get("secret") else repr(value)  # never echo a secret
    if kind == "str":
        if isinstance(value, str):
            return value
        problem = f"expected a string, got {shown}"
    elif kind in ("int", "float"):
        num: Callable[[Any], float | int] = int if kind == "int" else float
        if from_env and isinstance(value, str):
            try:
                value = num(value.strip())
            except ValueError:
                problem = f"expected {'an integer' if kind == 'int' else 'a number'}, got {shown}"
        ok = isinstance(value, int) or (kind == "float" and isinstance(value, float))
        if problem is None and (isinstance(value, bool) or not ok):
            problem = f"expected {'an integer' if kind == 'int' else 'a number'}, got {shown}"
        if problem is None:
            minimum = f.metadata["minimum"]
            if minimum is not None and value < minimum:
                problem = f"must be at least {minimum}, got {shown}"
            else:
                return num(value)
    elif kind == "bool":
        if from_env and isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        problem = f"expected true or false, got {shown}"
    elif kind == "list":
        if from_env and isinstance(value, str):
            text = value.strip()
            value = (
                json.loads(text)
                if text.startswith("[")
                else [part.strip() for part in text.split(",") if part.strip()]
            )
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        problem = f"expected a list of strings, got {shown}"
    elif kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split(",")
        if isinstance(value, str) and value.upper() in choices:
            return value.upper()
        problem = f"expected one of {', '.join(choices)}, got {shown}"
    else:  # pragma: no cover - a programming error in this module
        raise AssertionError(kind)
    raise ConfigError(key, source, problem or f"invalid value {shown}")


def _build_section(section: str, cls: type[Any], table: Mapping[str, Any], source: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    tables: dict[str, Mapping[str, Any]] = {}
    for name, value in table.items():
        key = f"{section}.{name}"
        f = fields.get(name)
        if f is None or f.metadata.get("kind") == "tables":
            if "options" in fields and isinstance(value, dict):
                tables[name] = MappingProxyType(dict(value))
                continue
            known = ", ".join(k for k, v in fields.items() if v.metadata.get("kind") != "tables")
            raise ConfigError(key, source, f"unknown key (known keys: {known})")
        values[name] = _coerce(value, f, key, source, from_env=False)
    if "options" in fields:
        values["options"] = MappingProxyType(tables)
    return cls(**values)


def read_toml(
    path: str | os.PathLike[str], key: str, *, syntax_key: str | None = None
) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable or invalid file is a :class:`ConfigError`
    naming ``key`` (``syntax_key`` for invalid TOML, when given) and the path."""
    source = str(path)
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(key, source, "no such file") from None
    except OSError as exc:
        raise ConfigError(key, source, f"cannot be read ({exc.strerror})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(syntax_key or key, source, f"not valid TOML: {exc}") from None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the TOML file (``path`` or ``$VCDEXT_CONFIG``; none means defaults), then apply
    ``VCDEXT_<SECTION>_<KEY>`` overrides from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ
    if path is None and env.get(CONFIG_ENV):
        path = env[CONFIG_ENV]
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        data = read_toml(path, "--config", syntax_key="(file)")
    for section in data:
        if section not in _SECTIONS:
            raise ConfigError(section, source, f"unknown section (known: {', '.join(_SECTIONS)})")
        if not isinstance(data[section], dict):
            raise ConfigError(section, source, "expected a table")
    sections = {
        name: _build_section(name, cls, data.get(name, {}), source)
        for name, cls in _SECTIONS.items()
    }
    known_env = {info.env for info in all_settings()}
    for name in env:
        section = next((s for s in _SECTIONS if name.startswith(f"{ENV_PREFIX}{s.upper()}_")), "")
        if section and name not in known_env:
            similar = sorted(
                e for e in known_env if e.startswith(f"{ENV_PREFIX}{section.upper()}_")
            )
            raise ConfigError(
                name[len(ENV_PREFIX) :].lower().replace("_", ".", 1),
                f"environment {name}",
                f"unknown setting (known in [{section}]: {', '.join(similar)})",
            )
    for info in all_settings():
        if info.env in env:
            section, name = info.key.split(".", 1)
            f = next(f for f in dataclasses.fields(_SECTIONS[section]) if f.name == name)
            value = _coerce(env[info.env], f, info.key, f"environment {info.env}", from_env=True)
            sections[section] = dataclasses.replace(sections[section], **{name: value})
    return Settings(**sections, source=source)


def mask_secret(value: Any) -> str:
    """The value with any password removed: a URL keeps everything but its password."""
    if not isinstance(value, str):
        return _MASK
    if not value:
        return ""
    if ";" in value:  # kombu's failover syntax: several URLs, each with its own password
        return ";".join(mask_secret(part) for part in value.split(";"))
    parts = urlsplit(value)
    if parts.scheme and "://" in value:
        if parts.password is None:
            return value
        host = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return urlunsplit(parts._replace(netloc=f"{user}:{_MASK}@{host}"))
    return _MASK


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
    current = None
    for info in all_settings():
        section, name = info.key.split(".", 1)
        if section != current:
            lines.append(f"\n[{section}]")
            current = section
        value = getattr(getattr(settings, section), name)
        lines.append(f"# {info.description} (env {info.env})")
        if value is None:
            lines.append(f"# {name} = (unset)")
        else:
            shown = mask_secret(value) if info.secret else value
            lines.append(f"{name} = {json.dumps(shown) if info.secret else _toml_value(shown)}")
    for plugin, table in settings.plugins.options.items():
        lines.append(f"\n[plugins.{plugin}]")
        for key, value in table.items():
            secret = any(w in key.lower() for w in ("password", "secret", "token", "key"))
            secret = secret and key != "routing_key"
            lines.append(f"{key} = {json.dumps(_MASK) if secret else _toml_value(value)}")
    return "\n".join(lines) + "\n"
