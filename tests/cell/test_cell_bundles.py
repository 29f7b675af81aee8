"""Localization bundles: upload parameters, the upload itself, merging, the properties format."""

from __future__ import annotations

import io
import zipfile

import pytest
from lxml import etree

from tests.cell.support import NS, Client, X, link_href, service_xml
from vcdext.vcloud.bundle import MAX_FILES
from vcdext_cell import Cell

PARAMS = "application/vnd.vmware.admin.bundleUploadParams+xml"


def bundle(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content.encode("utf-8"))
    return buffer.getvalue()


@pytest.fixture
def service(admin: Client) -> etree._Element:
    return admin.xml(
        "POST", "/api/admin/extension/service", service_xml("hello", "io.vcdext.hello"), status=201
    )


def upload(
    admin: Client, service: etree._Element, data: bytes, namespace: str = "io.vcdext.hello"
) -> str:
    params = X("BundleUploadParams", fileSize=str(len(data)), serviceNamespace=namespace)
    socket = admin.xml("POST", link_href(service, "bundle:upload", PARAMS), params)
    assert socket.tag == "{http://www.vmware.com/vcloud/extension/v1.5}BundleUploadSocket"
    return socket.get("uploadLocation")


def test_upload_then_merge(admin: Client, service: etree._Element, cell: Cell) -> None:
    first = bundle({"en_US": "hello=Hello\nbye=Bye\n", "fr_FR": "hello=Bonjour\n"})
    location = upload(admin, service, first)
    assert location.startswith(f"{cell.url}/transfer/")
    assert admin.put(location, first).status_code == 200
    second = bundle(
        {"bundle/en_US": "# greetings\nbye=Goodbye\nnew=New key\n", "de_DE": "hello=Hallo"}
    )
    assert admin.put(upload(admin, service, second), second).status_code == 200
    assert cell.bundles("io.vcdext.hello") == {
        "en_US": {"hello": "Hello", "bye": "Goodbye", "new": "New key"},
        "fr_FR": {"hello": "Bonjour"},
        "de_DE": {"hello": "Hallo"},
    }
    assert admin.get("/cell/bundles/io.vcdext.hello").json()["fr_FR"] == {"hello": "Bonjour"}


def test_upload_location_is_single_use_and_needs_no_session(
    client, admin: Client, service, cell: Cell
) -> None:
    data = bundle({"en_US": "a=b"})
    location = upload(admin, service, data)
    anonymous = client()
    assert anonymous.put(location, data).status_code == 200
    assert anonymous.put(location, data).status_code == 404
    assert cell.bundles("io.vcdext.hello") == {"en_US": {"a": "b"}}


def test_upload_in_content_range_pieces(admin: Client, service, cell: Cell) -> None:
    data = bundle({"en_US": "key=" + "x" * 500})
    location = upload(admin, service, data)
    half = len(data) // 2
    r = admin.put(
        location, data[:half], headers={"Content-Range": f"bytes 0-{half - 1}/{len(data)}"}
    )
    assert r.status_code == 200
    assert cell.bundles("io.vcdext.hello") == {}
    r = admin.put(
        location,
        data[half:],
        headers={"Content-Range": f"bytes {half}-{len(data) - 1}/{len(data)}"},
    )
    assert r.status_code == 200
    assert cell.bundles("io.vcdext.hello") == {"en_US": {"key": "x" * 500}}


def test_bad_uploads_are_400(admin: Client, service) -> None:
    assert admin.put(upload(admin, service, b"not a zip"), b"not a zip").status_code == 400
    badly_named = bundle({"messages.properties": "a=b"})
    assert admin.put(upload(admin, service, badly_named), badly_named).status_code == 400
    small = bundle({"en_US": "a=b"})
    location = upload(admin, service, small)
    assert admin.put(location, small + b"extra bytes").status_code == 400


def test_a_bundle_with_too_many_files_is_400_and_merges_nothing(
    admin: Client, service, cell: Cell
) -> None:
    locales = [f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnop"]
    too_many = bundle({code: "a=b" for code in locales[: MAX_FILES + 1]})
    r = admin.put(upload(admin, service, too_many), too_many)
    assert r.status_code == 400
    assert f"at most {MAX_FILES}" in etree.fromstring(r.content).get("message")
    assert cell.bundles("io.vcdext.hello") == {}
    just_enough = bundle({code: "a=b" for code in locales[:MAX_FILES]})
    assert admin.put(upload(admin, service, just_enough), just_enough).status_code == 200
    assert len(cell.bundles("io.vcdext.hello")) == MAX_FILES


def test_upload_params_are_checked(admin: Client, service) -> None:
    href = link_href(service, "bundle:upload", PARAMS)
    assert admin.post(href, X("BundleUploadParams")).status_code == 400
    wrong = X("BundleUploadParams", fileSize="10", serviceNamespace="io.other")
    r = admin.post(href, wrong)
    assert r.status_code == 400
    assert "serviceNamespace" in etree.fromstring(r.content).get("message")


def test_bundles_go_with_their_service(admin: Client, service, cell: Cell) -> None:
    data = bundle({"en_US": "a=b"})
    admin.put(upload(admin, service, data), data)
    admin.delete(service.get("href"))
    assert cell.bundles("io.vcdext.hello") == {}
    assert admin.get("/cell/bundles/io.vcdext.hello").status_code == 404


def test_transfer_paths_accept_only_put(admin: Client) -> None:
    r = admin.get("/transfer/00000000-0000-0000-0000-000000000000/file")
    assert r.status_code == 405


def test_namespace_elements(admin: Client, service) -> None:
    # The service advertises the upload link with its media type.
    assert any(x.get("rel") == "bundle:upload" for x in service.findall("v:Link", NS))
