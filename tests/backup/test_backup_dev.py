"""`vcdext dev` as a process (what `make run` starts): a backup through the cell, with the
runtime's real task pool and its default coalescing; SIGTERM still exits 0. Over AMQP and over
MQTT (where the backup rights and the vApp's backup link are registered through the extension's
legacy admin service)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.test_dev import Dev, dev  # noqa: F401 - the fixture
from vcdext.vcloud.media import VCLOUD_NS
from vcdext.xml import parse

V = {"v": VCLOUD_NS}


@pytest.mark.parametrize("transport", ["amqp", pytest.param("mqtt", marks=pytest.mark.integration)])
def test_make_run_backs_up_a_vapp_as_a_task(
    dev,  # noqa: F811
    tmp_path,
    assert_valid_vcd_xml,
    transport,
    request,
):
    config = tmp_path / "vcdext.toml"
    config.write_text(f'[plugins.backup]\ndatabase = "{tmp_path / "b.sqlite3"}"\n')
    args = ["-c", str(config)]
    if transport == "mqtt":
        args += ["--transport", "mqtt", "--mqtt-url", request.getfixturevalue("mqtt_broker")]
    d: Dev = dev(*args, env={"VCDEXT_PLUGINS_ENABLED": "hello,backup"})
    alice = d.login("alice@acme")
    orgs = parse(requests.get(f"{d.url}/api/org", headers=alice, timeout=10).content)
    org = parse(requests.get(orgs[0].get("href"), headers=alice, timeout=10).content)
    vdc_href = next(x.get("href") for x in org.findall("v:Link", V) if "vdc+xml" in x.get("type"))
    vdc = parse(requests.get(vdc_href, headers=alice, timeout=10).content)
    vapp_href = vdc.find("v:ResourceEntities/v:ResourceEntity", V).get("href")
    vapp = parse(requests.get(vapp_href, headers=alice, timeout=10).content)
    link = next(
        x.get("href") for x in vapp.findall("v:Link", V) if "createBackupParams" in x.get("type")
    )
    r = requests.post(link, headers=alice, timeout=10)
    assert r.status_code == 202, r.text
    assert_valid_vcd_xml(r.content)
    href = parse(r.content).get("href")
    deadline = time.monotonic() + 20
    while True:
        task = requests.get(href, headers=alice, timeout=10)
        assert_valid_vcd_xml(task.content)
        status = parse(task.content).get("status")
        if status not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, "the task never ended"
        time.sleep(0.1)
    assert status == "success", task.text
    backups = requests.get(f"{org.get('href')}/backups", headers=alice, timeout=10)
    assert backups.status_code == 200
    assert b"urn:vcloud:backup:" in backups.content
    bob = d.login("bob@acme")  # no backup rights
    assert requests.get(f"{org.get('href')}/backups", headers=bob, timeout=10).status_code == 403
    log = d.stop()
    assert d.proc.returncode == 0, log
