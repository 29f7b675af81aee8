"""Accept negotiation as vCD clients write the header."""

import pytest

from vcdext.vcloud.accept import negotiate, parse_accept, preferred_family

XML = "application/vnd.example.note+xml"
JSON = "application/vnd.example.note+json"


@pytest.mark.parametrize(
    ("accept", "offered", "chosen"),
    [
        ("application/*+xml;version=5.1", [XML, JSON], XML),
        ("application/*+json;version=36.0", [XML, JSON], JSON),
        ("application/*+xml;version=5.1", ["application/xml"], "application/xml"),
        ("application/*+json;version=36.0", ["application/json"], "application/json"),
        ("application/*+xml", [JSON], None),
        ("text/html", [XML], None),
        ("text/html", ["*/*"], "*/*"),
        ("application/*+xml", ["*/*", XML], XML),
        ("*/*;q=0.1, application/*+json", [XML, JSON], JSON),
        (f"{XML};q=0, */*", [XML, JSON], JSON),
        ("", [XML, JSON], XML),
        ("garbage", [XML], XML),
        ("application/*+xml", [], None),
    ],
)
def test_negotiate(accept, offered, chosen):
    assert negotiate(accept, offered) == chosen


def test_ranges_sort_by_quality_then_order():
    ranges = parse_accept("a/b;q=0.5, c/d, e/f;q=0.9")
    assert [f"{r.type}/{r.subtype}" for r in ranges] == ["c/d", "e/f", "a/b"]


@pytest.mark.parametrize(
    ("accept", "family"),
    [
        ("application/*+json;version=36.0", "json"),
        ("application/json;version=36.0", "json"),
        ("application/*+xml;version=36.0", "xml"),
        ("*/*, application/*+json", "json"),
        ("application/*+json;q=0, application/*+xml", "xml"),
        ("text/html", "xml"),
        ("", "xml"),
    ],
)
def test_preferred_family_decides_the_error_form(accept, family):
    assert preferred_family(accept) == family


def test_negotiation_is_remembered_per_header_and_long_headers_are_not_kept():
    from vcdext.vcloud import accept

    offered = ["application/vnd.example+xml", "application/vnd.example+json"]
    short = "application/*+json;version=39.0"
    long = ", ".join(f"application/vnd.other{i}+xml;q=0.1" for i in range(20)) + ", " + short
    assert len(long) > accept._CACHED_HEADER
    before = accept._negotiate.cache_info()
    for _ in range(3):
        assert negotiate(short, offered) == "application/vnd.example+json"
        assert negotiate(long, offered) == "application/vnd.example+json"
    after = accept._negotiate.cache_info()
    assert after.currsize - before.currsize <= 1  # the short one only
    assert after.hits - before.hits >= 2
    assert after.maxsize == 512
