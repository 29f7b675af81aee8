"""API version negotiation."""

from __future__ import annotations

import pytest

from tests.vcd.fake_vcd import recorded
from vcdext.vcd.errors import VcdVersionError
from vcdext.vcd.versions import (
    SUPPORTED_VERSIONS,
    negotiate,
    parse_supported_versions,
    uses_cloudapi_login,
    version_key,
)
from vcdext.xml import parse


def test_recorded_versions_are_read_and_odd_ones_skipped():
    found = parse_supported_versions(parse(recorded("versions.xml")))
    assert [v.version for v in found][:3] == ["1.5", "5.1", "5.5"]
    assert "37.0.0-alpha" not in [v.version for v in found]
    assert found[0].deprecated and not found[1].deprecated
    assert found[1].login_url == "https://vcd.example.com/api/sessions"


def test_highest_common_version_wins():
    assert negotiate(["1.5", "5.1", "5.5", "31.0", "36.0", "40.0"]) == "36.0"
    assert negotiate(["5.1", "5.5"]) == "5.5"


def test_versions_compare_numerically():
    assert version_key("5.10") > version_key("5.9")
    assert version_key("36") == version_key("36.0") == version_key("36.0.0")
    with pytest.raises(ValueError, match="not a vCloud API version"):
        version_key("36.0-beta")


def test_configured_version_is_used_when_offered():
    assert negotiate(["5.1", "31.0", "36.0"], wanted="31.0") == "31.0"
    assert negotiate(["5.1", "36.0"], wanted="36") == "36.0"


def test_configured_version_not_offered_is_refused_clearly():
    with pytest.raises(
        VcdVersionError, match=r"does not offer vCloud API 32\.0.*offers 5\.1, 36\.0"
    ):
        negotiate(["5.1", "36.0"], wanted="32.0", url="https://vcd.example.com")


def test_configured_version_outside_our_list_is_allowed_with_a_warning(caplog):
    assert negotiate(["36.0", "39.0"], wanted="39.0") == "39.0"
    assert "not among those vcdext is tested with" in caplog.text


def test_server_older_than_5_1_is_refused_clearly():
    with pytest.raises(VcdVersionError) as info:
        negotiate(["1.0", "1.5"], url="https://old.example.com")
    message = str(info.value)
    assert "https://old.example.com offers vCloud API 1.0, 1.5" in message
    assert "needs 5.1 or later" in message


def test_no_common_version_names_both_sides():
    with pytest.raises(VcdVersionError, match="no vCloud API version in common.*offers 40.0, 41.0"):
        negotiate(["40.0", "41.0"])


def test_supported_list_is_sorted_and_starts_at_5_1():
    assert SUPPORTED_VERSIONS[0] == "5.1"
    assert list(SUPPORTED_VERSIONS) == sorted(SUPPORTED_VERSIONS, key=version_key)


def test_cloudapi_login_from_33():
    assert not uses_cloudapi_login("32.0")
    assert uses_cloudapi_login("33.0") and uses_cloudapi_login("36.0")
