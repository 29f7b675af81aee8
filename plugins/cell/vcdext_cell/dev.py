"""``vcdext dev``: the local cell and the runtime in one process, nothing else needed.

The runtime reaches the cell exactly as it reaches a real vCD: its vCD client logs in over
HTTP and registers every enabled service, and requests travel over AMQP (kombu's in-memory
transport unless ``--amqp-url`` names a real broker).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vcdext.settings import Settings, mask_secret

from .command import add_cell_options, cell_from_args

if TYPE_CHECKING:
    from vcdext.registry import Service

    from . import Cell

#: The API version the printed curl line asks for.
_CURL_VERSION = "36.0"


def add_commands(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``vcdext dev`` to the ``vcdext`` command's subparsers."""
    dev = sub.add_parser(
        "dev",
        parents=[common],
        help="develop without vCD: the local cell plus every plugin, in one process",
        description="Start the local cell (a stand-in for vCloud Director on "
        "http://[cell] host:port) and the runtime with every enabled plugin, register the "
        "plugins with the cell through the vCD client, and print the URL, the demo users and "
        "a curl line to try. No broker is needed: messages use kombu's in-memory transport "
        "unless --amqp-url names a real broker. Stops on Ctrl-C or SIGTERM.",
    )
    add_cell_options(dev)
    dev.add_argument(
        "--amqp-url",
        metavar="URL",
        default="memory://",
        help="broker URL (default memory://: cell and runtime share this process)",
    )
    dev.set_defaults(handler=run_dev)


def run_dev(args: argparse.Namespace, settings: Settings) -> int:
    """Start the cell, then serve the runtime against it until a signal."""
    from vcdext.app import run

    from . import CellError

    cell = cell_from_args(args, settings)
    admin = next((c for c in cell.demo_credentials if c.sysadmin), None)
    if admin is None:
        print(
            "vcdext: error: the seed has no System administrator to register the plugins with",
            file=sys.stderr,
        )
        return 2
    try:
        cell.start()
    except CellError as exc:
        print(f"vcdext: error: {exc} (try --port 0 for any free port)", file=sys.stderr)
        return 1
    try:
        # The runtime's own settings point its vCD client at the cell.
        dev_settings = dataclasses.replace(
            settings,
            vcd=dataclasses.replace(
                settings.vcd,
                url=cell.url,
                username=admin.user,
                org=admin.org,
                password=admin.password,
                password_file="",
            ),
        )
        return run(
            dev_settings,
            amqp_url=args.amqp_url,
            register=True,
            on_ready=lambda runtime: print(banner(cell, runtime.registry.services), flush=True),
        )
    finally:
        cell.stop()


def banner(cell: Cell, services: Mapping[str, Service]) -> str:
    """What `vcdext dev` prints once everything is up."""
    demo = cell.seed.source == "demo"
    users = [c for c in cell.demo_credentials]
    lines = [
        "",
        f"vcdext dev: local vCD cell at {cell.url}  (broker {mask_secret(cell.amqp_url)})",
        "services: "
        + (
            ", ".join(f"{s.name} ({', '.join(s.api_filters)})" for s in services.values()) or "none"
        ),
        "users" + (" (demo seed):" if demo else ":"),
    ]
    width = max((len(c.login) for c in users), default=0)
    for c in users:
        password = f"  password: {c.password}" if demo else ""
        note = (
            "  (system administrator)"
            if c.sysadmin
            else (f"  rights: {', '.join(c.rights)}" if c.rights else "  (no extension rights)")
        )
        lines.append(f"  {c.login:<{width}}{password}{note}")
    tenant = next((c for c in users if not c.sysadmin), users[0] if users else None)
    if (
        tenant is not None
        and demo
        and any(op.path.template == "/api/hello" for s in services.values() for op in s.operations)
    ):
        lines += [
            "try it (log in, then call the hello plugin through the cell):",
            "  " + curl_line(cell.url, tenant.login, tenant.password, "/api/hello"),
        ]
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def curl_line(base_url: str, login: str, password: str, path: str) -> str:
    """A shell line that logs in to the cell and calls ``path`` with the session token."""
    accept = shlex.quote(f"Accept: application/*+xml;version={_CURL_VERSION}")
    auth = shlex.quote(f"{login}:{password}")
    return (
        f"TOKEN=$(curl -s -o /dev/null -D - -u {auth} -X POST -H {accept} "
        f"{shlex.quote(base_url + '/api/sessions')} | tr -d '\\r' "
        f"| sed -n 's/^x-vcloud-authorization: //Ip') && "
        f'curl -s -H "x-vcloud-authorization: $TOKEN" -H {accept} '
        f"{shlex.quote(base_url + path)}; echo"
    )
