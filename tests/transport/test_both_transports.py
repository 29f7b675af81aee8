"""hello's operations over AMQP and over MQTT through a real broker: one set of assertions,
parametrized by transport (the session's RabbitMQ node serves both)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import vcdext_hello.plugin as hello
from tests.support.vcd_side import VcdSide
from vcdext.app import create_transport
from vcdext.settings import load_settings
from vcdext.testing import make_runtime
from vcdext.transport.mqtt import MqttServer
from vcdext.vcloud.message import Reply, decode_reply, encode_request
from vcdext_cell.mqtt import MqttForwarder

pytestmark = pytest.mark.integration

USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
ACME = "9aee51e8-654e-49a8-8dab-3fdbf00a21ae"
GLOBEX = "1c8b7c5e-3f0e-4d55-9e0b-2c7f4a1d0b11"
RIGHT = "{io.vcdext.hello}:View Org Greeting"
XML = {"Accept": "application/*+xml;version=36.0"}

#: call(method, path, **encode_request kwargs) -> the Reply vCD received.
Call = Callable[..., Reply]


def _amqp(rabbitmq: str, mqtt_broker: str) -> tuple[dict[str, str], Callable[[], Any]]:
    exchange = f"vcdext-both-{uuid.uuid4().hex[:8]}"
    env = {"VCDEXT_AMQP_URL": rabbitmq, "VCDEXT_AMQP_EXCHANGE": exchange}

    def connect() -> tuple[Call, Callable[[], None]]:
        side = VcdSide(rabbitmq, exchange)

        def call(method: str, path: str, **kwargs: Any) -> Reply:
            cid = side.request(method, path, hello.NAMESPACE, **kwargs)
            (received,) = side.wait(cid)
            return decode_reply(received.delivery.body)

        return call, side.close

    return env, connect


def _mqtt(rabbitmq: str, mqtt_broker: str) -> tuple[dict[str, str], Callable[[], Any]]:
    version = f"0.{uuid.uuid4().int % 10**6}"  # topics of our own
    env = {
        "VCDEXT_RUNTIME_TRANSPORT": "mqtt",
        "VCDEXT_MQTT_URL": mqtt_broker,
        "VCDEXT_MQTT_EXTENSION_VERSION": version,
    }

    def connect() -> tuple[Call, Callable[[], None]]:
        side = MqttForwarder(mqtt_broker)
        side.start()
        topic = f"topic/extension/vcdext/hello/{version}/ext"

        def call(method: str, path: str, **kwargs: Any) -> Reply:
            request_id = f"req-{uuid.uuid4().hex[:8]}"
            message = encode_request(method, path, request_id=request_id, **kwargs)
            return side.forward(topic, message, request_id, timeout=15)

        return call, side.stop

    return env, connect


@pytest.fixture(params=["amqp", "mqtt"])
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def call(transport: str, rabbitmq: str, mqtt_broker: str) -> Iterator[Call]:
    """hello served over ``transport``; ``call`` plays vCD's side of that transport."""
    env, connect = {"amqp": _amqp, "mqtt": _mqtt}[transport](rabbitmq, mqtt_broker)
    runtime = make_runtime(hello=hello, settings=load_settings(None, environ=env))
    server = create_transport(runtime)
    assert isinstance(server, MqttServer) == (transport == "mqtt")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(20), "server did not come up"
        send, close = connect()
        try:
            yield send
        finally:
            close()
    finally:
        server.stop()
        thread.join(20)
        assert not thread.is_alive(), "server did not stop"


def test_greets_the_caller(call: Call, assert_valid_vcd_xml: Callable[[bytes], None]) -> None:
    reply = call("GET", "/api/hello", headers=XML, user=USER)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == hello.GREETING_TYPE
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    assert f"Hello, {USER}!".encode() in reply.body


def test_greets_in_json(call: Call) -> None:
    reply = call("GET", "/api/hello", headers={"Accept": "application/*+json;version=36.0"})
    assert (reply.status, reply.headers["Content-Type"]) == (200, hello.GREETING_JSON)


def test_echoes_a_binary_body(call: Call) -> None:
    body = bytes(range(256)) * 4
    reply = call("POST", "/api/hello/echo", body=body, headers={"Content-Type": "application/x-b"})
    assert (reply.status, reply.body) == (200, body)
    assert reply.headers["Content-Type"] == "application/x-b"


def test_org_greeting_checks_rights_and_org(
    call: Call, assert_valid_vcd_xml: Callable[[bytes], None]
) -> None:
    org = f"urn:vcloud:org:{ACME}"
    denied = call("GET", f"/api/org/{ACME}/hello", headers=XML, org=org)
    assert denied.status == 403
    assert_valid_vcd_xml(denied.body)
    other = call("GET", f"/api/org/{GLOBEX}/hello", headers=XML, org=org, rights=[RIGHT])
    assert other.status == 403
    allowed = call("GET", f"/api/org/{ACME}/hello", headers=XML, org=org, rights=[RIGHT])
    assert allowed.status == 200
    assert f'org="{ACME}"'.encode() in allowed.body


def test_unknown_path_is_404(call: Call, assert_valid_vcd_xml: Callable[[bytes], None]) -> None:
    reply = call("GET", "/api/hello/nothing-here", headers=XML)
    assert reply.status == 404
    assert_valid_vcd_xml(reply.body)
