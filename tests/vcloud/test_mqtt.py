"""vcloud.mqtt: the MQTT envelope, both directions, and the names vCD gives an extension."""

from __future__ import annotations

import base64
import json

import pytest

from vcdext.errors import ProtocolError
from vcdext.vcloud import mqtt
from vcdext.vcloud.message import Reply, decode_request, encode_reply, encode_request

USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"


def envelope(message: dict, context: dict, request_id: str = "rq-1", **extra: object) -> bytes:
    inner = json.dumps({"message": message, "securityContext": context}).encode()
    doc = {"headers": {"requestId": request_id}, "httpRequest": base64.b64encode(inner).decode()}
    return json.dumps({**doc, **extra}).encode()


def test_names_follow_vendor_name_version() -> None:
    assert mqtt.extension_id("vcdext", "hello", "1.0.0") == (
        "urn:vcloud:extension-api:vcdext:hello:1.0.0"
    )
    assert mqtt.broker_username("vcdext", "hello", "1.0.0") == "vcdext/hello/1.0.0"
    topics = mqtt.topics_of("vcdext", "hello", "1.0.0")
    assert topics.monitor == "topic/extension/vcdext/hello/1.0.0/ext"
    assert topics.respond == "topic/extension/vcdext/hello/1.0.0/vcd"


def test_a_request_envelope_opens_into_the_amqp_message() -> None:
    message = {"method": "POST", "requestUri": "/api/hello/echo", "headers": {}, "body": "aGk="}
    opened = mqtt.open_request(envelope(message, {"user": USER, "rights": ["r"]}))
    assert opened.request_id == "rq-1"
    request = decode_request(opened.message)
    assert (request.id, request.method, request.path, request.body) == (
        "rq-1",
        "POST",
        "/api/hello/echo",
        b"hi",
    )
    assert request.security.user == USER
    assert request.security.rights == frozenset({"r"})


def test_the_api_access_token_becomes_a_bearer_header_unless_one_is_there() -> None:
    message = {"method": "GET", "requestUri": "/api/x", "headers": {"Accept": "*/*"}}
    opened = mqtt.open_request(envelope(message, {"apiAccessToken": "jwt"}))
    assert decode_request(opened.message).headers["Authorization"] == "Bearer jwt"
    own = {**message, "headers": {"authorization": "Bearer mine"}}
    opened = mqtt.open_request(envelope(own, {"apiAccessToken": "jwt"}))
    assert decode_request(opened.message).headers["Authorization"] == "Bearer mine"
    assert "jwt" not in repr(decode_request(opened.message))


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        b"[]",
        b'{"headers": {}, "httpRequest": "e30="}',
        b'{"headers": {"requestId": "r"}, "httpRequest": "not base64!"}',
        b'{"headers": {"requestId": "r"}, "httpRequest": "e30="}',  # {} has no message
        b'{"headers": {"requestId": "r"}}',
        b'{"headers": "x", "httpRequest": "e30="}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_unreadable_envelopes_are_protocol_errors(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        mqtt.open_request(payload)


def test_request_id_is_found_in_envelopes_that_do_not_open() -> None:
    assert mqtt.request_id_in(b'{"headers": {"requestId": "r9"}, "httpRequest": 1}') == "r9"
    assert mqtt.request_id_in(b"garbage") == ""
    assert mqtt.request_id_in(b'{"headers": {"requestId": 5}}') == ""


def test_wrap_and_open_round_trip_the_request() -> None:
    message = encode_request("GET", "/api/hello", request_id="a-1", user=USER, rights=["x"])
    wrapped = mqtt.wrap_request(message, "a-1")
    assert json.loads(wrapped)["headers"] == {"requestId": "a-1"}
    assert decode_request(mqtt.open_request(wrapped).message) == decode_request(message)


def test_the_response_carries_status_headers_and_base64_body() -> None:
    amqp = encode_reply(
        "ignored", 201, {"Content-Type": "a/b", "Location": "/x", "Content-Length": "99"}, b"\0ok"
    )
    doc = json.loads(mqtt.response_from_amqp("rq-7", amqp))
    assert doc["type"] == "API_RESPONSE"
    assert doc["headers"] == {"requestId": "rq-7"}
    response = doc["httpResponse"]
    assert response["statusCode"] == 201
    assert response["headers"] == {"Content-Type": "a/b", "Location": "/x", "Content-Length": 3}
    assert base64.b64decode(response["body"]) == b"\0ok"
    assert mqtt.decode_response(mqtt.response_from_amqp("rq-7", amqp)) == Reply(
        201, {"Content-Type": "a/b", "Location": "/x", "Content-Length": "3"}, b"\0ok", "rq-7"
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"{}",
        b'{"type": "API_REQUEST", "httpResponse": {"statusCode": 200}}',
        b'{"type": "API_RESPONSE", "httpResponse": {"statusCode": true}}',
        b'{"type": "API_RESPONSE", "httpResponse": {"statusCode": 200, "body": "!"}}',
    ],
)
def test_unreadable_responses_are_protocol_errors(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        mqtt.decode_response(payload)


def test_request_id_of_a_huge_envelope_is_read_from_its_head_only() -> None:
    huge = b'{"headers": {"requestId": "big-1"}, "httpRequest": "' + b"A" * 100_000 + b'"'
    assert mqtt.request_id_in(huge) == ""  # not JSON (unterminated)
    assert mqtt.request_id_in(huge, head_only=True) == "big-1"
    late = b'{"httpRequest": "' + b"A" * 5000 + b'", "headers": {"requestId": "x"}}'
    assert mqtt.request_id_in(late, head_only=True) == ""
