"""``vcdext dev``: the local cell and the runtime in one process, nothing else needed.

The runtime reaches the cell exactly as it reaches a real vCD: its vCD client logs in over
HTTP and registers every enabled service, and requests travel over AMQP (kombu's in-memory
transport unless ``--amqp-url`` names a real broker).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vcdext.settings import Settings

from .command import add_cell_options, banner, cell_from_args, start_cell


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

    cell = cell_from_args(args, settings)
    admin = next((c for c in cell.demo_credentials if c.sysadmin), None)
    if admin is None:
        print(
            "vcdext: error: the seed has no System administrator to register the plugins with",
            file=sys.stderr,
        )
        return 2
    if not start_cell(cell):
        return 1
    try:
        # The runtime's own settings point its vCD client at the cell.
        dev_settings = settings
        for key, value in (
            ("url", cell.url),
            ("username", admin.user),
            ("org", admin.org),
            ("password", admin.password),
            ("password_file", ""),
        ):
            dev_settings = dev_settings.override(f"vcd.{key}", value, source="vcdext dev")
        return run(
            dev_settings,
            amqp_url=args.amqp_url,
            register=True,
            on_ready=lambda runtime: print(banner(cell, runtime.registry.services), flush=True),
        )
    finally:
        cell.stop()
