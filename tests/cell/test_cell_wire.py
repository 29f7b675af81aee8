"""The AMQP messages themselves (protocol §2), seen by a bare kombu consumer playing the
service; routing order and pattern matching."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from kombu import Connection, Exchange, Producer, Queue

from tests.cell.support import Client, service_xml
from vcdext.errors import BadRequest
from vcdext.vcloud.message import encode_reply, encode_request
from vcdext_cell import Cell
from vcdext_cell.forwarder import REPLY_EXCHANGE, Forwarder, ForwardError
from vcdext_cell.model import ApiFilter, Service
from vcdext_cell.seed import demo_seed
from vcdext_cell.state import State

SERVICES = "/api/admin/extension/service"
#: The request fields of example E2 in the protocol notes.
E2_FIELDS = {
    "id",
    "method",
    "scheme",
    "protocol",
    "headers",
    "queryString",
    "localPort",
    "remoteAddr",
    "remotePort",
    "localAddr",
    "request",
    "requestUri",
    "body",
}


@pytest.fixture(
    params=[pytest.param("memory"), pytest.param("rabbitmq", marks=pytest.mark.integration)]
)
def broker(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    url: str = request.getfixturevalue("rabbitmq")
    return url


@pytest.fixture
def raw_service(broker: str) -> Iterator[tuple[Any, Any, str, str]]:
    """A service exchange and queue declared with kombu: (connection, queue, exchange, key)."""
    suffix = uuid.uuid4().hex[:8]
    exchange = Exchange(f"raw-{suffix}", type="direct", durable=True)
    with Connection(broker) as conn:
        channel = conn.channel()
        exchange(channel).declare()
        queue = Queue(f"raw-{suffix}", exchange, routing_key=f"rk-{suffix}", auto_delete=True)
        bound = queue(channel)
        bound.declare()
        yield conn, bound, exchange.name, f"rk-{suffix}"


def _get_one(queue: Any, timeout: float = 30) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = queue.get(no_ack=True)
        if message is not None:
            return message
        time.sleep(0.02)
    raise AssertionError("no message reached the service queue")


def test_request_message_and_reply_mapping(
    broker: str, raw_service, assert_valid_vcd_xml: Callable[[bytes], None]
) -> None:
    conn, queue, exchange, key = raw_service
    with Cell(amqp_url=broker, port=0, timeout=30) as cell:
        admin = Client(cell.url, assert_valid_vcd_xml).login("administrator@System", "vmware")
        admin.xml(
            "POST",
            SERVICES,
            service_xml(
                "raw", "io.raw", exchange=exchange, routing_key=key, patterns=["/api/raw/.*"]
            ),
            status=201,
        )
        alice = Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")
        answers: list[requests.Response] = []
        caller = threading.Thread(
            target=lambda: answers.append(
                alice.post(
                    "/api/raw/thing?x=1&y=2",
                    b"<in/>",
                    headers={"Content-Type": "application/xml", "X-Test": "yes"},
                    vcd_xml=False,
                )
            )
        )
        caller.start()
        message = _get_one(queue)

        props, headers = message.properties, message.headers
        assert props["correlation_id"]
        assert props["reply_to"].startswith("vcdext.cell.")
        assert headers == {"replyToExchange": REPLY_EXCHANGE, "messageType": "ProcessHttpRequest"}
        request, security = json.loads(message.body)
        assert set(request) == E2_FIELDS
        assert request["scheme"] == "http"
        assert request["method"] == "POST"
        assert request["requestUri"] == "/api/raw/thing"
        assert request["queryString"] == "x=1&y=2"
        assert request["request"] is True
        assert base64.b64decode(request["body"]) == b"<in/>"
        assert request["headers"]["X-Test"] == "yes"
        assert request["headers"]["x-vcloud-authorization"] == alice.token
        assert request["localPort"] == int(cell.url.rsplit(":", 1)[1])
        assert request["remoteAddr"] == "127.0.0.1"
        assert security["user"] == f"urn:vcloud:user:{cell.user('alice', 'acme').id}"
        assert security["org"] == f"urn:vcloud:org:{cell.org('acme').id}"
        by_name = {r.name: r.urn for r in cell.rights()}
        assert sorted(security["rights"]) == sorted(
            by_name[name] for name in cell.user("alice", "acme").rights
        )
        assert by_name["{io.vcdext.hello}:View Org Greeting"] in security["rights"]

        reply = {
            "id": request["id"],
            "headers": {
                "Content-Type": "text/plain",
                "Content-Length": 7,
                "Location": "http://x/y",
                "X-Custom": "1",
            },
            "statusCode": 201,
            "body": base64.b64encode(b"created").decode(),
            "request": False,
        }
        Producer(conn.channel()).publish(
            json.dumps(reply).encode(),
            exchange=headers["replyToExchange"],
            routing_key=props["reply_to"],
            correlation_id=props["correlation_id"],
        )
        caller.join(timeout=40)
        (answer,) = answers
        assert answer.status_code == 201
        assert answer.content == b"created"
        assert answer.headers["Content-Type"] == "text/plain"
        assert answer.headers["Location"] == "http://x/y"
        assert answer.headers["X-Custom"] == "1"


def test_builtin_routes_win_over_filters(assert_valid_vcd_xml: Callable[[bytes], None]) -> None:
    with Cell(amqp_url="memory://", port=0) as cell:
        admin = Client(cell.url, assert_valid_vcd_xml).login("administrator@System", "vmware")
        greedy = service_xml(
            "greedy", "io.greedy", exchange=f"missing-{uuid.uuid4().hex}", patterns=["/api/.*"]
        )
        admin.xml("POST", SERVICES, greedy, status=201)
        assert Client(cell.url, assert_valid_vcd_xml).get("/api/versions").status_code == 200
        assert Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")
        assert admin.get("/api/session").status_code == 200
        assert admin.get("/api/admin/extension").status_code == 200
        assert admin.get(SERVICES).status_code == 200
        # Everything else under /api is the service's (here: an exchange that does not exist).
        assert admin.get("/api/org").status_code == 500


def _state_with(*services: tuple[str, int, str, bool]) -> State:
    state = State(demo_seed())
    for name, priority, pattern, enabled in services:
        service = Service(
            name, f"ns.{name}", "rk", "ex", enabled=enabled, priority=priority, id=str(uuid.uuid4())
        )
        state.add_service(
            service, [ApiFilter(pattern, id=str(uuid.uuid4()), service_id=service.id)]
        )
    return state


def test_patterns_match_the_whole_path() -> None:
    state = _state_with(
        ("hello", 50, "/api/hello", True), ("org", 50, "/api/org/[^/]+/hello", True)
    )
    assert state.match("/api/hello").name == "hello"
    assert state.match("/api/hello/more") is None
    assert state.match("/x/api/hello") is None
    assert state.match("/api/org/1234/hello").name == "org"
    assert state.match("/api/org/1/2/hello") is None


def test_higher_priority_wins_then_registration_order() -> None:
    state = _state_with(
        ("first", 50, "/api/x/.*", True),
        ("second", 50, "/api/x/.*", True),
        ("high", 80, "/api/x/y", True),
    )
    assert state.match("/api/x/y").name == "high"
    assert state.match("/api/x/z").name == "first"


def test_disabled_services_do_not_match() -> None:
    state = _state_with(("off", 50, "/api/off", False))
    assert state.match("/api/off") is None


def test_java_named_groups_are_accepted() -> None:
    state = _state_with(("named", 50, "/api/item/(?<id>[0-9]+)", True))
    assert state.match("/api/item/42").name == "named"
    assert state.match("/api/item/abc") is None
    with pytest.raises(BadRequest):
        _state_with(("bad", 50, "/api/(", True))


def _raw_cell(broker: str, raw_service: Any, assert_valid_vcd_xml: Any) -> tuple[Cell, Client]:
    """A started cell with the raw service registered for ``/api/raw``; alice logged in."""
    _, _, exchange, key = raw_service
    cell = Cell(amqp_url=broker, port=0, timeout=30)
    cell.start()
    admin = Client(cell.url, assert_valid_vcd_xml).login("administrator@System", "vmware")
    admin.xml(
        "POST",
        SERVICES,
        service_xml("raw", "io.raw", exchange=exchange, routing_key=key, patterns=["/api/raw"]),
        status=201,
    )
    return cell, Client(cell.url, assert_valid_vcd_xml).login("alice@acme", "vmware")


def _call_and_reply(
    alice: Client, raw_service: Any, reply: Callable[[dict], bytes]
) -> requests.Response:
    """GET /api/raw through the cell, answering as the service with ``reply(request)``."""
    conn, queue, _, _ = raw_service
    answers: list[requests.Response] = []
    caller = threading.Thread(target=lambda: answers.append(alice.get("/api/raw", vcd_xml=False)))
    caller.start()
    message = _get_one(queue)
    Producer(conn.channel()).publish(
        reply(json.loads(message.body)[0]),
        exchange=message.headers["replyToExchange"],
        routing_key=message.properties["reply_to"],
        correlation_id=message.properties["correlation_id"],
    )
    caller.join(timeout=40)
    (answer,) = answers
    return answer


def _reply(request: dict, **headers: str) -> bytes:
    return json.dumps(
        {"id": request["id"], "statusCode": 200, "headers": headers, "body": "", "request": False}
    ).encode()


def test_a_malformed_reply_fails_that_request_only(
    broker: str, raw_service, assert_valid_vcd_xml: Callable[[bytes], None]
) -> None:
    cell, alice = _raw_cell(broker, raw_service, assert_valid_vcd_xml)
    try:
        bad = _call_and_reply(alice, raw_service, lambda request: b"[]")
        assert bad.status_code >= 500  # that request fails, as vCD would
        good = _call_and_reply(alice, raw_service, _reply)
        assert good.status_code == 200  # and forwarding still works
    finally:
        cell.stop()


def test_reply_headers_cannot_inject_into_the_http_response(
    broker: str, raw_service, assert_valid_vcd_xml: Callable[[bytes], None]
) -> None:
    cell, alice = _raw_cell(broker, raw_service, assert_valid_vcd_xml)
    try:
        answer = _call_and_reply(
            alice,
            raw_service,
            lambda request: _reply(request, **{"X-Bad": "a\r\nSet-Cookie: evil=1", "X-Good": "ok"}),
        )
    finally:
        cell.stop()
    assert answer.status_code == 200
    assert answer.headers.get("X-Good") == "ok"
    assert "Set-Cookie" not in answer.headers and "X-Bad" not in answer.headers


def test_send_publishes_as_vcd_and_the_future_gets_the_reply(broker: str, raw_service) -> None:
    """The cell's publisher without waiting (what the tests and the bench play vCD with)."""
    conn, queue, exchange, key = raw_service
    forwarder = Forwarder(broker)
    forwarder.start()
    try:
        message = encode_request("GET", "/api/raw", request_id="r-1")
        future = forwarder.send(
            exchange,
            key,
            message,
            correlation_id="c-1",
            headers={"x-extra": "1"},
            properties={"timestamp": 1_700_000_000},
        )
        with pytest.raises(ForwardError, match="in use"):
            forwarder.send(exchange, key, message, correlation_id="c-1")
        got = _get_one(queue)
        assert json.loads(got.body) == json.loads(message)
        assert got.properties["timestamp"] == 1_700_000_000
        assert got.properties["correlation_id"] == "c-1"
        assert got.properties["reply_to"] == forwarder.reply_queue_name
        assert got.headers == {
            "replyToExchange": REPLY_EXCHANGE,
            "messageType": "ProcessHttpRequest",
            "x-extra": "1",
        }
        assert not future.done()
        Producer(conn.channel()).publish(
            encode_reply("r-1", 201, {"Content-Type": "text/plain"}, b"made"),
            exchange=REPLY_EXCHANGE,
            routing_key=forwarder.reply_queue_name,
            correlation_id="c-1",
        )
        delivery = future.result(timeout=30)
        assert (delivery.correlation_id, delivery.exchange, delivery.routing_key) == (
            "c-1",
            REPLY_EXCHANGE,
            forwarder.reply_queue_name,
        )
        reply = delivery.reply()
        assert (reply.id, reply.status, reply.body) == ("r-1", 201, b"made")
        assert reply.headers["content-type"] == "text/plain"
    finally:
        forwarder.stop()


def test_on_delivery_sees_every_reply_duplicates_and_unknown_ones_included(
    broker: str, raw_service
) -> None:
    """The hook behind the chaos tests' "answered twice" count: every reply on the reply queue,
    before the waiting future completes; a hook that raises does not end the forwarder."""
    conn, queue, exchange, key = raw_service
    seen: list[tuple[str, bytes, bool]] = []
    futures: dict[str, Any] = {}

    def on_delivery(delivery: Any) -> None:
        seen.append((delivery.correlation_id, delivery.body, futures["c-1"].done()))
        if delivery.body == b"boom":
            raise RuntimeError("a broken hook")

    forwarder = Forwarder(broker, on_delivery=on_delivery)
    forwarder.start()
    try:
        futures["c-1"] = forwarder.send(
            exchange, key, encode_request("GET", "/api/raw", request_id="r"), correlation_id="c-1"
        )
        _get_one(queue)
        producer = Producer(conn.channel())
        for cid, body in (("c-1", b"one"), ("c-1", b"two"), ("nobody", b"boom"), ("c-1", b"3")):
            producer.publish(
                body,
                exchange=REPLY_EXCHANGE,
                routing_key=forwarder.reply_queue_name,
                correlation_id=cid,
            )
        assert futures["c-1"].result(timeout=30).body == b"one"
        deadline = time.monotonic() + 30
        while len(seen) < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen == [
            ("c-1", b"one", False),  # the hook runs before the future completes
            ("c-1", b"two", True),
            ("nobody", b"boom", True),
            ("c-1", b"3", True),  # still delivered after the hook raised
        ]
    finally:
        forwarder.stop()
