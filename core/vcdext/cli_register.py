"""``vcdext register`` and ``vcdext unregister``: the registration, by hand.

Part of the CLI (it builds a runtime to learn the enabled services, so it sits above the
composition root, not in :mod:`vcdext.vcd`). ``cli.py`` calls :func:`add_commands`. Failures
(a wrong password, an unreachable vCD, a refused change) surface as
:class:`vcdext.VcdExtError`, which the CLI prints as one ``vcdext: error: ...`` line.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .app import create_runtime
from .errors import ConfigError, VcdExtError
from .registry import Service
from .settings import Settings
from .vcd import VcdClient, register_services, unregister_service


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``register`` and ``unregister`` to the ``vcdext`` subcommands."""
    register = sub.add_parser(
        "register",
        parents=[common],
        help="register the enabled services with vCD",
        description="Make vCD's extension registration match the enabled plugins: each "
        "service, its API filters, service links, API definition, rights and localization "
        "bundle. Changes only what differs; a second run changes nothing. Needs [vcd] url, "
        "username and a password.",
    )
    register.add_argument(
        "--dry-run",
        action="store_true",
        help="print the planned changes as a table; change nothing",
    )
    register.add_argument(
        "--prune",
        action="store_true",
        help="also delete services (MQTT: API extensions) vcdext registered earlier whose "
        "plugin is no longer enabled",
    )
    register.set_defaults(handler=_register)
    unregister = sub.add_parser(
        "unregister",
        parents=[common],
        help="disable and delete a service in vCD",
        description="Disable, then delete an extension service in vCD, with its filters, "
        "links and API definitions. NAME is a plugin name or a service namespace. With "
        'runtime.transport = "mqtt" it is the API extension, its API filters and its tokens; '
        "NAME may also be an extension id, vendor/name/version or an extension's name.",
    )
    unregister.add_argument("name", metavar="NAME", help="plugin name or service namespace")
    unregister.set_defaults(handler=_unregister)


def _require_url(settings: Settings, command: str) -> None:
    if not settings.vcd.url:
        raise ConfigError(
            "vcd.url",
            settings.source_of("vcd.url"),
            f"not set; `vcdext {command}` needs the vCD to talk to",
        )


def _register(args: argparse.Namespace, settings: Settings) -> int:
    _require_url(settings, "register")
    client = VcdClient.from_settings(settings)  # config errors before plugins load
    runtime = create_runtime(settings)
    if args.prune and runtime.failures:
        client.close()
        # Nothing is known of a plugin that did not load (not even its namespace): its
        # service would look dropped and be deleted, under any instance still serving it.
        failed = ", ".join(f"{f.name} ({f.error})" for f in runtime.failures)
        raise VcdExtError(
            f"--prune refused: enabled plugin(s) failed to load: {failed}; their services "
            "would be deleted. Fix them, or remove them from plugins.enabled, then prune."
        )
    try:
        result = register_services(
            runtime,
            settings,
            dry_run=args.dry_run,
            prune=args.prune,
            client=client,
            messages=runtime.bundle_messages(),
        )
    finally:
        client.close()
    print(result.report())
    return 0


def _unregister(args: argparse.Namespace, settings: Settings) -> int:
    _require_url(settings, "unregister")
    client = VcdClient.from_settings(settings)
    services = create_runtime(settings).registry.services
    if settings.runtime.transport == "mqtt":
        return _unregister_extension(args.name, settings, client, services)
    namespace = services[args.name].namespace if args.name in services else args.name
    with client:
        plan = unregister_service(client, namespace)
    if plan is None:
        print(f"no extension service {namespace} in {client.base_url}; nothing to do")
    else:
        name = plan.actual.name if plan.actual else namespace
        print(f"disabled and deleted extension service {name} ({namespace})")
    return 0


def _unregister_extension(
    name: str, settings: Settings, client: VcdClient, services: Mapping[str, Service]
) -> int:
    """``vcdext unregister`` with ``runtime.transport = "mqtt"``: NAME is a plugin name or
    namespace (the extension of its service), an extension id, ``vendor/name/version``, or the
    name of one extension."""
    from .vcd.extension_prune import unregister_extension
    from .vcd.extensions import desired_extension
    from .vcd.tokens import TokenFile

    service = services.get(name) or next(
        (s for s in services.values() if s.namespace == name), None
    )
    ref: str | tuple[str, str, str] = name
    if service is not None:
        d = desired_extension(service, settings.mqtt.extension_version)
        ref = (d.vendor, d.name, d.version)
    with client:
        result = unregister_extension(client, ref, TokenFile(settings.mqtt.token_file))
    if result is None:
        shown = "/".join(ref) if isinstance(ref, tuple) else ref
        print(f"no MQTT extension {shown} in {client.base_url}; nothing to do")
        return 0
    print(result.table())
    (ext_id,) = result.checked
    print(f"disabled and deleted MQTT extension {ext_id} with its API filters and tokens")
    return 0
