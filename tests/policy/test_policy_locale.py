"""The policy plugin refuses a deployment in ``[notifications] locale`` through the local cell:
German when the locale is German, English by default (a blocked task carries no locale of its
user, so the service's setting decides)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import vcdext_policy.plugin as policy
from tests.cell.support import Client
from tests.cell.test_cell_notifications import compose, deploy
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime
from vcdext.transport.notifications import start_notifications
from vcdext.vcd import register_services
from vcdext_cell import Cell

pytestmark = pytest.mark.integration

V = "{http://www.vmware.com/vcloud/v1.5}"


@pytest.fixture
def cell(rabbitmq: str) -> Iterator[Cell]:
    cell = Cell(Settings(), amqp_url=rabbitmq, host="127.0.0.1", port=0, timeout=5)
    cell.start()
    try:
        yield cell
    finally:
        cell.stop()


@pytest.mark.parametrize(
    ("locale_line", "expected"),
    [
        ("", "Deployment refused by policy: vApp plain lacks the metadata cost-centre"),
        (
            'locale = "de-DE"',
            "Bereitstellung durch die Richtlinie abgelehnt: der vApp plain fehlen die Metadaten "
            "cost-centre",
        ),
        (
            'locale = "fr"',
            "Déploiement refusé par la politique : il manque à la vApp plain les métadonnées "
            "cost-centre",
        ),
    ],
    ids=["default-en", "de", "fr"],
)
def test_a_refused_deployment_is_failed_in_the_configured_locale(
    cell: Cell,
    rabbitmq: str,
    tmp_path: Path,
    assert_valid_vcd_xml: Callable[[bytes], None],
    locale_line: str,
    expected: str,
) -> None:
    config = tmp_path / "vcdext.toml"
    config.write_text(
        f"""
[amqp]
url = "{rabbitmq}"
[vcd]
url = "{cell.url}"
username = "administrator"
password = "vmware"
[notifications]
queue = "vcdext.notifications.{uuid.uuid4().hex}"
{locale_line}
[plugins.policy]
required_metadata = ["cost-centre"]
"""
    )
    settings = load_settings(config)
    runtime = make_runtime(settings=settings, policy=policy)
    register_services(runtime, settings)
    stop = start_notifications(runtime.registry, settings, amqp_url=rabbitmq)
    try:
        alice = Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")
        task = deploy(alice, compose(alice, "plain"))
    finally:
        stop()
    assert task.get("status") == "error"
    error = task.find(f"{V}Error")
    assert error is not None and error.get("message") == expected
    # The event explaining the refusal is in the same language.
    [event] = [e for e in cell.events() if e.type == policy.REFUSED_EVENT]
    assert dict(event.properties)["message"] == expected
