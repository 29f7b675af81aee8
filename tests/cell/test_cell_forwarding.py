"""Forwarding end to end: the real runtime serves the hello plugin over AMQP; the cell forwards
HTTP requests to it exactly as vCD does. Each test runs with kombu's in-memory broker and with a
throwaway RabbitMQ node."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from lxml import etree

import vcdext_hello.plugin as hello
from tests.cell.support import Client, link_href, link_xml, right_xml, service_xml
from vcdext import Registrar, Request, Response, Runtime, hookimpl, operation
from vcdext.app import create_transport
from vcdext.settings import Settings, load_settings
from vcdext.testing import make_runtime
from vcdext_cell import Cell

SERVICES = "/api/admin/extension/service"
RIGHT = "{io.vcdext.hello}:View Org Greeting"
# The cell gives up after 0.5 s; the reply comes 2 s after that, room enough for a loaded
# machine to answer the 504 first.
SLOW_SECONDS = 2.5
GREETING = "application/vnd.io.vcdext.hello.greeting+xml"


@operation("GET", "/api/slow")
def slow(request: Request) -> Response:
    """Answers after the cell has given up."""
    time.sleep(SLOW_SECONDS)
    return Response("late", content_type="text/plain")


class SlowPlugin:
    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.service(name="slow", namespace="io.vcdext.test.slow")
        registrar.add_operations(slow)


@pytest.fixture(
    params=[pytest.param("memory"), pytest.param("rabbitmq", marks=pytest.mark.integration)]
)
def broker(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("rabbitmq")
    return url


@dataclass
class Stack:
    """A runtime serving hello + slow over AMQP, and cells forwarding to it."""

    url: str
    settings: Settings
    runtime: Runtime
    validate: Callable[[bytes], None]
    cells: list[Cell] = field(default_factory=list)

    def cell(self, **options: Any) -> Cell:
        c = Cell(self.settings, amqp_url=self.url, host="127.0.0.1", port=0, **options)
        c.start()
        self.cells.append(c)
        return c

    def client(self, cell: Cell, login: str | None = None) -> Client:
        c = Client(cell.url, self.validate)
        return c.login(login, "vmware") if login else c

    def register(self, cell: Cell, name: str = "hello") -> tuple[etree._Element, str]:
        """Register a plugin's service over plain HTTP, as the reconcile would; returns the
        Service and the URN of its right (if it declares one)."""
        admin = self.client(cell, "administrator@System")
        service = self.runtime.registry.services[name]
        body = service_xml(
            service.name,
            service.namespace,
            routing_key=service.routing_key,
            exchange=self.settings.amqp.exchange,
            patterns=service.api_filters,
            links=[link_xml(x.rel, x.href, x.mime_type, x.resource_type) for x in service.links],
        )
        doc = admin.xml("POST", SERVICES, body, status=201)
        urn = ""
        for right in service.rights:
            created = admin.xml(
                "POST", link_href(doc, "rights"), right_xml(right.name, right.category), status=201
            )
            assert created.get("name") == right.full_name
            urn = created.get("id")
        return doc, urn


@pytest.fixture
def stack(broker: str, assert_valid_vcd_xml: Callable[[bytes], None]) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    settings = load_settings(
        None,
        environ={
            "VCDEXT_AMQP_URL": broker,
            "VCDEXT_AMQP_EXCHANGE": f"vcdext-test-{suffix}",
            "VCDEXT_RUNTIME_WORKERS": "2",
            "VCDEXT_AMQP_HEARTBEAT": "0",
        },
    )
    runtime = make_runtime(hello=hello, slow=SlowPlugin(), settings=settings)
    server = create_transport(runtime, amqp_url=broker)
    thread = threading.Thread(target=server.run, name="test-amqp-server", daemon=True)
    runtime.start()
    thread.start()
    assert server.ready.wait(20), "the runtime did not connect"
    s = Stack(broker, settings, runtime, assert_valid_vcd_xml)
    try:
        yield s
    finally:
        for c in s.cells:
            c.stop()
        server.stop()
        thread.join(timeout=20)
        runtime.stop()


def test_hello_greets_the_caller_by_user_urn(stack: Stack) -> None:
    cell = stack.cell()
    stack.register(cell)
    alice = stack.client(cell, "alice@acme")
    r = alice.get("/api/hello", vcd_xml=False)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == GREETING
    user_urn = f"urn:vcloud:user:{cell.user('alice', 'acme').id}"
    greeting = etree.fromstring(r.content)
    assert greeting.get("user") == user_urn
    assert greeting.text == f"Hello, {user_urn}!"
    (entry,) = cell.forwarded()
    assert (entry.method, entry.path, entry.service, entry.status) == (
        "GET",
        "/api/hello",
        "hello",
        200,
    )


def test_org_greeting_needs_the_right_sent_as_urns(stack: Stack) -> None:
    cell = stack.cell()
    _, right_urn = stack.register(cell)
    acme = cell.org("acme").id
    alice, bob = stack.client(cell, "alice@acme"), stack.client(cell, "bob@acme")
    # Until the runtime learns the right's URN, a URN in the context does not match the name.
    assert alice.get(f"/api/org/{acme}/hello", vcd_xml=False).status_code == 403
    stack.runtime.dispatcher.learn_right_ids({RIGHT: [right_urn]})
    r = alice.get(f"/api/org/{acme}/hello", vcd_xml=False)
    assert r.status_code == 200
    assert etree.fromstring(r.content).get("org") == acme
    r = bob.get(f"/api/org/{acme}/hello")
    assert r.status_code == 403
    assert etree.fromstring(r.content).get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"


def test_org_greeting_with_rights_sent_as_names(stack: Stack) -> None:
    cell = stack.cell(rights_format="name")
    stack.register(cell)
    acme = cell.org("acme").id
    assert (
        stack.client(cell, "alice@acme").get(f"/api/org/{acme}/hello", vcd_xml=False).status_code
        == 200
    )
    assert stack.client(cell, "bob@acme").get(f"/api/org/{acme}/hello").status_code == 403


def test_service_link_on_the_org_leads_to_the_greeting(stack: Stack) -> None:
    cell = stack.cell(rights_format="name")
    stack.register(cell)
    alice = stack.client(cell, "alice@acme")
    org = alice.xml("GET", f"/api/org/{cell.org('acme').id}")
    href = link_href(org, "down", GREETING)
    assert href == f"{cell.url}/api/org/{cell.org('acme').id}/hello"
    assert alice.get(href, vcd_xml=False).status_code == 200


def test_post_body_travels_both_ways(stack: Stack) -> None:
    cell = stack.cell()
    stack.register(cell)
    admin = stack.client(cell, "administrator@System")
    payload = bytes(range(256))
    r = admin.post("/api/hello/echo", payload, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200
    assert r.content == payload
    assert r.headers["Content-Type"] == "application/octet-stream"


def test_unfiltered_path_is_the_cells_404(stack: Stack) -> None:
    cell = stack.cell()
    stack.register(cell)
    r = stack.client(cell, "alice@acme").get("/api/hello/unknown")
    assert r.status_code == 404
    assert etree.fromstring(r.content).get("minorErrorCode") == "RESOURCE_NOT_FOUND"
    assert cell.forwarded() == []


def test_the_cells_own_errors_follow_the_json_family_a_client_asks_for(stack: Stack) -> None:
    cell = stack.cell()
    stack.register(cell)
    client = stack.client(cell, "alice@acme")
    r = client.get("/api/hello/unknown", headers={"Accept": "application/*+json;version=36.0"})
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/vnd.vmware.vcloud.error+json")
    doc = r.json()
    assert doc["majorErrorCode"] == 404
    assert doc["minorErrorCode"] == "RESOURCE_NOT_FOUND"
    # A forwarded request's 404 (the path matched a filter, not an operation) is the
    # runtime's, in the same family.
    r = client.get("/api/hello/echo", headers={"Accept": "application/*+json;version=36.0"})
    assert r.status_code == 405
    assert r.json()["minorErrorCode"] == "METHOD_NOT_ALLOWED"


def test_requests_are_authenticated_before_forwarding(stack: Stack) -> None:
    cell = stack.cell()
    stack.register(cell)
    assert stack.client(cell).get("/api/hello").status_code == 401
    assert cell.forwarded() == []


def test_disabled_service_gets_nothing(stack: Stack) -> None:
    cell = stack.cell()
    doc, _ = stack.register(cell)
    admin = stack.client(cell, "administrator@System")
    disable = service_xml("hello", "io.vcdext.hello", enabled=False, routing_key="io.vcdext.hello")
    admin.xml("PUT", doc.get("href"), disable)
    assert admin.get("/api/hello").status_code == 404


def test_slow_service_is_a_504_and_its_late_reply_is_dropped(stack: Stack) -> None:
    cell = stack.cell(timeout=0.5)
    stack.register(cell, "hello")
    stack.register(cell, "slow")
    alice = stack.client(cell, "alice@acme")
    started = time.monotonic()
    r = alice.get("/api/slow")
    assert r.status_code == 504
    assert time.monotonic() - started < SLOW_SECONDS
    error = etree.fromstring(r.content)
    assert error.get("minorErrorCode") == "GATEWAY_TIMEOUT"
    assert error.get("message") == (
        "External service 'slow' failed to respond in the specified timeout (0.5 SECONDS)"
    )
    time.sleep(SLOW_SECONDS)  # the late reply arrives now and must be dropped quietly
    r = alice.get("/api/hello", vcd_xml=False)
    assert r.status_code == 200
    assert b"Hello" in r.content


def test_missing_exchange_is_a_500(stack: Stack) -> None:
    cell = stack.cell()
    admin = stack.client(cell, "administrator@System")
    body = service_xml(
        "ghost", "io.vcdext.ghost", exchange=f"missing-{uuid.uuid4().hex}", patterns=["/api/ghost"]
    )
    doc = admin.xml("POST", SERVICES, body, status=201)
    started = time.monotonic()
    r = admin.get("/api/ghost")
    assert r.status_code == 500
    assert time.monotonic() - started < 8  # refused at once, not the cell's 10 s timeout
    message = etree.fromstring(r.content).get("message")
    assert message.startswith(
        f"Cannot send message to service with id: {doc.get('id').rsplit(':', 1)[1]}"
    )
    stack.register(cell)  # the cell keeps working after the refused publish
    assert admin.get("/api/hello", vcd_xml=False).status_code == 200


def test_org_greeting_is_for_the_callers_org_or_a_system_administrator(stack: Stack) -> None:
    cell = stack.cell(rights_format="name")
    stack.register(cell)
    acme, system = cell.org("acme").id, cell.org("System").id
    alice = stack.client(cell, "alice@acme")
    r = alice.get(f"/api/org/{system}/hello")
    assert r.status_code == 403
    assert etree.fromstring(r.content).get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
    admin = stack.client(cell, "administrator@System")
    assert admin.get(f"/api/org/{acme}/hello", vcd_xml=False).status_code == 200
