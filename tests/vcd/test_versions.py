"""API version negotiation (the version list itself: tests/vcloud/test_versions.py)."""

from __future__ import annotations

import pytest

from vcdext.vcd.errors import VcdVersionError
from vcdext.vcd.versions import negotiate


def test_highest_common_version_wins():
    assert negotiate(["1.5", "5.1", "5.5", "31.0", "36.0", "40.0"]) == "36.0"
    assert negotiate(["5.1", "5.5"]) == "5.5"


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
