"""``vcdext dev``: the local cell and the runtime in one process, nothing else needed.

The runtime reaches the cell exactly as it reaches a real vCD: its vCD client logs in over
HTTP and registers every enabled service, and requests travel over AMQP (kombu's in-memory
transport unless ``--amqp-url`` names a real broker), or with ``--transport mqtt`` over a real
MQTT broker (``--mqtt-url``): the services register as cloudapi API extensions with filters
and tokens, and the cell publishes vCD's MQTT envelopes.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
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
    dev.add_argument(
        "--transport",
        choices=("amqp", "mqtt"),
        help="how the cell reaches the runtime (default runtime.transport)",
    )
    dev.add_argument(
        "--mqtt-url",
        metavar="URL",
        help="MQTT broker for --transport mqtt: ws://user:password@host:port/messaging/mqtt "
        "(default mqtt.url); `make run-mqtt` starts one",
    )
    dev.set_defaults(handler=run_dev)


def run_dev(args: argparse.Namespace, settings: Settings) -> int:
    """Start the cell, then serve the runtime against it until a signal."""
    from vcdext.app import run

    transport = getattr(args, "transport", None) or settings.runtime.transport
    mqtt_url = ""
    if transport == "mqtt":
        mqtt_url = getattr(args, "mqtt_url", None) or settings.mqtt.url
        if not mqtt_url:
            print(
                "vcdext: error: --transport mqtt needs a broker: --mqtt-url "
                "ws://user:password@host:port/messaging/mqtt (`make run-mqtt` starts one)",
                file=sys.stderr,
            )
            return 2
        settings = settings.override("runtime.transport", "mqtt", source="--transport")
        settings = settings.override("mqtt.url", mqtt_url, source="--mqtt-url")
    cell = cell_from_args(args, settings, mqtt_url=mqtt_url or None)
    admin = next((c for c in cell.demo_credentials if c.sysadmin), None)
    if admin is None:
        print(
            "vcdext: error: the seed has no System administrator to register the plugins with",
            file=sys.stderr,
        )
        return 2
    if not start_cell(cell):
        return 1
    scratch = ""
    try:
        # The runtime's own settings point its vCD client at the cell.
        dev_settings = settings
        if transport == "mqtt":  # the cell's tokens are worth nothing outside this process
            scratch = tempfile.mkdtemp(prefix="vcdext-dev-")
            tokens = Path(scratch) / "mqtt-tokens.json"
            dev_settings = dev_settings.override(
                "mqtt.token_file", str(tokens), source="vcdext dev"
            )
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
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
