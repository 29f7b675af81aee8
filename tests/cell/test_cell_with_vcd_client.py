"""Contract test: vcdext's own vCD client registers the hello service with the cell, and the
cell then forwards to the runtime (the shape ``vcdext dev`` wires together)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

from lxml import etree

import vcdext_hello.plugin as hello
from tests.cell.support import Client
from vcdext.app import create_transport
from vcdext.settings import load_settings
from vcdext.testing import make_runtime
from vcdext.vcd import register_services
from vcdext_cell import Cell


def test_register_with_the_vcd_client_then_forward(
    assert_valid_vcd_xml: Callable[[bytes], None],
) -> None:
    environ = {
        "VCDEXT_AMQP_URL": "memory://",
        "VCDEXT_AMQP_EXCHANGE": f"vcdext-contract-{uuid.uuid4().hex[:8]}",
        "VCDEXT_VCD_USERNAME": "administrator",
        "VCDEXT_VCD_PASSWORD": "vmware",
        "VCDEXT_RUNTIME_WORKERS": "2",
    }
    with Cell(load_settings(None, environ=environ), port=0) as cell:
        settings = load_settings(None, environ={**environ, "VCDEXT_VCD_URL": cell.url})
        runtime = make_runtime(hello=hello, settings=settings)
        server = create_transport(runtime, amqp_url="memory://")
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            assert server.ready.wait(20)
            messages = {"hello": {"en_US": {"greetingSent": "Greeting sent"}}}
            result = register_services(runtime, settings, messages=messages)
            assert result.changed
            runtime.dispatcher.learn_right_ids(result.right_aliases())
            again = register_services(runtime, settings, messages=messages)
            assert not again.changed, again.report()

            (service,) = cell.services()
            assert (service.namespace, service.enabled) == ("io.vcdext.hello", True)
            assert cell.bundles("io.vcdext.hello") == {"en_US": {"greetingSent": "Greeting sent"}}
            acme = cell.org("acme").id
            alice = Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")
            bob = Client(cell.url, assert_valid_vcd_xml).login("bob@acme", "vmware")
            r = alice.get(f"/api/org/{acme}/hello", vcd_xml=False)
            assert r.status_code == 200, r.text
            assert etree.fromstring(r.content).get("org") == acme
            assert bob.get(f"/api/org/{acme}/hello").status_code == 403
        finally:
            server.stop()
            thread.join(timeout=20)
