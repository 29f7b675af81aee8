"""The hardened XML parser: no entities, no DTDs, no network, bounded depth."""

import pytest

from vcdext import BadRequest, PayloadTooLarge
from vcdext.xml import REQUEST_BUDGET, REQUEST_MAX_BYTES, parse

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_documents_with_a_doctype_are_refused(doc):
    with pytest.raises(BadRequest, match="DOCTYPE"):
        parse(doc)


def test_malformed_xml_is_a_bad_request():
    with pytest.raises(BadRequest, match="Malformed XML"):
        parse(b"<a><b></a>")


def test_deep_nesting_is_refused():
    deep = b"<a>" * 150 + b"</a>" * 150
    with pytest.raises(BadRequest, match="nested deeper"):
        parse(deep)


def test_ordinary_documents_parse():
    assert parse("<a x='1'><b/></a>").get("x") == "1"


def test_a_doctype_in_another_encoding_is_refused_too():
    utf16 = EXTERNAL_ENTITY.decode().replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>'
    )
    with pytest.raises(BadRequest, match="DOCTYPE"):
        parse(utf16.encode("utf-16"))


def test_the_parser_itself_resolves_no_entities_and_reads_no_files(tmp_path):
    """Even without the DOCTYPE checks, the parser's own flags keep files and entities out."""
    from lxml import etree

    from vcdext.xml import parser

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">'
        '<!ENTITY y "yy">]><r>&x;&y;</r>'
    ).encode()
    root = etree.fromstring(doc, parser())
    assert "TOP-SECRET" not in etree.tostring(root).decode()
    assert "yy" not in (root.text or "")


# -- the request budget: vCD's own limits on API requests (512 KB, 4096 elements, depth 100) --


def _budget_doc(elements: int = 1, attributes: int = 0) -> bytes:
    attrs = " ".join(f'a{i}=""' for i in range(attributes))
    return f"<r {attrs}>".encode() + b"<e/>" * (elements - 1) + b"</r>"


def test_request_budget_accepts_what_vcd_accepts():
    root = parse(_budget_doc(elements=4096), budget=REQUEST_BUDGET)
    assert len(root) == 4095


def test_request_budget_refuses_more_elements_than_vcd():
    with pytest.raises(BadRequest, match="more than 4096 elements"):
        parse(_budget_doc(elements=4097), budget=REQUEST_BUDGET)


def test_request_budget_refuses_an_attribute_flood():
    doc = _budget_doc(attributes=REQUEST_BUDGET.max_attributes + 1)
    assert len(doc) < REQUEST_MAX_BYTES  # within the size limit: the attribute count refuses it
    with pytest.raises(BadRequest, match="attributes"):
        parse(doc, budget=REQUEST_BUDGET)


def test_request_budget_refuses_an_oversized_body_before_parsing():
    with pytest.raises(PayloadTooLarge):
        parse(b"<r>" + b" " * REQUEST_MAX_BYTES + b"</r>", budget=REQUEST_BUDGET)


def test_documents_from_vcd_are_not_held_to_the_request_budget():
    assert len(parse(_budget_doc(elements=5000))) == 4999


def test_a_handler_parsing_an_oversized_body_answers_413_and_a_flood_400():
    from vcdext import Request, Service, hookimpl
    from vcdext.testing import TestClient, make_runtime

    service = Service("budget", namespace="io.test.budget")

    @service.operation("POST", "/api/budget", consumes=["application/xml"])
    def take(request: Request) -> str:
        return f"<n>{len(request.xml())}</n>"

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    client = TestClient(make_runtime(budget=Plugin()))
    xml = {"Content-Type": "application/xml"}
    assert client.post("/api/budget", body=_budget_doc(elements=10), headers=xml).status == 200
    big = b"<r>" + b" " * REQUEST_MAX_BYTES + b"</r>"
    assert client.post("/api/budget", body=big, headers=xml).status == 413
    flood = _budget_doc(elements=4097)
    answer = client.post("/api/budget", body=flood, headers=xml)
    assert answer.status == 400
    assert b"4096 elements" in answer.body


def test_deeply_nested_json_in_a_body_is_a_400_not_a_500():
    from vcdext import Request, Service, hookimpl
    from vcdext.testing import TestClient, make_runtime

    service = Service("nested", namespace="io.test.nested")

    @service.operation("POST", "/api/nested", consumes=["application/json"])
    def take(request: Request) -> str:
        request.json()
        return "<ok/>"

    class Plugin:
        @hookimpl
        def vcdext_register(self, registrar):
            registrar.add_service(service)

    client = TestClient(make_runtime(nested=Plugin()))
    answer = client.post(
        "/api/nested", body=b"[" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert answer.status == 400
