"""`vcdext dev` with the policy plugin, as a process: `vcdext.app.run` starts the notification
consumer, registration turns blocking on in the cell, and a deployment the policy refuses
fails with its message (kombu's in-memory transport: cell and runtime share the process)."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from lxml import etree

from tests.test_dev import ACCEPT, dev, org_href  # noqa: F401 - the fixture
from vcdext.vcloud.media import VCLOUD_NS
from vcdext.xml import parse, tostring

V = f"{{{VCLOUD_NS}}}"
XML = {"Content-Type": "application/xml"}


def test_dev_runs_the_policy_on_blocked_deployments(dev, tmp_path: Path, assert_valid_vcd_xml):  # noqa: F811
    config = tmp_path / "vcdext.toml"
    config.write_text('[plugins.policy]\nrequired_metadata = ["cost-centre"]\n')
    d = dev("--config", str(config), env={"VCDEXT_PLUGINS_ENABLED": "policy"})
    alice = {**d.login("alice@acme"), **XML}
    org = parse(requests.get(org_href(d, alice), headers=alice, timeout=10).content)
    vdc = next(
        link.get("href") for link in org.iter(f"{V}Link") if "vdc+xml" in link.get("type", "")
    )
    params = etree.Element(f"{V}ComposeVAppParams", nsmap={None: VCLOUD_NS}, name="plain")
    r = requests.post(f"{vdc}/action/composeVApp", data=tostring(params), headers=alice, timeout=10)
    assert r.status_code == 201, r.text
    vapp = parse(r.content).get("href")
    deploy = etree.Element(f"{V}DeployVAppParams", nsmap={None: VCLOUD_NS})
    r = requests.post(f"{vapp}/action/deploy", data=tostring(deploy), headers=alice, timeout=10)
    assert r.status_code == 202, r.text
    task = parse(r.content)
    deadline = time.monotonic() + 20
    while task.get("status") == "running":
        assert time.monotonic() < deadline, d.stop()
        time.sleep(0.1)
        r = requests.get(
            task.get("href"),
            headers=ACCEPT | {"x-vcloud-authorization": alice["x-vcloud-authorization"]},
            timeout=10,
        )
        task = parse(r.content)
    assert_valid_vcd_xml(r.content)
    assert task.get("status") == "error"
    assert task.find(f"{V}Error").get("message") == (  # type: ignore[union-attr]
        "Deployment refused by policy: vApp plain lacks the metadata cost-centre"
    )
    log = d.stop()
    assert d.proc.returncode == 0, log
    assert "vCD settings changed: blocking tasks: block vappDeploy" in log
    assert "notifications: consuming" in log
