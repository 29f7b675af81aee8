"""``vcdext cell``: the command runs the cell until SIGTERM and prints where it is."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time

import requests

from vcdext_cell.command import add_commands


def test_add_commands_adds_cell_with_a_handler() -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config")
    parser = argparse.ArgumentParser()
    add_commands(parser.add_subparsers(dest="command"), common)
    args = parser.parse_args(
        ["cell", "--port", "0", "--amqp-url", "memory://", "--rights-format", "name"]
    )
    assert args.port == 0
    assert args.rights_format == "name"
    assert callable(args.handler)


def test_vcdext_cell_serves_until_sigterm() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vcdext", "cell", "--port", "0", "--amqp-url", "memory://"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        banner = "".join(lines)
        url = re.search(r"local cell at (http://\S+)", banner).group(1)
        assert "administrator@System" in banner
        assert "password: vmware" in banner
        assert "memory:// reaches no runtime outside this process" in banner
        r = requests.get(f"{url}/api/versions", timeout=10)
        assert r.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_vcdext_cell_reports_an_unreachable_broker() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vcdext",
            "cell",
            "--port",
            "0",
            "--amqp-url",
            "amqp://u:pw@127.0.0.1:1//",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1
    assert "cannot connect the cell" in result.stderr
    assert ":pw@" not in result.stderr
