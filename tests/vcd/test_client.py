"""The vCD client: versions, login (cloudapi and /api/sessions), re-login, retries, errors,
TLS settings, link-following, and secrets that never show."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import requests

from tests.vcd.fake_vcd import HOST, PASSWORD, FakeVcd
from vcdext.errors import ConfigError
from vcdext.settings import Settings, VcdSettings
from vcdext.vcd.client import VcdClient
from vcdext.vcd.connection import normalize_base_url
from vcdext.vcd.errors import (
    VcdApiError,
    VcdConnectionError,
    VcdError,
    VcdLoginError,
    VcdVersionError,
)

EXTENSION = f"{HOST}/api/admin/extension"


def logins(fake: FakeVcd) -> list[str]:
    return [c.path for c in fake.calls if c.method == "POST" and "session" in c.path]


# -- versions and login --------------------------------------------------------------------------


def test_bearer_login_when_the_server_offers_api_33_or_later(fake, make_client):
    client = make_client()
    client.connect()
    assert (client.api_version, client.login_mode) == ("36.0", "cloudapi")
    versions, login, session = fake.calls[:3]
    assert (versions.method, versions.path) == ("GET", "/api/versions")
    assert (login.method, login.path) == ("POST", "/cloudapi/1.0.0/sessions/provider")
    assert login.headers["Accept"] == "application/json;version=36.0"
    assert login.headers["Authorization"].startswith("Basic ")
    assert (session.method, session.path) == ("GET", "/api/session")
    client.get(EXTENSION)
    last = fake.calls[-1]
    assert last.headers["Authorization"].startswith("Bearer ")
    assert "x-vcloud-authorization" not in last.headers
    assert last.headers["Accept"] == "application/*+xml;version=36.0"
    assert client.session_document.get("user") == "administrator"


def test_tenant_org_logs_in_at_the_tenant_cloudapi_session(fake, make_client):
    fake.user = "ops@acme"
    make_client(username="ops", org="acme").connect()
    assert logins(fake) == ["/cloudapi/1.0.0/sessions"]


def test_xml_login_below_api_33(fake, make_client):
    fake.versions = ["1.5", "5.1", "5.5", "32.0"]
    client = make_client()
    client.connect()
    assert (client.api_version, client.login_mode) == ("32.0", "sessions")
    login = fake.calls[1]
    assert (login.method, login.path) == ("POST", "/api/sessions")
    assert login.headers["Accept"] == "application/*+xml;version=32.0"
    client.get(EXTENSION)
    assert "x-vcloud-authorization" in fake.calls[-1].headers
    assert "Authorization" not in fake.calls[-1].headers


def test_configured_api_version_is_honoured(fake, make_client):
    client = make_client(api_version="31.0")
    client.connect()
    assert client.api_version == "31.0" and client.login_mode == "sessions"
    client.get(EXTENSION)
    assert fake.calls[-1].headers["Accept"] == "application/*+xml;version=31.0"


def test_cloudapi_missing_falls_back_to_api_sessions(fake, make_client):
    fake.cloudapi = False
    client = make_client()
    client.connect()
    assert client.login_mode == "sessions"
    assert logins(fake) == ["/cloudapi/1.0.0/sessions/provider", "/api/sessions"]


def test_server_below_5_1_is_refused_clearly(fake, make_client):
    fake.versions = ["1.0", "1.5"]
    with pytest.raises(
        VcdVersionError, match=r"https://vcd.example.com offers vCloud API 1.0, 1.5"
    ):
        make_client().connect()
    assert logins(fake) == []


def test_wrong_password_is_one_line_naming_url_and_user(fake, make_client, caplog):
    caplog.set_level(logging.DEBUG)
    fake.password = "the-real-one"
    client = make_client()
    with pytest.raises(VcdLoginError) as info:
        client.connect()
    assert str(info.value) == (
        "cannot log in to https://vcd.example.com as administrator@System: 401 Unauthorized"
    )
    for text in (str(info.value), repr(client), caplog.text):
        assert PASSWORD not in text


def test_unreachable_vcd_is_one_line_naming_url_and_user(fake, make_client):
    fake.unreachable = True
    with pytest.raises(VcdLoginError) as info:
        make_client().connect()
    assert str(info.value) == (
        "cannot log in to https://vcd.example.com as administrator@System: Connection refused"
    )
    assert len(fake.calls) == 0  # the adapter refused before the fake saw anything


def test_relogin_once_on_401(fake, client):
    fake.expire_tokens()
    client.get(EXTENSION)
    assert logins(fake) == ["/cloudapi/1.0.0/sessions/provider"] * 2
    fake.fail("GET", "^/api/admin/extension$", 401, times=2)
    with pytest.raises(VcdApiError) as info:
        client.get(EXTENSION)
    assert info.value.status == 401
    assert len(logins(fake)) == 3  # one more login, not a loop


# -- retries ---------------------------------------------------------------------------------


def test_get_is_retried_on_5xx(fake, client):
    fake.fail("GET", "^/api/admin/extension$", 503, times=2)
    client.get(EXTENSION)
    assert [c.path for c in fake.calls[-3:]] == ["/api/admin/extension"] * 3


def test_put_and_delete_are_retried_too(fake, client):
    from tests.vcd.conftest import make_service
    from vcdext.vcd import desired_services, reconcile, unregister_service

    reconcile(client, desired_services([make_service()], exchange="vcdext"))
    fake.fail("PUT", "^/api/admin/extension/service/", 503)
    fake.fail("DELETE", "^/api/admin/extension/service/", 500)
    assert unregister_service(client, "io.example.demo") is not None
    assert [c.method for c in fake.writes[-4:]] == ["PUT", "PUT", "DELETE", "DELETE"]
    assert not fake.services


def test_post_is_not_retried_on_5xx(fake, client):
    from tests.vcd.fake_vcd import recorded
    from vcdext.xml import parse

    fake.fail("POST", "^/api/admin/extension/service$", 503)
    with pytest.raises(VcdApiError) as info:
        client.post(f"{HOST}/api/admin/extension/service", parse(recorded("service.xml")), "x")
    assert info.value.status == 503
    assert len([c for c in fake.calls if c.method == "POST" and c.path.endswith("/service")]) == 1


def test_retries_give_up_with_the_vcd_error(fake, make_client):
    client = make_client(retries=2)
    client.connect()
    fake.fail("GET", "^/api/admin/extension$", 503, times=5)
    with pytest.raises(VcdApiError) as info:
        client.get(EXTENSION)
    error = info.value
    assert (error.status, error.minor_code, error.message) == (
        503,
        "SERVICE_UNAVAILABLE",
        "injected 503",
    )
    assert error.url == EXTENSION and error.method == "GET" and error.request_id
    assert f"(vCD request id {error.request_id})" in str(error)
    assert len([c for c in fake.calls if c.path == "/api/admin/extension"]) == 3


def test_connection_errors_are_retried_then_reported(fake, client):
    fake.unreachable = True
    with pytest.raises(
        VcdConnectionError, match="cannot reach https://vcd.example.com: Connection refused"
    ):
        client.get(EXTENSION)


def test_backoff_doubles(fake, make_client, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("vcdext.vcd.client.time.sleep", slept.append)
    client = make_client(backoff=0.5)
    client.connect()
    fake.fail("GET", "^/api/admin/extension$", 502, times=3)
    client.get(EXTENSION)
    assert slept == [0.5, 1.0, 2.0]


# -- errors and documents --------------------------------------------------------------------


def test_vcd_error_body_becomes_a_typed_exception(fake, client):
    with pytest.raises(VcdApiError) as info:
        client.get(f"{HOST}/api/admin/extension/service/00000000-0000-0000-0000-000000000000")
    error = info.value
    assert (error.status, error.minor_code) == (404, "RESOURCE_NOT_FOUND")
    assert "no service" in error.message
    assert isinstance(error, VcdError)


def test_unreadable_xml_is_an_error_not_a_crash(fake, client, monkeypatch):
    from tests.vcd import fake_http

    monkeypatch.setitem(fake_http._TEMPLATES, "vmwextension.xml", "<not xml")
    with pytest.raises(VcdError, match="unreadable XML"):
        client.get(EXTENSION)


def test_links_are_followed_on_the_configured_host(make_client):
    from tests.vcd.conftest import make_service
    from vcdext.vcd import desired_services, reconcile

    fake = FakeVcd(public_host="https://vcd-public.example.net")
    client = make_client(session=fake.session())
    client.connect()
    assert client.resolve("https://vcd-public.example.net/api/x?y=1") == f"{HOST}/api/x?y=1"
    assert client.resolve("/api/x") == f"{HOST}/api/x"
    result = reconcile(client, desired_services([make_service()], exchange="vcdext"))
    assert result.changed and fake.services
    assert all(c.url.startswith(HOST + "/") for c in fake.calls)
    assert not fake.problems


def test_records_follow_next_page_links(fake, client):
    fake.max_page_size = 2
    for i in range(5):
        fake.add_service(f"io.example.s{i}", f"s{i}")
    rows = list(
        client.records(f"{HOST}/api/query", params={"type": "adminService", "format": "records"})
    )
    assert [r.get("name") for r in rows] == ["s0", "s1", "s2", "s3", "s4"]
    assert [c.query.get("page", "1") for c in fake.calls if c.path == "/api/query"] == [
        "1",
        "2",
        "3",
    ]


def test_logout_on_close(fake, client):
    client.close()
    assert (fake.calls[-1].method, fake.calls[-1].path) == ("DELETE", "/api/session")
    assert not fake.tokens


# -- secrets ---------------------------------------------------------------------------------


def test_no_secret_in_debug_logs(fake, make_client, caplog):
    from tests.vcd.conftest import make_service
    from vcdext.vcd import desired_services, reconcile

    caplog.set_level(logging.DEBUG)
    for versions in (None, ["5.1", "32.0"]):
        fake.versions = versions
        client = make_client()
        client.connect()
        reconcile(client, desired_services([make_service()], exchange="vcdext"))
        client.close()
    assert "vCD request id" in caplog.text
    tokens = [c.headers.get("x-vcloud-authorization") for c in fake.calls]
    tokens += [c.headers.get("Authorization", "")[7:] for c in fake.calls]
    for secret in [PASSWORD, "Basic ", "Bearer ", *[t for t in tokens if t]]:
        assert secret not in caplog.text
    assert PASSWORD not in repr(client) and "password" not in repr(client)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://vcd.example.com",
        "https://vcd.example.com/",
        "https://vcd.example.com/api",
        "https://vcd.example.com/api/",
    ],
)
def test_base_url_accepts_a_trailing_api(url):
    assert normalize_base_url(url) == "https://vcd.example.com"


def test_plain_http_is_allowed_for_the_local_cell():
    assert normalize_base_url("http://127.0.0.1:8080/api") == "http://127.0.0.1:8080"
    with pytest.raises(ValueError, match="must be an http"):
        normalize_base_url("ftp://vcd")
    with pytest.raises(ValueError, match="must not contain a user") as info:
        normalize_base_url("https://admin:pa55@vcd.example.com")
    assert "pa55" not in str(info.value)


def settings(**vcd: object) -> Settings:
    base = {"url": HOST, "username": "administrator", "password": PASSWORD}
    base.update(vcd)  # type: ignore[arg-type]
    return Settings(vcd=VcdSettings(**base), source="vcdext.toml")  # type: ignore[arg-type]


def test_tls_verification_is_on_by_default_and_configurable():
    assert VcdClient.from_settings(settings())._http.verify is True
    assert VcdClient.from_settings(settings(ca_bundle="/etc/ca.pem"))._http.verify == "/etc/ca.pem"
    assert VcdClient.from_settings(settings(verify_tls=False))._http.verify is False


@pytest.mark.parametrize(
    ("vcd", "key"),
    [
        ({"url": ""}, "vcd.url"),
        ({"url": "vcd.example.com"}, "vcd.url"),
        ({"username": ""}, "vcd.username"),
        ({"password": ""}, "vcd.password"),
    ],
)
def test_incomplete_config_names_the_key(vcd, key):
    with pytest.raises(ConfigError) as info:
        VcdClient.from_settings(settings(**vcd))
    assert info.value.key == key and "vcdext.toml" in str(info.value)


def test_password_file_is_read(tmp_path: Path, fake):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\nignored\n")
    client = VcdClient.from_settings(
        settings(password="", password_file=str(secret)), session=fake.session()
    )
    client.connect()
    assert client.connected
    with pytest.raises(ConfigError, match="vcd.password_file"):
        VcdClient.from_settings(settings(password="", password_file=str(tmp_path / "missing")))


def test_real_requests_session_by_default():
    assert isinstance(VcdClient.from_settings(settings())._http, requests.Session)


def test_documents_are_read_with_the_vcloud_readers(client):
    from vcdext.vcloud import media
    from vcdext.vcloud.extension import read_linked, read_service

    assert client.session.value.user == "administrator"
    extension = client.read(client.session.link("down", media.VMW_EXTENSION), read_linked)
    assert extension.link("down", media.EXTENSION_SERVICES)
    # A document that is not what the reader reads is the client's error, naming the URL.
    with pytest.raises(
        VcdError,
        match=r"/api/admin/extension: vCD sent a document vcdext "
        r"cannot read \(Expected a vmext:Service",
    ):
        client.read(f"{HOST}/api/admin/extension", read_service)
