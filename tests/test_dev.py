"""`vcdext dev` end to end, as a process: the cell, the runtime and registration together."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from vcdext.vcloud.media import VCLOUD_NS
from vcdext.xml import parse

REPO = Path(__file__).resolve().parents[1]
ACCEPT = {"Accept": "application/*+xml;version=5.1"}


class Dev:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")},
            "PYTHONPATH": str(REPO),
            "VCDEXT_PLUGINS_ENABLED": "hello",
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vcdext", "dev", "--port", "0", *args],
            cwd=REPO,
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        deadline = time.monotonic() + 30
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        text = "".join(self.output)
        match = re.search(r"local vCD cell at (http://\S+)", text)
        assert match, text
        self.url = match.group(1)
        self.banner = text

    def login(self, user: str) -> dict[str, str]:
        r = requests.post(
            f"{self.url}/api/sessions", auth=(user, "vmware"), headers=ACCEPT, timeout=10
        )
        assert r.status_code == 200, r.text
        return {**ACCEPT, "x-vcloud-authorization": r.headers["x-vcloud-authorization"]}

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        rest, _ = self.proc.communicate(timeout=30)
        return "".join(self.output) + rest


@pytest.fixture
def dev():
    started: list[Dev] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Dev:
        started.append(Dev(*args, env=env))
        return started[-1]

    yield start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.communicate()


def org_href(dev: Dev, headers: dict[str, str]) -> str:
    orgs = parse(requests.get(f"{dev.url}/api/org", headers=headers, timeout=10).content)
    return next(o.get("href") for o in orgs.iter(f"{{{VCLOUD_NS}}}Org"))


def check_hello_surface(d: Dev, assert_valid_vcd_xml) -> None:
    alice, bob = d.login("alice@acme"), d.login("bob@acme")
    greeting = requests.get(f"{d.url}/api/hello", headers=alice, timeout=10)
    assert greeting.status_code == 200
    session = parse(requests.get(f"{d.url}/api/session", headers=alice, timeout=10).content)
    assert parse(greeting.content).get("user") == session.get("userId")
    # The org greeting needs a right: vCD sends rights as URNs, which the runtime learned
    # when it registered the hello plugin's right with the cell (over MQTT through the
    # extension's legacy admin service, whose namespace names the right: the demo seed
    # grants alice both names).
    org = org_href(d, alice).rsplit("/", 1)[-1]
    assert (
        requests.get(f"{d.url}/api/org/{org}/hello", headers=alice, timeout=10).status_code == 200
    )
    denied = requests.get(f"{d.url}/api/org/{org}/hello", headers=bob, timeout=10)
    assert denied.status_code == 403
    assert_valid_vcd_xml(denied.content)
    missing = requests.get(f"{d.url}/api/nothing/here", headers=alice, timeout=10)
    assert missing.status_code == 404
    assert parse(missing.content).get("minorErrorCode") == "RESOURCE_NOT_FOUND"
    assert_valid_vcd_xml(missing.content)


def test_dev_serves_hello_through_the_cell_and_the_printed_curl_line_works(
    dev, assert_valid_vcd_xml
):
    d = dev()
    curl = next(line.strip() for line in d.output if line.strip().startswith("TOKEN="))
    out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert "<Greeting" in out.stdout and "urn:vcloud:user:" in out.stdout, out
    assert "alice@acme" in d.banner and "administrator@System" in d.banner
    check_hello_surface(d, assert_valid_vcd_xml)
    log = d.stop()
    assert d.proc.returncode == 0, log
    assert "vmware" not in log.split("Press Ctrl-C")[-1]  # no password after the banner


def test_a_handler_slower_than_the_timeout_gets_vcds_504(dev, assert_valid_vcd_xml):
    d = dev("--timeout", "1", env={"VCDEXT_PLUGINS_MODULES": "tests.fake_plugins.slow"})
    alice = d.login("alice@acme")
    r = requests.get(f"{d.url}/api/slow", params={"s": "2.5"}, headers=alice, timeout=20)
    assert r.status_code == 504
    error = parse(r.content)
    assert error.get("minorErrorCode") == "GATEWAY_TIMEOUT"
    assert "failed to respond in the specified timeout (1 SECONDS)" in error.get("message")
    assert_valid_vcd_xml(r.content)
    fast = requests.get(f"{d.url}/api/slow", params={"s": "0"}, headers=alice, timeout=20)
    assert fast.status_code == 200
    d.stop()
    assert d.proc.returncode == 0


@pytest.mark.integration
def test_dev_with_a_real_broker(dev, rabbitmq, assert_valid_vcd_xml):
    d = dev("--amqp-url", rabbitmq)
    check_hello_surface(d, assert_valid_vcd_xml)
    d.stop()
    assert d.proc.returncode == 0


def test_port_in_use_is_one_clear_line():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("VCDEXT_")}
        out = subprocess.run(
            [sys.executable, "-m", "vcdext", "dev", "--port", str(port)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert out.returncode == 1
    assert "--port 0" in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("vcdext: error:")]
    assert len(errors) == 1, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.integration
def test_dev_over_mqtt_registers_an_extension_and_the_printed_curl_line_works(
    dev, mqtt_broker, assert_valid_vcd_xml
):
    d = dev("--transport", "mqtt", "--mqtt-url", mqtt_broker)
    assert "MQTT broker ws://guest:********@" in d.banner
    curl = next(line.strip() for line in d.output if line.strip().startswith("TOKEN="))
    out = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert "<Greeting" in out.stdout and "urn:vcloud:user:" in out.stdout, out
    check_hello_surface(d, assert_valid_vcd_xml)
    log = d.stop()
    assert d.proc.returncode == 0, log
    assert "registration: vCD updated: 9 changes applied to 1 MQTT extension" in log
    assert "guest:guest" not in log
