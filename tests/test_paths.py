"""Path templates and the vCD API filter patterns derived from them."""

import re

import pytest

from vcdext.paths import parse_template

DECLARED = [
    "/api/hello",
    "/api/hello/echo",
    "/api/org/{org_id}/backups/{backup_id}",
    "/api/vApp/vapp-{id}/action/backup",
]


@pytest.mark.parametrize(
    ("template", "path", "params"),
    [
        ("/api/hello", "/api/hello", {}),
        ("/api/org/{org_id}/backups", "/api/org/42/backups", {"org_id": "42"}),
        ("/api/a/{x}/b/{y}", "/api/a/1/b/two", {"x": "1", "y": "two"}),
        ("/api/vApp/vapp-{id}", "/api/vApp/vapp-9f1c", {"id": "9f1c"}),
        ("/cell/bundles/{namespace}", "/cell/bundles/io.x", {"namespace": "io.x"}),
    ],
)
def test_template_matches_its_paths_with_params(template, path, params):
    assert parse_template(template).match(path) == params


@pytest.mark.parametrize(
    ("template", "path"),
    [
        ("/api/hello", "/api/hello/"),
        ("/api/hello", "/api/helloX"),
        ("/api/org/{org_id}/backups", "/api/org//backups"),
        ("/api/org/{org_id}/backups", "/api/org/a/b/backups"),
        ("/api/a.b", "/api/aXb"),
        ("/api/vApp/vapp-{id}", "/api/vApp/vm-9f1c"),
        ("/api/vApp/vapp-{id}", "/api/vApp/vapp-"),
    ],
)
def test_template_does_not_match_other_paths(template, path):
    assert parse_template(template).match(path) is None


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("/api/x/{id", "braces"),
        ("/api/x/{id}suffix", "end its path segment"),
        ("/api/x/{a}{b}", "end its path segment"),
        ("x/{id}", "must start with /"),
        ("/api/x/{id}/{id}", "appears twice"),
        ("/api/x//y", "empty segment"),
        ("/api/x y", "not allowed"),
    ],
)
def test_invalid_templates_say_why(template, reason):
    with pytest.raises(ValueError, match=reason):
        parse_template(template)


def test_url_pattern_escapes_literals_and_turns_params_into_one_segment():
    assert parse_template("/api/org/{org_id}/backups").url_pattern == "/api/org/[^/]+/backups"
    assert parse_template("/api/v1.0/x+y").url_pattern == r"/api/v1\.0/x\+y"
    assert parse_template("/api/vApp/vapp-{id}").url_pattern == r"/api/vApp/vapp\-[^/]+"


def test_an_operation_path_must_start_with_api():
    from vcdext.operations import make_operation

    with pytest.raises(ValueError, match="must start with /api/"):
        make_operation("GET", "/hello", handler=lambda request: "")


CANDIDATES = [
    "/api/hello",
    "/api/hello/",
    "/api/helloX",
    "/x/api/hello",
    "/api/hello/echo",
    "/api/hello/echo/more",
    "/api/org/o-1/backups/b-2",
    "/api/org/o-1/backups/b-2x",
    "/api/org//backups/b",
    "/api/org/o/x/backups/b",
    "/api/org/o-1/backups/",
    "/apx/hello",
    "/api/vApp/vapp-1/action/backup",
    "/api/vApp/vm-1/action/backup",
    "/api/vApp/vapp-/action/backup",
    "/api/vApp/xvapp-1/action/backup",
]


@pytest.mark.parametrize("template", DECLARED)
def test_derived_pattern_matches_exactly_what_the_template_matches(template):
    """vCD's UrlPattern is a java.util.regex; with Java's matches() (whole URI) it must
    accept the declared paths and nothing else. Python's fullmatch has the same semantics
    for the subset we generate (literals, backslash escapes and [^/]+)."""
    parsed = parse_template(template)
    pattern = re.compile(parsed.url_pattern)
    for path in CANDIDATES:
        assert bool(pattern.fullmatch(path)) == (parsed.match(path) is not None), path
    concrete = template.replace("{org_id}", "o-1").replace("{backup_id}", "b-2")
    concrete = concrete.replace("{id}", "1")
    assert pattern.fullmatch(concrete)
    # Tolerant reading: if vCD used find() instead, the declared path still matches
    # (longer paths then reach the service, which answers them with 404).
    assert pattern.search(concrete)


def test_shape_identifies_colliding_templates():
    assert parse_template("/api/x/{a}").shape == parse_template("/api/x/{b}").shape
    assert parse_template("/api/x/{a}").shape != parse_template("/api/x/new").shape
