"""Desired state from a plugin's declarations; the vcdext marker in descriptions."""

from __future__ import annotations

from tests.vcd.conftest import make_service
from vcdext.vcd.model import compose_description, desired_service, entry_point, split_description


def test_desired_service_carries_every_declaration():
    want = desired_service(
        make_service(routing_key="demo.key", priority=70),
        exchange="ext",
        messages={"en_US": {"k": "v"}},
    )
    assert (want.name, want.namespace, want.routing_key, want.exchange) == (
        "demo",
        "io.example.demo",
        "demo.key",
        "ext",
    )
    assert (want.vendor, want.priority, want.enabled, want.authorization_enabled) == (
        "Example",
        70,
        True,
        False,
    )
    assert want.filters == ("/api/demo", "/api/demo/[^/]+")
    assert want.links[0].href == "{baseUri}org/{resourceId}/demo"
    right = want.rights[0]
    assert (right.name, right.short_name, right.category, right.bundle_key) == (
        "{io.example.demo}:View Demo",
        "View Demo",
        "Demo",
        "RIGHT_VIEW_DEMO",
    )
    (definition,) = want.api_definitions
    assert (
        definition.name,
        definition.entry_point,
        definition.namespace,
        definition.api_vendor,
    ) == (
        "demo",
        "{baseUri}demo",
        "io.example.demo",
        "Example",
    )
    assert want.bundle is not None and want.bundle.locales == ("en_US",)


def test_right_without_category_gets_the_service_name():
    want = desired_service(make_service(rights=(("Use", "", "", ""),)), exchange="x")
    assert want.rights[0].category == "demo"


def test_entry_point_is_the_first_path_without_parameters():
    assert entry_point(make_service(paths=("/api/org/{org}/x", "/api/x"))) == "{baseUri}x"
    assert entry_point(make_service(paths=("/api/org/{org}/x",))) == "{baseUri}org/"
    assert entry_point(make_service(paths=())) is None
    assert desired_service(make_service(paths=()), exchange="x").api_definitions == ()


def test_description_marker_round_trip():
    assert compose_description("Demo") == "Demo\n[managed by vcdext]"
    assert compose_description("", "0123456789abcdef") == (
        "[managed by vcdext; bundle sha256:0123456789abcdef]"
    )
    assert split_description("Demo\n[managed by vcdext; bundle sha256:0123456789abcdef]") == (
        "Demo",
        True,
        "0123456789abcdef",
    )
    assert split_description("Someone else's service") == ("Someone else's service", False, None)
    assert split_description("[managed by vcdext]") == ("", True, None)
