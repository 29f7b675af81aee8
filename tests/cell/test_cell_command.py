"""``vcdext cell``: the command runs the cell until SIGTERM and prints where it is."""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from vcdext.registry import Registrar, build_registry
from vcdext_cell import Cell
from vcdext_cell.command import add_commands, banner, start_cell


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
        url = re.search(r"vcdext cell: local vCD cell at (http://\S+)", banner).group(1)
        assert "administrator@System" in banner
        assert "password: vmware" in banner
        assert "memory:// reaches no runtime outside this process" in banner
        assert "services:" not in banner and "TOKEN=" not in banner
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


def _hello_services():
    def register(r: Registrar) -> None:
        r.service(name="hello", namespace="io.vcdext.hello", vendor="vcdext")
        r.add_operation("GET", "/api/hello", lambda request: "<Greeting/>")

    return build_registry([("hello", register)], lambda name: {}).services


def test_one_banner_for_both_commands(cell: Cell) -> None:
    alone, dev = banner(cell), banner(cell, _hello_services())
    for text in (alone, dev):
        assert f"local vCD cell at {cell.url}  (vCloud API: {cell.url}/api)" in text
        assert "broker memory://, reply exchange 'vcdext.cell.replies'" in text
        assert "users (demo seed):" in text
        assert "  administrator@System  password: vmware  (system administrator)" in text
        assert "  bob@acme              password: vmware  (no extension rights)" in text
        assert text.endswith("Press Ctrl-C to stop.")
    assert "vcdext cell:" in alone and "vcdext dev:" in dev
    assert "memory:// reaches no runtime" in alone and "reaches no runtime" not in dev
    assert "services: hello (/api/hello)" in dev and "services:" not in alone
    assert "TOKEN=" in dev and "-u alice@acme:vmware" in dev and "TOKEN=" not in alone


def test_seed_file_users_are_listed_without_passwords(tmp_path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text('[[orgs]]\nname = "o"\n[[orgs.users]]\nname = "u"\npassword = "s3cret"\n')
    with Cell(amqp_url="memory://", port=0, seed=seed) as cell:
        text = banner(cell, _hello_services())
    assert f"users (seed {seed}):" in text and "u@o" in text
    assert "s3cret" not in text and "TOKEN=" not in text


def test_start_errors_are_one_line_and_hint_a_free_port_only_when_it_helps(capsys) -> None:
    assert not start_cell(Cell(amqp_url="memory://", host="0.0.0.0", port=0))
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("vcdext: error: the cell would listen on 0.0.0.0")
    assert "--allow-remote" in line and "--port 0" not in line
    with Cell(amqp_url="memory://", port=0) as first:
        port = int(first.url.rsplit(":", 1)[1])
        assert not start_cell(Cell(amqp_url="memory://", port=port))
    (line,) = capsys.readouterr().err.splitlines()
    assert "cannot listen" in line and line.endswith("(try --port 0 for any free port)")


@pytest.mark.parametrize("command", ["cell", "dev"])
def test_a_non_loopback_host_is_refused_without_a_port_hint(command: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")}
    result = subprocess.run(
        [sys.executable, "-m", "vcdext", command, "--host", "0.0.0.0", "--port", "0"],
        capture_output=True,
        text=True,
        env={**env, "VCDEXT_PLUGINS_ENABLED": "hello"},
        timeout=60,
    )
    assert result.returncode == 1
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("vcdext: error:")]
    assert "--allow-remote" in line and "--port 0" not in line, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_vcdext_cell_with_a_broker_serves_a_runtime_in_another_process_over_mqtt(
    mqtt_broker: str, tmp_path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")}
    cell = subprocess.Popen(
        [
            *(sys.executable, "-m", "vcdext", "cell", "--port", "0"),
            *("--amqp-url", "memory://", "--mqtt-url", mqtt_broker),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    runtime = None
    try:
        assert cell.stdout is not None
        lines = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = cell.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        banner = "".join(lines)
        assert "MQTT broker ws://guest:********@" in banner
        url = re.search(r"local vCD cell at (http://\S+)", banner).group(1)
        runtime_env = {
            **env,
            "VCDEXT_PLUGINS_ENABLED": "hello",
            "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
            "VCDEXT_MQTT_URL": mqtt_broker,
            "VCDEXT_MQTT_TOKEN_FILE": str(tmp_path / "tokens.json"),
            "VCDEXT_VCD_URL": url,
            "VCDEXT_VCD_USERNAME": "administrator",
            "VCDEXT_VCD_PASSWORD": "vmware",
        }
        runtime = subprocess.Popen(
            [sys.executable, "-m", "vcdext", "run"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=runtime_env,
        )
        accept = {"Accept": "application/*+xml;version=36.0"}
        login = requests.post(
            f"{url}/api/sessions", auth=("alice@acme", "vmware"), headers=accept, timeout=10
        )
        headers = {**accept, "x-vcloud-authorization": login.headers["x-vcloud-authorization"]}
        deadline = time.monotonic() + 30
        while True:  # until the runtime registered and subscribed
            r = requests.get(f"{url}/api/hello", headers=headers, timeout=20)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        assert r.status_code == 200, r.text
        assert b"<Greeting" in r.content
        assert (tmp_path / "tokens.json").exists()
        runtime.send_signal(signal.SIGTERM)
        _, log = runtime.communicate(timeout=30)
        assert runtime.returncode == 0, log
        # no password (the service link it registered logs media types: vnd.vmware...)
        assert re.search(r"(?<!vnd\.)vmware", log) is None, log
    finally:
        for proc in (runtime, cell):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
