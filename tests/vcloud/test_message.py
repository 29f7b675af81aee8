"""The AMQP message both ways: decoding vCD's requests, encoding replies, and back
(protocol notes §2 and §11)."""

import base64
import contextlib
import json

import pytest

from vcdext.errors import ProtocolError
from vcdext.testing import make_runtime
from vcdext.vcloud.message import (
    Reply,
    decode_reply,
    decode_request,
    encode_reply,
    encode_request,
    request_id_of,
)

# Example E2 of the protocol notes, byte for byte.
E2 = (
    b'[{"id":"r-1","method":"GET","scheme":"https","protocol":"HTTP/1.1",'
    b'"headers":{"Accept":"application/*+xml;version=5.1","x-vcloud-authorization":"tok"},'
    b'"queryString":null,"localPort":443,"remoteAddr":"10.0.0.5","remotePort":51000,'
    b'"localAddr":"10.0.0.1","request":true,'
    b'"requestUri":"/api/org/9aee51e8-654e-49a8-8dab-3fdbf00a21ae/ticketing","body":""},'
    b'{"user":"urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09",'
    b'"org":"urn:vcloud:org:9aee51e8-654e-49a8-8dab-3fdbf00a21ae","rights":[]}]'
)


def e4(body: bytes = b"<ticket><message>hi</message></ticket>") -> bytes:
    doc = json.loads(E2)
    doc[0].update(
        method="POST",
        requestUri="/api/org/9aee/ticketing",
        headers={"Content-Type": "application/xml", "Accept": "application/*+xml"},
        body=base64.b64encode(body).decode(),
    )
    return json.dumps(doc).encode()


def test_decodes_example_e2():
    req = decode_request(E2)
    assert (req.id, req.method) == ("r-1", "GET")
    assert req.path == "/api/org/9aee51e8-654e-49a8-8dab-3fdbf00a21ae/ticketing"
    assert req.query_string == ""
    assert req.headers["ACCEPT"] == "application/*+xml;version=5.1"
    assert req.body == b""
    assert req.security.user == "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
    assert req.security.org.startswith("urn:vcloud:org:")
    assert req.security.rights == frozenset()
    assert req.raw["remoteAddr"] == "10.0.0.5"


def test_decodes_example_e4_body_from_base64():
    req = decode_request(e4())
    assert req.method == "POST"
    assert req.body == b"<ticket><message>hi</message></ticket>"
    assert req.content_type == "application/xml"
    assert req.xml().tag == "ticket"


def test_tolerates_extra_elements_and_unknown_keys():
    doc = json.loads(E2)
    doc[0]["somethingNew"] = {"x": 1}
    doc[1]["roles"] = ["Organization Administrator"]
    doc.append({"future": True})
    req = decode_request(json.dumps(doc).encode())
    assert req.raw["somethingNew"] == {"x": 1}
    assert req.security.raw["roles"] == ["Organization Administrator"]


def test_object_form_is_read_too():
    """Tolerant reading of the docs' "JSON object": the request itself, optionally with a
    nested securityContext."""
    doc = json.loads(E2)
    obj = {**doc[0], "securityContext": doc[1]}
    req = decode_request(json.dumps(obj).encode())
    assert req.security.user == doc[1]["user"]


def test_rights_given_as_strings_or_objects():
    doc = json.loads(E2)
    doc[1]["rights"] = ["urn:vcloud:right:1", {"name": "{x}:Y", "id": "urn:vcloud:right:2"}]
    req = decode_request(json.dumps(doc).encode())
    assert req.security.rights == {"urn:vcloud:right:1", "{x}:Y", "urn:vcloud:right:2"}


def test_query_string_in_request_uri_is_split_off():
    doc = json.loads(E2)
    doc[0]["requestUri"] = "/api/x?page=2&pageSize=5"
    req = decode_request(json.dumps(doc).encode())
    assert req.path == "/api/x"
    assert req.query == {"page": ["2"], "pageSize": ["5"]}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"garbage", "not UTF-8 JSON"),
        (b"\xff\xfe", "not UTF-8 JSON"),
        (b"[]", "must start with the request"),
        (b"42", "JSON array or object"),
        (b'[{"method":"GET"}]', "needs 'method' and 'requestUri'"),
        (b'[{"method":"GET","requestUri":"/api/x","body":"***"}]', "not valid base64"),
        (b'[{"method":"GET","requestUri":"/api/x","headers":[1]}]', "'headers' must be an object"),
        (b'[{"method":["GET"],"requestUri":"/api/x"}]', "'method' must be a string"),
    ],
)
def test_undecodable_messages_raise_protocol_error(data, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode_request(data)


def test_reply_has_the_shape_of_example_e3():
    reply = json.loads(
        encode_reply("r-1", 200, {"Content-Type": "application/*+xml"}, b"<tickets></tickets>")
    )
    assert reply == {
        "id": "r-1",
        "headers": {"Content-Type": "application/*+xml", "Content-Length": 19},
        "statusCode": 200,
        "body": "PHRpY2tldHM+PC90aWNrZXRzPg==",
        "request": False,
    }


def test_content_length_is_always_the_real_length():
    reply = json.loads(encode_reply("r", 200, {"content-length": "999"}, b"abc"))
    assert reply["headers"] == {"Content-Length": 3}


def test_encode_request_round_trips():
    data = encode_request(
        "post",
        "/api/x",
        request_id="q",
        headers={"A": "b"},
        body=b"\x00\x01",
        query_string="a=1",
        user="u",
        org="o",
        rights=["r"],
    )
    req = decode_request(data)
    assert (req.method, req.path, req.query_string, req.body) == (
        "POST",
        "/api/x",
        "a=1",
        b"\x00\x01",
    )
    assert (req.security.user, req.security.org, req.security.rights) == ("u", "o", {"r"})
    assert decode_reply(encode_reply("q", 201, {}, b"x")).status == 201


@pytest.mark.parametrize(
    "data",
    [
        b"[]",
        b"42",
        b'{"statusCode": "x"}',
        b'{"statusCode": 200, "headers": []}',
        b'{"statusCode": 200, "body": 5}',
        b'{"statusCode": 200, "body": "***"}',
        b'{"statusCode": true}',
        b'{"headers": {}}',
        b"\xff",
    ],
)
def test_malformed_replies_raise_protocol_error(data):
    with pytest.raises(ProtocolError):
        decode_reply(data)


def test_credentials_never_show_in_reprs():
    req = decode_request(E2)
    req.headers["Authorization"] = "Bearer eyJsecret"
    text = repr(req) + repr(req.headers)
    assert "tok" not in text.replace("x-vcloud-authorization", "")
    assert "eyJsecret" not in text
    assert "application/*+xml;version=5.1" in text


def test_encode_request_writes_the_fields_of_example_e2():
    data = encode_request(
        "GET",
        "/api/org/9aee51e8-654e-49a8-8dab-3fdbf00a21ae/ticketing",
        request_id="r-1",
        headers={"Accept": "application/*+xml;version=5.1", "x-vcloud-authorization": "tok"},
        user="urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09",
        org="urn:vcloud:org:9aee51e8-654e-49a8-8dab-3fdbf00a21ae",
        local=("10.0.0.1", 443),
        remote=("10.0.0.5", 51000),
    )
    assert json.loads(data) == json.loads(E2)


def test_reply_round_trips_with_case_insensitive_headers():
    data = encode_reply("r-9", 404, {"Content-Type": "text/plain", "Allow": "GET"}, b"none")
    reply = decode_reply(data)
    assert reply == Reply(404, reply.headers, b"none", id="r-9")
    assert reply.headers["content-type"] == "text/plain"
    assert reply.headers["Content-Length"] == "4"


# -- issue 12, failure 1: nothing in a message may escape the decoder ------------------------

NESTED = b"[" * 100_000  # json.loads raises RecursionError on it


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (NESTED, "nested too deeply"),
        (b'[{"id":"x","method":"GET","requestUri":' + b"[" * 100_000, "nested too deeply"),
        # urlsplit raises ValueError on an unterminated IPv6 host.
        (b'[{"method":"GET","requestUri":"http://[::1/api/x"}]', "cannot be read"),
    ],
)
def test_any_decoding_failure_is_a_protocol_error(data, reason):
    with pytest.raises(ProtocolError, match=reason):
        decode_request(data)


@pytest.mark.parametrize(
    "data",
    [NESTED, b'{"id":' + b"[" * 100_000, b"\xff", b"[]", b"[1]", b'{"id": 5}', b"", b"null"],
)
def test_request_id_of_never_raises(data):
    assert request_id_of(data) == ""


def test_request_id_of_finds_the_id_of_an_otherwise_bad_request():
    assert request_id_of(b'[{"id":"r-7","method":["GET"]}]') == "r-7"
    assert request_id_of(b'{"id":"r-8"}') == "r-8"


def test_a_deeply_nested_reply_is_a_protocol_error():
    with pytest.raises(ProtocolError, match="nested too deeply"):
        decode_reply(b'{"statusCode":200,"headers":' + b"[" * 100_000)


def test_the_runtime_answers_a_deeply_nested_message_400(assert_valid_vcd_xml):
    reply = decode_reply(make_runtime().handle_message(NESTED))
    assert (reply.status, reply.id) == (400, "")
    assert b"nested too deeply" in reply.body
    assert_valid_vcd_xml(reply.body)


def test_protocol_module_keeps_its_names():
    import vcdext.protocol as protocol
    import vcdext.vcloud.message as message

    for name in ("Headers", "Request", "SecurityContext", "Reply", "decode_request"):
        assert getattr(protocol, name) is getattr(message, name)
    for name in ("encode_request", "encode_reply", "decode_reply", "request_id_of"):
        assert getattr(protocol, name) is getattr(message, name)


ODD_VALUES = [None, True, 0, -1, 2.5, "", "x", "\u0000", [], ["x"], {}, {"a": [1]}]
ODD_VALUES.append(json.loads("[" * 200 + "]" * 200))


@pytest.mark.parametrize(
    ("element", "field"),
    [(0, name) for name in json.loads(E2)[0]] + [(1, name) for name in ("user", "org", "rights")],
)
def test_a_field_of_any_json_type_is_read_or_refused_never_raised(element, field):
    runtime = make_runtime()
    for value in ODD_VALUES:
        doc = json.loads(E2)
        doc[element][field] = value
        data = json.dumps(doc).encode()
        with contextlib.suppress(ProtocolError):  # refused is fine; anything else is not
            decode_request(data)
        reply = decode_reply(runtime.handle_message(data))
        assert reply.status in (400, 404), (field, value)
        if field != "id":
            assert request_id_of(data) == "r-1"
        else:
            assert request_id_of(data) == (value if isinstance(value, str) else "")


def test_every_truncation_of_a_message_is_refused_never_raised():
    for end in range(len(E2)):
        with pytest.raises(ProtocolError):
            decode_request(E2[:end])
        assert request_id_of(E2[:end]) == ""
