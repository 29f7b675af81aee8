"""Versions, login (Basic and cloudapi), sessions, Accept negotiation, authentication."""

from __future__ import annotations

import logging

import pytest
import requests
from lxml import etree

from tests.cell.support import NS, Client, link_href
from vcdext.vcloud.versions import SUPPORTED_VERSIONS
from vcdext_cell import Cell

VERSIONS_NS = {"ver": "http://www.vmware.com/vcloud/versions"}


def test_versions_are_offered_without_login_or_accept(client) -> None:
    r = client(accept="").get("/api/versions")
    assert r.status_code == 200
    doc = etree.fromstring(r.content)
    versions = [v.text for v in doc.findall("ver:VersionInfo/ver:Version", VERSIONS_NS)]
    assert versions == list(SUPPORTED_VERSIONS)  # the one list vcdext speaks
    login_urls = {u.text for u in doc.findall("ver:VersionInfo/ver:LoginUrl", VERSIONS_NS)}
    assert login_urls == {f"{client().base}/api/sessions"}


def test_sysadmin_login_returns_token_and_session_with_extension_link(client) -> None:
    c = client()
    r = c.post("/api/sessions", auth=("administrator@System", "vmware"))
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.vmware.vcloud.session+xml;version=36.0"
    assert r.headers["x-vcloud-authorization"]
    assert r.headers["X-VMWARE-VCLOUD-ACCESS-TOKEN"]  # API 36.0 >= 33.0
    session = etree.fromstring(r.content)
    assert session.get("user") == "administrator"
    assert session.get("org") == "System"
    assert session.get("userId").startswith("urn:vcloud:user:")
    assert link_href(session, "down", "application/vnd.vmware.admin.vmwExtension+xml").endswith(
        "/api/admin/extension"
    )
    assert link_href(session, "down", "application/vnd.vmware.vcloud.orgList+xml").endswith(
        "/api/org/"
    )
    assert link_href(session, "down", "application/vnd.vmware.vcloud.query.queryList+xml")


def test_org_user_session_links_to_own_org_not_to_extensions(client, cell: Cell) -> None:
    r = client().post("/api/sessions", auth=("alice@acme", "vmware"))
    session = etree.fromstring(r.content)
    assert link_href(session, "down", "application/vnd.vmware.vcloud.org+xml").endswith(
        f"/api/org/{cell.org('acme').id}"
    )
    rels = {(x.get("rel"), x.get("type")) for x in session.findall("v:Link", NS)}
    assert ("down", "application/vnd.vmware.admin.vmwExtension+xml") not in rels


def test_old_api_version_login_gets_no_bearer_token(client) -> None:
    r = client(accept="application/*+xml;version=5.1").post(
        "/api/sessions", auth=("alice@acme", "vmware")
    )
    assert r.status_code == 200
    assert "X-VMWARE-VCLOUD-ACCESS-TOKEN" not in r.headers
    assert r.headers["Content-Type"].endswith(";version=5.1")


def test_login_is_case_insensitive_for_user_and_org(client) -> None:
    assert client().post("/api/sessions", auth=("Alice@ACME", "vmware")).status_code == 200


@pytest.mark.parametrize(
    "login",
    [
        ("alice@acme", "wrong"),
        ("nobody@acme", "vmware"),
        ("alice@nowhere", "vmware"),
        ("alice", "vmware"),
    ],
)
def test_bad_credentials_are_401(client, login: tuple[str, str]) -> None:
    r = client().post("/api/sessions", auth=login)
    assert r.status_code == 401
    error = etree.fromstring(r.content)
    assert error.get("minorErrorCode") == "UNAUTHORIZED"
    assert "x-vcloud-authorization" not in r.headers


def test_missing_credentials_are_403(client) -> None:
    r = client().post("/api/sessions")
    assert r.status_code == 403
    assert etree.fromstring(r.content).get("majorErrorCode") == "403"


def test_accept_without_version_is_406(client) -> None:
    r = client(accept="application/*+xml").post("/api/sessions", auth=("alice@acme", "vmware"))
    assert r.status_code == 406
    assert etree.fromstring(r.content).get("minorErrorCode") == "NOT_ACCEPTABLE"


def test_unsupported_version_is_406(admin: Client) -> None:
    r = admin.get("/api/org", headers={"Accept": "application/*+xml;version=1.0"})
    assert r.status_code == 406


def test_exact_media_type_in_accept_is_fine(admin: Client) -> None:
    r = admin.get(
        "/api/org", headers={"Accept": "application/vnd.vmware.vcloud.orgList+xml;version=5.5"}
    )
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/vnd.vmware.vcloud.orgList+xml;version=5.5"


def test_requests_without_a_session_are_401(client) -> None:
    for path in ("/api/org", "/api/session", "/api/admin/extension", "/api/anything"):
        r = client().get(path)
        assert r.status_code == 401, path
        assert etree.fromstring(r.content).get("minorErrorCode") == "UNAUTHORIZED"


def test_unknown_token_is_401(client) -> None:
    r = client().get("/api/org", headers={"x-vcloud-authorization": "not-a-token"})
    assert r.status_code == 401


def test_get_session_rehydrates_and_delete_logs_out(alice: Client) -> None:
    r = alice.get("/api/session")
    assert r.status_code == 200
    assert r.headers["x-vcloud-authorization"] == alice.token
    assert etree.fromstring(r.content).get("user") == "alice"
    assert alice.delete("/api/session").status_code == 204
    assert alice.get("/api/org").status_code == 401


def test_cloudapi_provider_login_gives_a_bearer_token(client) -> None:
    c = client()
    r = c.post(
        "/cloudapi/1.0.0/sessions/provider",
        auth=("administrator@System", "vmware"),
        headers={"Accept": "application/json;version=36.0"},
    )
    assert r.status_code == 200
    assert r.json()["org"]["name"] == "System"
    token = r.headers["X-VMWARE-VCLOUD-ACCESS-TOKEN"]
    assert r.headers["X-VMWARE-VCLOUD-TOKEN-TYPE"] == "Bearer"
    r = c.get("/api/session", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert etree.fromstring(r.content).get("user") == "administrator"


def test_cloudapi_provider_login_refuses_tenants_and_tenant_login_works(client) -> None:
    headers = {"Accept": "application/json;version=36.0"}
    r = client().post(
        "/cloudapi/1.0.0/sessions/provider", auth=("alice@acme", "vmware"), headers=headers
    )
    assert r.status_code == 401
    assert r.json()["minorErrorCode"] == "UNAUTHORIZED"
    r = client().post("/cloudapi/1.0.0/sessions", auth=("alice@acme", "vmware"), headers=headers)
    assert r.status_code == 200
    assert r.json()["user"]["id"].startswith("urn:vcloud:user:")


def test_cloudapi_login_needs_a_version(client) -> None:
    r = client().post(
        "/cloudapi/1.0.0/sessions",
        auth=("alice@acme", "vmware"),
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 406
    assert r.json()["minorErrorCode"] == "NOT_ACCEPTABLE"


def test_unknown_paths_outside_api_are_404(client) -> None:
    r = client().get("/nowhere")
    assert r.status_code == 404
    assert etree.fromstring(r.content).get("minorErrorCode") == "RESOURCE_NOT_FOUND"


def test_wrong_method_is_405_with_allow(admin: Client) -> None:
    r = admin.request("PATCH", "/api/org")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"


def test_hrefs_follow_the_host_the_client_used(cell: Cell) -> None:
    port = cell.url.rsplit(":", 1)[1]
    r = requests.get(f"http://localhost:{port}/api/versions", timeout=10)
    assert f"http://localhost:{port}/api/sessions" in r.text


def test_passwords_and_tokens_never_reach_the_log(client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = client("alice@acme", "vmware")
    c.get("/api/org")
    client().post("/api/sessions", auth=("alice@acme", "wrong-secret"))
    text = caplog.text
    assert c.token not in text
    assert "vmware" not in text
    assert "wrong-secret" not in text


def test_errors_found_by_the_http_layer_are_vcd_errors_too(admin: Client) -> None:
    r = admin.request("OPTIONS", "/api/org")
    assert r.status_code == 501
    assert etree.fromstring(r.content).get("minorErrorCode") == "NOT_IMPLEMENTED"


def test_oversized_api_bodies_are_refused(admin: Client) -> None:
    r = admin.post("/api/admin/extension/service", b"x" * (512 * 1024 + 1))
    assert r.status_code == 413
    assert etree.fromstring(r.content).get("majorErrorCode") == "413"
