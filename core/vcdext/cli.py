"""The ``vcdext`` command."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import Any

from .app import create_runtime
from .errors import ConfigError, VcdExtError
from .operations import Operation
from .registry import Service
from .settings import CONFIG_ENV, Settings, load_settings, render_settings

log = logging.getLogger("vcdext")

_EPILOG = f"""\
The config file is TOML; without --config, ${CONFIG_ENV} names it, and without either the
defaults apply. Any key can be overridden with VCDEXT_<SECTION>_<KEY> (for example
VCDEXT_AMQP_URL). `vcdext config show` prints every key with its description.
"""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"TOML config file (default: ${CONFIG_ENV}, else built-in defaults)",
    )
    parser = argparse.ArgumentParser(
        prog="vcdext",
        description="Run and inspect vCloud Director extension services built with vcdext.",
        epilog=_EPILOG,
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser(
        "run",
        parents=[common],
        help="serve the enabled plugins over AMQP",
        description="Serve every enabled plugin's extension service over AMQP (amqp.url) "
        "until SIGTERM or Ctrl-C; in-flight requests are answered before it exits. Once the "
        "exchange and queues exist, the registration with vCD ([vcd] url) is reconciled.",
    )
    run.add_argument("--amqp-url", metavar="URL", help="broker URL (overrides amqp.url)")
    run.add_argument(
        "--no-register",
        action="store_true",
        help="do not reconcile the registration with vCD at start-up (see `vcdext register`)",
    )
    _health_arguments(
        run,
        "serve /healthz, /readyz and /metrics on this port (overrides "
        "runtime.health_port; default: none)",
    )
    run.add_argument(
        "--check",
        action="store_true",
        help="load the config and plugins, log in to the broker and vCD, print what would be "
        "served and registered, change nothing, exit 0 (all in order) or 1",
    )
    run.set_defaults(handler=_run)

    health = sub.add_parser(
        "health",
        parents=[common],
        help="ask a running `vcdext run` whether it is healthy (exit 0) or not (exit 1)",
        description="GET /healthz from the health port of a `vcdext run` on this host "
        "(runtime.health_port and runtime.health_host of the same config), print the "
        "answer, exit 0 when it is healthy and 1 otherwise. For a container's HEALTHCHECK.",
    )
    _health_arguments(health, "the health port to ask (overrides runtime.health_port)")
    health.add_argument(
        "--ready", action="store_true", help="ask /readyz (serving and registered) instead"
    )
    health.set_defaults(handler=_health)

    plugins = sub.add_parser(
        "plugins",
        parents=[common],
        help="list plugins, operations, API filters, links, rights",
        description="List the enabled plugins with their service, operations, the vCD API "
        "filter patterns derived from them, service links and rights. Plugins that failed to "
        "load are listed last.",
    )
    plugins.add_argument("--json", action="store_true", help="print JSON instead of text")
    plugins.set_defaults(handler=_plugins)

    config = sub.add_parser("config", parents=[common], help="inspect the configuration")
    config_sub = config.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    show = config_sub.add_parser(
        "show",
        parents=[common],
        help="print the effective settings (secrets masked)",
        description="Print the effective settings as commented TOML: file values, then "
        "environment overrides, then defaults. Passwords are masked.",
    )
    show.set_defaults(handler=_config_show)
    for add_commands in _command_modules():
        add_commands(sub, common)
    return parser


#: Entry-point group through which other distributions add commands (vcdext-cell adds
#: ``cell`` and ``dev``). Each entry point names ``add_commands(subparsers, common)``.
COMMANDS_GROUP = "vcdext.commands"

_AddCommands = Callable[[Any, argparse.ArgumentParser], None]


def _command_modules() -> list[_AddCommands]:
    # Commands that live beside the part they drive; each adds parsers with a `handler`.
    from . import cli_i18n, cli_register

    found: list[_AddCommands] = [cli_register.add_commands, cli_i18n.add_commands]
    for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name):
        try:
            found.append(entry.load())
        except Exception as exc:  # a broken add-on must not take the whole CLI down
            print(
                f"vcdext: warning: command {entry.name!r} ({entry.value}) failed to load "
                f"and is skipped: {type(exc).__name__}: {exc}",
                file=sys.stderr,
            )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(f"vcdext {__version__}")
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        if args.command is None:
            parser.print_help()
        else:
            with contextlib.suppress(SystemExit):  # argparse exits 0 after -h; this is a 2
                parser.parse_args([args.command, "-h"])
        return 2
    try:
        settings = load_settings(getattr(args, "config", None))
        _configure_logging(settings)
        result: int = handler(args, settings)
        return result
    except VcdExtError as exc:
        print(f"vcdext: error: {exc}", file=sys.stderr)
        return 2


def _config_show(args: argparse.Namespace, settings: Settings) -> int:
    print(render_settings(settings), end="")
    return 0


def _configure_logging(settings: Settings) -> None:
    from .logs import configure_logging

    configure_logging(settings.runtime.log_level, settings.runtime.log_format)


def _health_arguments(parser: argparse.ArgumentParser, port_help: str) -> None:
    parser.add_argument("--health-port", metavar="PORT", help=port_help)
    parser.add_argument(
        "--health-host",
        metavar="ADDRESS",
        help="address of the health port (overrides runtime.health_host; default 127.0.0.1)",
    )


def _with_health_flags(args: argparse.Namespace, settings: Settings) -> Settings:
    # Validated (and their source named) like the settings they override.
    if args.health_port is not None:
        settings = settings.override(
            "runtime.health_port", args.health_port, source="--health-port"
        )
    if args.health_host is not None:
        settings = settings.override(
            "runtime.health_host", args.health_host, source="--health-host"
        )
    return settings


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from .app import check, run

    if args.amqp_url is not None:  # validated (and its source named) like amqp.url
        settings = settings.override("amqp.url", args.amqp_url, source="--amqp-url")
    settings = _with_health_flags(args, settings)
    if args.check:
        return check(settings)
    return run(settings, register=not args.no_register)


def _health(args: argparse.Namespace, settings: Settings) -> int:
    from .health import probe

    settings = _with_health_flags(args, settings)
    host, port = settings.runtime.health_host, settings.runtime.health_port
    if not port:
        raise ConfigError(
            "runtime.health_port",
            settings.source_of("runtime.health_port"),
            "not set; `vcdext health` asks the health port of `vcdext run`",
        )
    path = "/readyz" if args.ready else "/healthz"
    try:
        status, body = probe(host, port, path)
    except OSError as exc:
        print(f"vcdext: unhealthy: nothing answers on {host}:{port}{path} ({exc})")
        return 1
    print(body.strip())
    return 0 if status == 200 else 1


def _service_dict(service: Service) -> dict[str, Any]:
    return {
        "name": service.name,
        "namespace": service.namespace,
        "vendor": service.vendor,
        "routing_key": service.routing_key,
        "priority": service.priority,
        "operations": [
            {
                "method": op.method.value,
                "path": op.path.template,
                "name": op.name,
                "rights": list(op.rights),
                "admin_only": op.admin_only,
                "same_org": op.same_org,
                "open": op.is_open,
                "inline": op.inline,
                "consumes": list(op.consumes),
                "produces": list(op.produces),
            }
            for op in service.operations
        ],
        "api_filters": list(service.api_filters),
        "links": [
            {
                "rel": link.rel,
                "href": link.href,
                "type": link.mime_type,
                "resource_type": link.resource_type,
                "resource_id": link.resource_id,
            }
            for link in service.links
        ],
        "rights": [
            {
                "name": r.full_name,
                "description": r.description,
                "category": r.category,
                "bundle_key": r.bundle_key,
            }
            for r in service.rights
        ],
        "resource_classes": [
            {
                "name": c.name,
                "mime_type": c.mime_type,
                "actions": [
                    {
                        "name": a.name,
                        "method": a.method,
                        "url_pattern": a.url_pattern,
                        "acl": [
                            {
                                "name": rule.name,
                                "principal": rule.principal,
                                "organization": rule.organization,
                                "resource": rule.resource,
                            }
                            for rule in a.acl
                        ],
                    }
                    for a in c.actions
                ],
            }
            for c in service.resource_classes
        ],
    }


def _access(op: Operation) -> str:
    """Who may call ``op``, for the operations table."""
    if op.is_open:
        return "  open: any authenticated caller"
    parts = ["System administrators only"] if op.admin_only else []
    if op.rights:
        parts.append(f"rights: {', '.join(op.rights)}")
    if op.same_org is not None:
        parts.append(f"own org {{{op.same_org}}} (or System)")
    return "  " + "; ".join(parts)


def _plugins(args: argparse.Namespace, settings: Settings) -> int:
    runtime = create_runtime(settings)
    services = runtime.registry.services
    if args.json:
        doc = {
            "plugins": [
                {
                    "name": name,
                    "distribution": runtime.distribution_of(name),
                    "service": _service_dict(services[name]) if name in services else None,
                }
                for name in runtime.plugin_names
            ],
            "failed": [
                {"name": f.name, "distribution": f.distribution, "error": f.error}
                for f in runtime.failures
            ],
        }
        print(json.dumps(doc, indent=2))
        return 0
    if not runtime.plugin_names and not runtime.failures:
        print("no vcdext plugins are installed")
    for name in runtime.plugin_names:
        print(f"{name}  ({runtime.distribution_of(name)})")
        if name not in services:
            print("  declares no service")
            continue
        s = services[name]
        print(
            f"  service      {s.name}  namespace={s.namespace}  vendor={s.vendor or '-'}  "
            f"routing_key={s.routing_key}  priority={s.priority}"
        )
        print("  operations")
        width = max((len(op.path.template) for op in s.operations), default=0)
        for op in s.operations:
            extra = _access(op) + ("  [inline]" if op.inline else "")
            print(f"    {op.method.value:<7} {op.path.template:<{width}}  {op.name}{extra}")
        print("  API filters (UrlPattern)")
        for pattern in s.api_filters:
            print(f"    {pattern}")
        print("  service links" + ("" if s.links else "  (none)"))
        for link in s.links:
            print(f"    rel={link.rel} type={link.mime_type} on {link.resource_type} → {link.href}")
        print("  rights" + ("" if s.rights else "  (none)"))
        for right in s.rights:
            print(
                f"    {right.full_name}" + (f"  — {right.description}" if right.description else "")
            )
        if s.resource_classes:
            print("  resource classes (vCD authorization framework)")
        for c in s.resource_classes:
            print(f"    {c.name}")
            for a in c.actions:
                rules = "; ".join(f"{r.name}: {r.principal} in {r.organization} org" for r in a.acl)
                print(f"      {a.method:<7} {a.url_pattern}  {a.name}  ({rules})")
    if runtime.failures:
        print("failed to load (skipped):")
        for f in runtime.failures:
            print(f"  {f.name}  ({f.distribution}): {f.error}")
    return 0
