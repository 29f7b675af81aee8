"""``vcdext cell``: run the local cell alone until SIGTERM or Ctrl-C; and what both cell
commands share: the options, starting the cell (one error line), the banner.

A runtime in another process reaches the cell's requests only through a real broker, so the
broker defaults to ``amqp.url``; ``memory://`` is accepted but reaches nothing outside this
process (``vcdext dev`` runs the cell and the runtime together instead, and stops on the
runtime's own signal handling).
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from collections.abc import Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from vcdext.errors import ConfigError
from vcdext.settings import Settings, mask_secret

from .seed import RIGHTS_FORMATS

if TYPE_CHECKING:
    from vcdext.registry import Service

    from .cell import Cell

#: The API version the printed curl line asks for.
_CURL_VERSION = "36.0"


def add_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``vcdext cell`` to the ``vcdext`` command's subparsers."""
    cell = sub.add_parser(
        "cell",
        parents=[common],
        help="run a local stand-in for vCloud Director (HTTP + AMQP)",
        description="Serve the vCloud API parts extension services use (login, extension "
        "registration, query service, tasks, events, a small inventory) and forward requests "
        "matching registered API filters over AMQP, like a vCD cell. Runs until SIGTERM or "
        "Ctrl-C. Settings: [cell] host, port, timeout, seed; the broker is amqp.url.",
    )
    add_cell_options(cell)
    cell.add_argument(
        "--amqp-url", metavar="URL", help="broker URL (default amqp.url; must be a real broker)"
    )
    cell.add_argument(
        "--mqtt-url",
        metavar="URL",
        help="also reach MQTT API extensions through this broker "
        "(ws://user:password@host:port/messaging/mqtt)",
    )
    cell.add_argument(
        "--rights-format",
        choices=RIGHTS_FORMATS,
        help="how forwarded security contexts list rights (default: the seed's, else urn)",
    )
    cell.set_defaults(handler=run_cell)


def add_cell_options(parser: argparse.ArgumentParser) -> None:
    """The options that place and shape a cell (shared by ``vcdext cell`` and ``vcdext dev``)."""
    parser.add_argument("--host", metavar="ADDR", help="address to listen on (cell.host)")
    parser.add_argument(
        "--port", type=int, metavar="N", help="port, 0 for any free one (cell.port)"
    )
    parser.add_argument("--seed", metavar="PATH", help="seed file (TOML; default: the demo seed)")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="seconds the cell waits for a reply before answering 504 (cell.timeout)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="listen beyond loopback and answer any Host name (the cell has demo passwords "
        "and unauthenticated debug pages: only on a network you trust)",
    )


def cell_from_args(args: argparse.Namespace, settings: Settings, **extra: Any) -> Cell:
    """The cell that :func:`add_cell_options` (and ``--amqp-url``) describe."""
    from .cell import Cell

    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError("--timeout", "command line", "must be positive")
    if args.amqp_url is not None:  # validated (and its source named) like amqp.url
        settings = settings.override("amqp.url", args.amqp_url, source="--amqp-url")
    if args.seed is not None:  # a seed file that cannot be read is reported against --seed
        settings = settings.override("cell.seed", args.seed, source="--seed")
    return Cell(
        settings,
        amqp_url=args.amqp_url,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        allow_remote=args.allow_remote,
        **extra,
    )


def run_cell(args: argparse.Namespace, settings: Settings) -> int:
    """Start the cell, print where it is and who can log in, serve until a signal."""
    cell = cell_from_args(
        args, settings, rights_format=args.rights_format, mqtt_url=args.mqtt_url or None
    )
    if not start_cell(cell):
        return 1
    try:
        print(banner(cell), flush=True)
        _wait_for_signal()
    finally:
        cell.stop()
    print("local cell stopped", flush=True)
    return 0


def start_cell(cell: Cell) -> bool:
    """Start ``cell``; on failure print one ``vcdext: error:`` line and return ``False``."""
    from .cell import CellError

    try:
        cell.start()
    except CellError as exc:
        hint = " (try --port 0 for any free port)" if exc.port_in_use else ""
        print(f"vcdext: error: {exc}{hint}", file=sys.stderr)
        return False
    return True


def _wait_for_signal() -> None:
    """Block until SIGTERM or SIGINT, then put the previous handlers back."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        stop.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def banner(cell: Cell, services: Mapping[str, Service] | None = None) -> str:
    """What ``vcdext cell`` (``services`` is ``None``) and ``vcdext dev`` (the services the
    runtime registered) print once everything is up: where the cell is, the broker, the
    users, and for ``dev`` the services and a curl line to try."""
    demo = cell.seed.source == "demo"
    users = cell.demo_credentials
    command = "cell" if services is None else "dev"
    lines = [
        "",
        f"vcdext {command}: local vCD cell at {cell.url}  (vCloud API: {cell.api_url})",
        f"broker {mask_secret(cell.amqp_url)}, reply exchange {cell.reply_exchange!r}, "
        f"timeout {cell.timeout:g} s, rights sent as {cell.rights_format}s",
    ]
    if cell.mqtt_url:
        lines.append(
            f"MQTT broker {mask_secret(cell.mqtt_url)}: services register as cloudapi API "
            "extensions and get vCD's MQTT envelopes"
        )
    if services is None and cell.amqp_url.startswith("memory://"):
        lines.append("note: memory:// reaches no runtime outside this process; use a real broker")
    if services is not None:
        listed = ", ".join(f"{s.name} ({', '.join(s.api_filters)})" for s in services.values())
        lines.append(f"services: {listed or 'none'}")
    lines.append("users (demo seed):" if demo else f"users (seed {cell.seed.source}):")
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
        services is not None
        and tenant is not None
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
