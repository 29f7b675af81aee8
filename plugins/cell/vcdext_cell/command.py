"""``vcdext cell``: run the local cell alone until SIGTERM or Ctrl-C.

A runtime in another process reaches the cell's requests only through a real broker, so the
broker defaults to ``amqp.url``; ``memory://`` is accepted but reaches nothing outside this
process (``vcdext dev`` runs the cell and the runtime together instead).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType
from typing import TYPE_CHECKING, Any

from vcdext.errors import ConfigError
from vcdext.settings import Settings, mask_secret

from .seed import RIGHTS_FORMATS

if TYPE_CHECKING:
    from .local import Cell


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
    from .local import Cell

    if args.timeout is not None and args.timeout <= 0:
        raise ConfigError("--timeout", "command line", "must be positive")
    if args.amqp_url is not None:  # validated (and its source named) like amqp.url
        settings = settings.override("amqp.url", args.amqp_url, source="--amqp-url")
    return Cell(
        settings,
        amqp_url=args.amqp_url,
        host=args.host,
        port=args.port,
        timeout=args.timeout,
        seed=args.seed,
        allow_remote=args.allow_remote,
        **extra,
    )


def run_cell(args: argparse.Namespace, settings: Settings) -> int:
    """Start the cell, print where it is and who can log in, serve until a signal."""
    from .local import CellError

    cell = cell_from_args(args, settings, rights_format=args.rights_format)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        cell.start()
    except CellError as exc:
        print(f"vcdext: error: {exc}", file=sys.stderr)
        return 1
    try:
        _banner(cell)
        stop.wait()
    finally:
        cell.stop()
    print("local cell stopped", flush=True)
    return 0


def _banner(cell: Cell) -> None:
    lines = [
        f"vcdext local cell at {cell.url} (vCloud API: {cell.api_url})",
        f"broker {mask_secret(cell.amqp_url)}, reply exchange {cell.reply_exchange!r}, "
        f"timeout {cell.timeout:g} s, rights sent as {cell.rights_format}s",
    ]
    if cell.amqp_url.startswith("memory://"):
        lines.append("note: memory:// reaches no runtime outside this process; use a real broker")
    demo = cell.seed.source == "demo"
    lines.append("log in with (demo seed):" if demo else f"users (seed {cell.seed.source}):")
    width = max((len(c.login) for c in cell.demo_credentials), default=0)
    for c in cell.demo_credentials:
        password = f"  password: {c.password}" if demo else ""
        role = "  (system administrator)" if c.sysadmin else ""
        rights = f"  rights: {', '.join(c.rights)}" if c.rights and not c.sysadmin else ""
        lines.append(f"  {c.login:<{width}}{password}{role}{rights}")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
