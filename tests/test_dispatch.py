"""The transport-free pipeline, driven through the in-process test client."""

import dataclasses
import json
import logging
import time

import pytest
from lxml import etree

from vcdext import (
    BadRequest,
    NotFound,
    Registrar,
    Request,
    Response,
    Service,
    current,
    hookimpl,
    operation,
)
from vcdext.settings import load_settings
from vcdext.testing import TestClient, make_runtime
from vcdext.vcloud.media import VCLOUD_NS

RIGHT = "{io.example.shop}:Buy"


@operation("GET", "/api/shop/items", produces=["application/vnd.example.items+xml"])
def list_items(request: Request) -> str:
    return "<Items/>"


@operation("GET", "/api/shop/items/{item_id}")
def get_item(request: Request, item_id: str) -> Response:
    if item_id == "missing":
        raise NotFound(f"No item {item_id}")
    return Response(f"<Item id='{item_id}'/>", content_type="application/xml")


@operation("GET", "/api/shop/items/new")
def new_item_form(request: Request) -> str:
    return "<Form/>"


@operation(
    "POST", "/api/shop/items", rights=["Buy"], consumes=["application/*+xml", "application/xml"]
)
def buy(request: Request) -> Response:
    doc = request.xml()
    return Response(etree.tostring(doc), status=201, headers={"Location": "/api/shop/items/9"})


@operation("DELETE", "/api/shop/items/{item_id}")
def delete_item(request: Request, item_id: str) -> None:
    return None


@operation("GET", "/api/shop/crash")
def crash(request: Request) -> str:
    raise RuntimeError("secret internals: password=hunter2")


@operation("GET", "/api/shop/bad-return")
def bad_return(request: Request) -> object:
    return 42


@operation("GET", "/api/shop/context")
def context_info(request: Request) -> str:
    ctx = current()
    return f"{ctx.plugin}|{','.join(ctx.locales)}|{ctx.remaining > 0}"


@operation("GET", "/api/shop/element")
def element(request: Request) -> etree._Element:
    return etree.Element("Thing")


class Shop:
    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.service(name="shop", namespace="io.example.shop", vendor="Example")
        registrar.add_right("Buy", description="Buy things")
        registrar.add_operations(
            list_items,
            get_item,
            new_item_form,
            buy,
            delete_item,
            crash,
            bad_return,
            context_info,
            element,
        )


@pytest.fixture
def client():
    return TestClient(make_runtime(shop=Shop()))


def error_of(response):
    assert response.content_type.startswith("application/vnd.vmware.vcloud.error+xml")
    doc = response.xml()
    assert doc.tag == f"{{{VCLOUD_NS}}}Error"
    return doc


def test_routes_and_defaults_content_type_to_first_produces(client):
    r = client.get("/api/shop/items")
    assert (r.status, r.text) == (200, "<Items/>")
    assert r.content_type == "application/vnd.example.items+xml"
    assert r.headers["Content-Length"] == str(len(r.body))


def test_path_parameters_arrive_as_keyword_arguments(client):
    assert client.get("/api/shop/items/7").text == "<Item id='7'/>"


def test_literal_template_wins_over_parameter(client):
    assert client.get("/api/shop/items/new").text == "<Form/>"


def test_unknown_path_is_404_error(client, assert_valid_vcd_xml):
    r = client.get("/api/shop/nothing")
    assert r.status == 404
    assert error_of(r).get("minorErrorCode") == "RESOURCE_NOT_FOUND"
    assert_valid_vcd_xml(r.body)


def test_wrong_method_is_405_with_allow(client, assert_valid_vcd_xml):
    r = client.put("/api/shop/items/3")
    assert r.status == 405
    assert r.headers["Allow"] == "DELETE, GET"
    assert error_of(r).get("minorErrorCode") == "METHOD_NOT_ALLOWED"
    assert_valid_vcd_xml(r.body)


def test_handler_http_error_becomes_error_reply(client, assert_valid_vcd_xml):
    r = client.get("/api/shop/items/missing")
    assert r.status == 404
    assert error_of(r).get("message") == "No item missing"
    assert_valid_vcd_xml(r.body)


def test_missing_right_is_403_and_held_right_passes(client, assert_valid_vcd_xml):
    body = "<Order/>"
    headers = {"Content-Type": "application/xml"}
    denied = client.post("/api/shop/items", body=body, headers=headers)
    assert denied.status == 403
    assert RIGHT in error_of(denied).get("message")
    assert_valid_vcd_xml(denied.body)
    allowed = client.post("/api/shop/items", body=body, headers=headers, rights=[RIGHT])
    assert (allowed.status, allowed.headers["Location"]) == (201, "/api/shop/items/9")


def test_right_urns_are_accepted_once_learned(client):
    urn = "urn:vcloud:right:5b1a"
    kwargs = {"body": "<Order/>", "headers": {"Content-Type": "application/xml"}, "rights": [urn]}
    assert client.post("/api/shop/items", **kwargs).status == 403
    client.runtime.dispatcher.learn_right_ids({RIGHT: [urn]})
    assert client.post("/api/shop/items", **kwargs).status == 201


def test_malformed_xml_body_is_400(client, assert_valid_vcd_xml):
    r = client.post(
        "/api/shop/items",
        body="<Order>",
        rights=[RIGHT],
        headers={"Content-Type": "application/xml"},
    )
    assert r.status == 400
    assert error_of(r).get("minorErrorCode") == "BAD_REQUEST"
    assert_valid_vcd_xml(r.body)


def test_unaccepted_content_type_is_415(client):
    r = client.post(
        "/api/shop/items", body="{}", rights=[RIGHT], headers={"Content-Type": "application/json"}
    )
    assert r.status == 415
    assert "application/json" in error_of(r).get("message")


def test_vendor_xml_media_type_matches_wildcard_consumes(client):
    r = client.post(
        "/api/shop/items",
        body="<Order/>",
        rights=[RIGHT],
        headers={"Content-Type": "application/vnd.example.order+xml; charset=utf-8"},
    )
    assert r.status == 201


def test_handler_exception_is_500_with_request_id_and_no_internals(client, caplog):
    with caplog.at_level(logging.ERROR, logger="vcdext.dispatch"):
        r = client.get("/api/shop/crash")
    assert r.status == 500
    message = error_of(r).get("message")
    assert "request id test-" in message
    assert "hunter2" not in r.text and "Traceback" not in r.text
    request_id = message.rsplit(" ", 1)[-1]
    record = next(rec for rec in caplog.records if request_id in rec.getMessage())
    assert record.exc_info is not None  # the traceback is in the log


def test_unsupported_return_type_is_500(client):
    assert client.get("/api/shop/bad-return").status == 500


def test_none_is_204_without_body(client):
    r = client.delete("/api/shop/items/3")
    assert (r.status, r.body) == (204, b"")
    assert "Content-Type" not in r.headers


def test_element_result_is_serialised(client):
    r = client.get("/api/shop/element")
    assert r.xml().tag == "Thing"


def test_context_carries_plugin_locales_and_deadline(client):
    r = client.get("/api/shop/context", headers={"Accept-Language": "fr-CH, fr;q=0.9, en;q=0.8"})
    assert r.text == "shop|fr_CH,fr,en|True"


def test_error_content_type_carries_the_clients_api_version(client):
    r = client.get("/api/shop/nothing", headers={"Accept": "application/*+xml;version=36.0"})
    assert r.content_type == "application/vnd.vmware.vcloud.error+xml;version=36.0"


def test_request_past_vcds_timeout_is_not_run():
    runtime = make_runtime(
        shop=Shop(), settings=load_settings(None, environ={"VCDEXT_RUNTIME_TIMEOUT": "0.5"})
    )
    from vcdext.protocol import decode_reply, encode_request

    message = encode_request("GET", "/api/shop/items", request_id="late")
    stale = time.monotonic() - 1.0
    reply = decode_reply(runtime.dispatcher.handle_message(message, received=stale))
    assert reply.status == 503


def test_undecodable_message_gets_400_with_its_id_when_readable(assert_valid_vcd_xml):
    runtime = make_runtime(shop=Shop())
    from vcdext.protocol import decode_reply

    reply = decode_reply(runtime.handle_message(b'[{"id":"x-1","method":"GET"}]'))
    assert (reply.status, reply.id) == (400, "x-1")
    assert_valid_vcd_xml(reply.body)
    assert decode_reply(runtime.handle_message(b"\x00garbage")).status == 400


def test_routing_key_restricts_routing_to_that_service():
    runtime = make_runtime(shop=Shop())
    client = TestClient(runtime)
    assert client.get("/api/shop/items", routing_key="io.example.shop").status == 200
    assert client.get("/api/shop/items", routing_key="other").status == 404


def test_bad_request_helper_raises():
    with pytest.raises(BadRequest):
        Request(id="1", method="POST", path="/api/x", body=b"{").json()


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (
            "application/*+xml;version=36.0, application/json;version=36.0",
            "application/vnd.vmware.vcloud.error+xml;version=36.0",
        ),
        ("application/*+xml;version=<script>", "application/vnd.vmware.vcloud.error+xml"),
        ("application/*+xml", "application/vnd.vmware.vcloud.error+xml"),
    ],
)
def test_error_content_type_echoes_only_a_well_formed_version(client, accept, content_type):
    r = client.get("/api/shop/nothing", headers={"Accept": accept})
    assert r.content_type == content_type


# --- content negotiation and the error family --------------------------------------------------

NOTE_XML = "application/vnd.example.note+xml"
NOTE_JSON = "application/vnd.example.note+json"


@dataclasses.dataclass
class Note:
    id: str
    text: str


def notes_plugin():
    service = Service("notes", namespace="io.example.notes")

    @service.operation("GET", "/api/notes/{note_id}", produces=[NOTE_XML, NOTE_JSON])
    def get_note(request: Request, note_id: str) -> object:
        if current().wants_json:
            return Note(note_id, "hi")
        return f"<Note id='{note_id}' type='{current().content_type}'/>"

    @service.operation("GET", "/api/notes", produces=["application/json"])
    def list_notes(request: Request) -> object:
        return {"notes": [request.query.get("tag", [])]}

    @service.operation("GET", "/api/notes-json", produces=[NOTE_JSON])
    def notes_json(request: Request) -> Response:
        return Response.json([1, 2], status=201)

    @service.operation("GET", "/api/org/{org_id}/notes", same_org="org_id")
    def org_notes(request: Request, org_id: str) -> str:
        return f"<Notes org='{org_id}'/>"

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.add_service(service)

    return Plugin()


@pytest.fixture
def notes():
    return TestClient(make_runtime(notes=notes_plugin()))


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("application/*+xml;version=36.0", NOTE_XML),
        ("application/*+json;version=36.0", NOTE_JSON),
        (f"{NOTE_JSON};version=36.0", NOTE_JSON),
        ("application/*+xml;q=0.5, application/*+json;version=36.0", NOTE_JSON),
        ("*/*", NOTE_XML),
        ("application/*", NOTE_XML),
        ("", NOTE_XML),
    ],
)
def test_produces_is_negotiated_against_accept(notes, accept, expected):
    r = notes.get("/api/notes/7", headers={"Accept": accept})
    assert r.status == 200
    assert r.content_type == expected


def test_handler_sees_the_negotiated_type_and_a_dataclass_becomes_json(notes):
    r = notes.get("/api/notes/7", headers={"Accept": "application/*+json;version=36.0"})
    assert r.json() == {"id": "7", "text": "hi"}
    xml = notes.get("/api/notes/7")
    assert xml.xml().get("type") == NOTE_XML


def test_a_dict_becomes_json_and_query_takes_a_mapping(notes):
    accept = {"Accept": "application/json;version=36.0"}
    r = notes.get("/api/notes", headers=accept, query={"tag": ["a", "b c"]})
    assert (r.status, r.content_type) == (200, "application/json")
    assert r.json() == {"notes": [["a", "b c"]]}
    assert notes.get("/api/notes", headers=accept, query="tag=x").json() == {"notes": [["x"]]}


def test_response_json_takes_the_negotiated_json_type(notes):
    r = notes.get("/api/notes-json", headers={"Accept": "application/*+json;version=36.0"})
    assert (r.status, r.content_type, r.json()) == (201, NOTE_JSON, [1, 2])


def test_nothing_acceptable_is_406_error(notes, assert_valid_vcd_xml):
    r = notes.get("/api/notes/7", headers={"Accept": "text/html"})
    assert r.status == 406
    doc = error_of(r)
    assert doc.get("minorErrorCode") == "NOT_ACCEPTABLE"
    assert NOTE_XML in doc.get("message")
    assert_valid_vcd_xml(r.body)


def test_q_zero_refuses_a_type(notes):
    r = notes.get("/api/notes/7", headers={"Accept": f"{NOTE_XML};q=0, {NOTE_JSON};q=0"})
    assert r.status == 406


def test_errors_for_json_clients_use_vcds_json_error_form(notes):
    r = notes.get("/api/nothing", headers={"Accept": "application/*+json;version=36.0"})
    assert r.status == 404
    assert r.content_type == "application/vnd.vmware.vcloud.error+json;version=36.0"
    doc = r.json()
    assert doc["majorErrorCode"] == 404
    assert doc["minorErrorCode"] == "RESOURCE_NOT_FOUND"
    assert doc["message"] == "No resource at /api/nothing"
    assert doc["stackTrace"] is None


def test_a_406_for_a_json_client_is_json(notes):
    r = notes.get("/api/notes/7", headers={"Accept": "application/json;version=36.0"})
    assert r.status == 406
    assert r.content_type == "application/vnd.vmware.vcloud.error+json;version=36.0"
    assert r.json()["minorErrorCode"] == "NOT_ACCEPTABLE"


# --- tenant isolation: same_org ------------------------------------------------------------------

ACME = "9aee51e8-654e-49a8-8dab-3fdbf00a21ae"
SYSTEM_ORG = "urn:vcloud:org:a93c9db9-7471-3192-8d09-a8f7eeda85f9"


@pytest.mark.parametrize(
    ("caller_org", "path_org", "status"),
    [
        (f"urn:vcloud:org:{ACME}", ACME, 200),
        (f"urn:vcloud:org:{ACME}", f"urn:vcloud:org:{ACME}", 200),
        (f"urn:vcloud:org:{ACME.upper()}", ACME, 200),
        (f"urn:vcloud:org:{ACME}", "1c8b7c5e-3f0e-4d55-9e0b-2c7f4a1d0b11", 403),
        ("", ACME, 403),
        (SYSTEM_ORG, ACME, 200),
    ],
)
def test_same_org_admits_only_the_callers_org_or_a_system_administrator(
    notes, caller_org, path_org, status, assert_valid_vcd_xml
):
    r = notes.get(f"/api/org/{path_org}/notes", org=caller_org)
    assert r.status == status
    if status == 403:
        assert error_of(r).get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"
        assert_valid_vcd_xml(r.body)


# --- what the issue asks to see, on the example plugin ---------------------------------------


def test_hello_answers_text_html_with_a_schema_valid_406(assert_valid_vcd_xml):
    import vcdext_hello.plugin as hello

    r = TestClient(make_runtime(hello)).get("/api/hello", headers={"Accept": "text/html"})
    assert r.status == 406
    assert error_of(r).get("minorErrorCode") == "NOT_ACCEPTABLE"
    assert_valid_vcd_xml(r.body)


def test_hello_answers_a_json_client_in_json_and_its_404_in_vcds_json_error_form():
    import vcdext_hello.plugin as hello

    client = TestClient(make_runtime(hello))
    accept = {"Accept": "application/*+json;version=36.0"}
    ok = client.get("/api/hello", headers=accept)
    assert (ok.status, ok.content_type) == (200, hello.GREETING_JSON)
    assert "text" in ok.json()
    missing = client.get("/api/hello/nothing", headers=accept)
    assert missing.status == 404
    assert missing.content_type == "application/vnd.vmware.vcloud.error+json;version=36.0"
    assert missing.json()["minorErrorCode"] == "RESOURCE_NOT_FOUND"
    assert missing.json()["majorErrorCode"] == 404


def test_add_operation_takes_same_org_too():
    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar: Registrar) -> None:
            registrar.service(name="o", namespace="io.example.o")
            registrar.add_operation(
                "GET", "/api/o/{org_id}", lambda request, org_id: "<O/>", same_org="org_id"
            )

    client = TestClient(make_runtime(o=Plugin()), org="urn:vcloud:org:aa")
    assert client.get("/api/o/aa").status == 200
    assert client.get("/api/o/bb").status == 403


def test_only_replies_of_non_idempotent_operations_are_kept_for_redeliveries():
    """``Dispatcher.answer`` tells the transport whether a redelivered message may get the
    same reply instead of running again: yes after a POST's handler ran; no for GET (idempotent
    by default), an operation declared ``idempotent=True``, or a request no handler saw."""
    from vcdext import Service, hookimpl
    from vcdext.vcloud.message import encode_request

    service = Service("idem", namespace="io.test.idem")

    @service.operation("GET", "/api/idem/read")
    def read(request):
        return "<r/>"

    @service.operation("POST", "/api/idem/create")
    def create(request):
        return "<c/>"

    @service.operation("POST", "/api/idem/upsert", idempotent=True)
    def upsert(request):
        return "<u/>"

    @service.operation("DELETE", "/api/idem/thing", idempotent=False)
    def delete(request):
        return None

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    dispatcher = make_runtime(idem=Plugin()).dispatcher

    def reusable(method, path):
        return dispatcher.answer(encode_request(method, path, request_id="r-1"))[1]

    assert reusable("POST", "/api/idem/create") is True
    assert reusable("DELETE", "/api/idem/thing") is True
    assert reusable("GET", "/api/idem/read") is False
    assert reusable("POST", "/api/idem/upsert") is False
    assert reusable("POST", "/api/idem/nowhere") is False
    assert dispatcher.answer(b"[not json")[1] is False


def test_each_method_gets_the_path_parameters_of_its_own_template():
    """Two operations on one path shape may name the parameter differently: each handler is
    called with its own names (the load-time signature check promises it), and same_org
    reads its own parameter."""
    service = Service("names", namespace="io.test.names")

    @service.operation("GET", "/api/names/{item_id}")
    def read(request, item_id):
        return f"<r id='{item_id}'/>"

    @service.operation("DELETE", "/api/names/{name}")
    def delete(request, name):
        return f"<d name='{name}'/>"

    @service.operation("GET", "/api/names/{org}/things")
    def things(request, org):
        return "<t/>"

    @service.operation("PUT", "/api/names/{org_id}/things", same_org="org_id")
    def put_things(request, org_id):
        return f"<p org='{org_id}'/>"

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    client = TestClient(make_runtime(names=Plugin()), org="urn:vcloud:org:aa")
    assert client.get("/api/names/7").text == "<r id='7'/>"
    deleted = client.delete("/api/names/7")
    assert (deleted.status, deleted.text) == (200, "<d name='7'/>")
    put = client.put("/api/names/aa/things", body=b"")
    assert (put.status, put.text) == (200, "<p org='aa'/>")
    assert client.put("/api/names/bb/things", body=b"").status == 403


@pytest.mark.parametrize("path", ["/api/shop/\x01/none", "/api/shop/\ud800"])
def test_a_path_xml_cannot_quote_is_still_answered_404(client, path):
    from vcdext.vcloud.message import decode_reply

    body = (
        '[{"id":"r-1","method":"GET","requestUri":' + json.dumps(path) + '},{"rights":[]}]'
    ).encode()
    reply = decode_reply(client.runtime.handle_message(body))
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/vnd.vmware.vcloud.error+xml")


@pytest.mark.parametrize(
    "response",
    [
        Response(body=123),  # type: ignore[arg-type]
        Response("<x/>", status="200"),  # type: ignore[arg-type]
        Response("<x/>", status=True),
        Response("<x/>", status=42),
        Response("<x/>", headers={1: "x"}),  # type: ignore[dict-item]
        Response("<x/>", headers={"X-N": 5}),  # type: ignore[dict-item]
    ],
)
def test_a_malformed_response_is_a_500_like_any_handler_bug(response, caplog):
    """A Response of the wrong types is answered as an unsupported return value is: a 500
    Error with the request id, not a broken reply (nor an exception out of the dispatcher)."""
    service = Service("bad", namespace="io.test.bad")

    @service.operation("GET", "/api/bad")
    def bad(request):
        return response

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    r = TestClient(make_runtime(bad=Plugin())).get("/api/bad")
    assert r.status == 500
    assert "request id" in error_of(r).get("message")


def test_a_response_status_may_be_an_http_status_member():
    from http import HTTPStatus

    service = Service("created", namespace="io.test.created")

    @service.operation("POST", "/api/created")
    def create(request):
        return Response("<x/>", status=HTTPStatus.CREATED)

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    assert TestClient(make_runtime(c=Plugin())).post("/api/created").status == 201


class Quick:
    """Inline operations: one that only computes, one that (wrongly) sleeps."""

    @hookimpl
    def vcdext_register(self, registrar: Registrar) -> None:
        registrar.service(name="quick", namespace="io.example.quick")
        registrar.add_operation("GET", "/api/quick", lambda r: "<Quick/>", inline=True)
        registrar.add_operation("GET", "/api/quick/slow", self.slow, name="slow", inline=True)
        registrar.add_operation("GET", "/api/quick/pooled", lambda r: "<Pooled/>")

    @staticmethod
    def slow(request: Request) -> str:
        time.sleep(0.06)
        return "<Slow/>"


def test_runs_inline_says_which_requests_the_transport_may_answer_on_its_own_thread():
    runtime = make_runtime(quick=Quick(), shop=Shop())
    dispatcher = runtime.dispatcher
    from vcdext.protocol import encode_request

    def inline(method: str, path: str, key: str | None = None) -> bool:
        request = dispatcher.decode(encode_request(method, path, request_id="r"))
        assert request is not None
        return dispatcher.runs_inline(request, key)

    assert inline("GET", "/api/quick")
    assert not inline("GET", "/api/quick/pooled")
    assert not inline("GET", "/api/shop/items")
    # Nothing to run (no route, wrong method, unknown routing key): an error built at once.
    assert inline("GET", "/api/nowhere")
    assert inline("DELETE", "/api/quick")
    assert inline("GET", "/api/shop/items", "no.such.key")
    assert not inline("GET", "/api/shop/items", "io.example.shop")
    assert dispatcher.decode(b"\x00garbage") is None


def test_a_slow_inline_handler_is_reported_once(caplog):
    client = TestClient(make_runtime(quick=Quick()))
    with caplog.at_level(logging.WARNING, logger="vcdext.dispatch"):
        assert client.get("/api/quick").status == 200
        assert client.get("/api/quick/slow").status == 200
        assert client.get("/api/quick/slow").status == 200
    warnings = [r.getMessage() for r in caplog.records if "inline=True" in r.getMessage()]
    assert len(warnings) == 1
    assert "GET /api/quick/slow of plugin quick" in warnings[0]


def test_a_decoded_request_is_not_decoded_again():
    runtime = make_runtime(quick=Quick())
    from vcdext.protocol import decode_reply, encode_request

    request = runtime.dispatcher.decode(encode_request("GET", "/api/quick", request_id="q-1"))
    assert request is not None
    reply, _ = runtime.dispatcher.answer(b"not even json", request=request)
    assert (decode_reply(reply).status, decode_reply(reply).id) == (200, "q-1")
