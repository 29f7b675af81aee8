"""The policy plugin's messages come from its own catalogs (en, de, fr): the quota refusal with
its plural, and the texts of its vCD localization bundle."""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree

import vcdext_policy.plugin as policy
from vcdext.i18n import Localization
from vcdext.notifications import BlockingRequest, Decision
from vcdext.testing import make_runtime
from vcdext.vcloud import notification as n
from vcdext.vcloud.media import VCLOUD_NS
from vcdext.vcloud.model import Reference

V = f"{{{VCLOUD_NS}}}"


class Vcd:
    """A vApp with ``vms`` VMs; records the events posted."""

    def __init__(self, vms: int) -> None:
        self.vms = vms
        self.events: list[Any] = []

    def get(self, href: str) -> etree._Element:
        vapp = etree.Element(f"{V}VApp")
        children = etree.SubElement(vapp, f"{V}Children")
        for _ in range(self.vms):
            etree.SubElement(children, f"{V}Vm")
        return vapp

    def post_event(self, org_id: str, event: Any) -> None:
        self.events.append(event)


def decide(locale: str, vms: int, quota: int) -> tuple[Decision, Vcd]:
    vcd = Vcd(vms)
    task = n.BlockingTask(
        name="vappDeploy",
        status="active",
        created_time="2026-01-01T00:00:00Z",
        timeout_date="2026-01-01T00:01:00Z",
        timeout_action="abort",
        organization=Reference("https://h/api/org/2", name="acme"),
        task_owner=Reference("https://h/api/vApp/vapp-3", name="web"),
    )
    localization = Localization.of_plugins([("policy", policy)])
    request = BlockingRequest(
        operation="vappDeploy",
        task=task,
        notification=n.Notification(n.BLOCKING_TASK_CREATE, "e", True, "2026-01-01T00:00:00Z"),
        vcd=vcd,
        config={"max_vms": {"ACME": quota}},
        translator=localization.translator("policy", (locale,)),
    )
    return policy.check_deploy(request), vcd


@pytest.mark.parametrize(
    ("locale", "vms", "quota", "message"),
    [
        ("en", 1, 0, "Deployment refused by policy: vApp web has 1 VM, over org acme's quota of 0"),
        (
            "en",
            3,
            2,
            "Deployment refused by policy: vApp web has 3 VMs, over org acme's quota of 2",
        ),
        (
            "de",
            1,
            0,
            "Bereitstellung durch die Richtlinie abgelehnt: vApp web hat 1 VM, mehr als das "
            "Kontingent von 0 der Organisation acme",
        ),
        (
            "de",
            3,
            2,
            "Bereitstellung durch die Richtlinie abgelehnt: vApp web hat 3 VMs, mehr als das "
            "Kontingent von 2 der Organisation acme",
        ),
        (
            "fr",
            3,
            2,
            "Déploiement refusé par la politique : la vApp web a 3 VM, au-delà du quota de 2 de "
            "l\u2019organisation acme",
        ),
    ],
)
def test_an_over_quota_vapp_is_refused_in_the_locale(
    locale: str, vms: int, quota: int, message: str
) -> None:
    decision, vcd = decide(locale, vms, quota)
    assert decision == Decision("fail", message)
    [event] = vcd.events
    assert event.type == policy.REFUSED_EVENT
    assert dict(event.properties)["message"] == message


def test_a_vapp_within_its_quota_is_resumed_in_the_locale() -> None:
    assert decide("de", 2, 2)[0] == Decision("resume", "Bereitstellung von der Richtlinie erlaubt")
    assert decide("en", 2, 2)[0] == Decision("resume", "Deployment allowed by policy")


def test_the_bundle_names_the_service_and_the_refusal_event_in_each_language() -> None:
    bundles = make_runtime(policy=policy).bundle_messages()["policy"]
    assert sorted(bundles) == ["de_DE", "en_US", "fr_FR"]
    assert bundles["en_US"][policy.NAMESPACE] == "Deployment Policy"
    assert bundles["de_DE"][policy.NAMESPACE] == "Bereitstellungsrichtlinie"
    assert bundles["de_DE"][policy.REFUSED_EVENT] == (
        "Bereitstellung der vApp {resourceName} durch die Richtlinie abgelehnt"
    )
    assert bundles["fr_FR"][policy.REFUSED_EVENT] == (
        "Déploiement de la vApp {resourceName} refusé par la politique"
    )
