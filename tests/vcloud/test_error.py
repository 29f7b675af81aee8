"""vCD's Error document, XML and JSON, written in one place."""

import json

import pytest

from vcdext.vcloud.error import (
    ERROR_JSON,
    ERROR_XML,
    cloudapi_error_json,
    error_document,
    error_element,
    read_error,
)
from vcdext.vcloud.media import VCLOUD_NS
from vcdext.xml import parse, tostring


def test_error_element_validates(assert_valid_vcd_xml):
    assert_valid_vcd_xml(tostring(error_element(404, "RESOURCE_NOT_FOUND", "gone <&>")))


def test_xml_document_carries_the_codes_and_the_version(assert_valid_vcd_xml):
    ctype, body = error_document(403, "ACCESS_TO_RESOURCE_IS_FORBIDDEN", "no", version="36.0")
    assert ctype == f"{ERROR_XML};version=36.0"
    assert_valid_vcd_xml(body)
    doc = parse(body)
    assert doc.tag == f"{{{VCLOUD_NS}}}Error"
    assert (doc.get("majorErrorCode"), doc.get("minorErrorCode"), doc.get("message")) == (
        "403",
        "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
        "no",
    )


def test_json_document_has_errortypes_attributes_and_the_cloudapi_members():
    ctype, body = error_document(404, "RESOURCE_NOT_FOUND", 'gone "x"', as_json=True)
    assert ctype == ERROR_JSON
    doc = json.loads(body)
    assert doc["majorErrorCode"] == 404
    assert doc["minorErrorCode"] == "RESOURCE_NOT_FOUND"
    assert doc["message"] == 'gone "x"'
    assert doc["vendorSpecificErrorCode"] is None
    # A cloudapi client reads the same members from it.
    assert set(cloudapi_error_json("RESOURCE_NOT_FOUND", "m")) <= set(doc)


@pytest.mark.parametrize("as_json", [False, True])
def test_no_version_means_no_parameter(as_json):
    ctype, _ = error_document(500, "INTERNAL_SERVER_ERROR", "x", as_json=as_json)
    assert ";" not in ctype


def test_vcds_recorded_errors_are_read_and_other_documents_are_not_errors():
    from tests.vcd.fake_vcd import recorded

    assert read_error(parse(recorded("error-duplicate-service.xml"))) == (
        "BAD_REQUEST",
        "[ 7c0e2f4a-9b1d-4c3e-8f5a-6b7c8d9e0f1a ] A service with namespace io.vcdext.hello "
        "already exists.",
    )
    assert read_error(parse(tostring(error_element(404, "NOT_FOUND", "x")))) == ("NOT_FOUND", "x")
    assert read_error(parse(recorded("service.xml"))) is None


@pytest.mark.parametrize("echoed", ["\x00", "\x01\x1f", "\ud800", "\ufffe"])
def test_a_message_echoing_characters_xml_cannot_hold_is_still_an_error(echoed):
    # Messages quote the request (a path, a handler's NotFound of a path parameter): what XML
    # cannot carry is replaced, so the Error is written instead of raising.
    doc = parse(error_document(404, "RESOURCE_NOT_FOUND", f"No resource at /api/{echoed}x")[1])
    assert doc.get("message") == "No resource at /api/" + "\ufffd" * len(echoed) + "x"
