"""The hardened XML parser: no entities, no DTDs, no network, bounded depth."""

import pytest

from vcdext import BadRequest
from vcdext.xml import error_element, parse, tostring

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


def test_error_element_validates(assert_valid_vcd_xml):
    assert_valid_vcd_xml(tostring(error_element(404, "RESOURCE_NOT_FOUND", "gone <&>")))
