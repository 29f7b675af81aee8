"""The API version list, comparing versions, the Accept header and ``SupportedVersions``."""

from __future__ import annotations

import pytest

from tests.vcd.fake_vcd import recorded
from vcdext.vcloud.versions import (
    SUPPORTED_VERSIONS,
    ServerVersion,
    accept_versions,
    at_least,
    read_supported_versions,
    supported,
    uses_cloudapi_login,
    version_key,
    write_supported_versions,
)
from vcdext.xml import parse, tostring


def test_recorded_versions_are_read_and_odd_ones_skipped():
    found = read_supported_versions(parse(recorded("versions.xml")))
    assert [v.version for v in found][:3] == ["1.5", "5.1", "5.5"]
    assert "37.0.0-alpha" not in [v.version for v in found]
    assert found[0].deprecated and not found[1].deprecated
    assert found[1].login_url == "https://vcd.example.com/api/sessions"


def test_versions_compare_numerically():
    assert version_key("5.10") > version_key("5.9")
    assert version_key("36") == version_key("36.0") == version_key("36.0.0")
    with pytest.raises(ValueError, match="not a vCloud API version"):
        version_key("36.0-beta")
    # As floats 5.10 == 5.1 and 5.9 > 5.10; as versions neither holds.
    assert at_least("5.10", "5.9") and not at_least("5.1", "5.10")
    assert not at_least("", "5.1") and not at_least("banana", "5.1")


def test_supported_list_is_sorted_and_starts_at_5_1():
    assert SUPPORTED_VERSIONS[0] == "5.1"
    assert list(SUPPORTED_VERSIONS) == sorted(SUPPORTED_VERSIONS, key=version_key)


def test_supported_finds_the_listed_spelling():
    assert supported("36") == "36.0" and supported("36.0.0") == "36.0"
    assert supported("39.0") is None and supported("x") is None


def test_cloudapi_login_from_33():
    assert not uses_cloudapi_login("32.0")
    assert uses_cloudapi_login("33.0") and uses_cloudapi_login("36.0")
    assert not uses_cloudapi_login("")


def test_accept_versions_reads_every_range_and_ignores_junk():
    accept = (
        'application/*+xml;version=36.0, application/json; version="5.5";q=1, text/x;version=<x>'
    )
    assert accept_versions(accept) == ["36.0", "5.5"]
    assert accept_versions("application/*+xml") == []


def test_supported_versions_round_trip_and_validate(assert_valid_vcd_xml):
    written = [ServerVersion("5.1", "https://h/api/sessions", True), ServerVersion("36.0", "u")]
    doc = write_supported_versions(written)
    assert_valid_vcd_xml(tostring(doc))
    assert read_supported_versions(parse(tostring(doc))) == written
