"""The cell's cloudapi MQTT extension endpoints: who may use them and what they refuse."""

from __future__ import annotations

import json
import re

import requests

from vcdext.vcloud.media import VCLOUD_NS, VMEXT_NS
from vcdext_cell import Cell

ACCEPT = "application/json;version=38.0"


def bearer(cell: Cell, login: str) -> dict[str, str]:
    r = requests.post(
        f"{cell.url}/cloudapi/1.0.0/sessions",
        auth=(login, "vmware"),
        headers={"Accept": ACCEPT},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    token = r.headers["X-VMWARE-VCLOUD-ACCESS-TOKEN"]
    return {"Accept": ACCEPT, "Authorization": f"Bearer {token}"}


def post(cell: Cell, path: str, doc: object, headers: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{cell.url}/cloudapi/1.0.0/{path}",
        data=json.dumps(doc),
        headers={**headers, "Content-Type": "application/json"},
        timeout=10,
    )


EXT = {"name": "hello", "vendor": "acme", "version": "1.0.0", "priority": 50, "enabled": True}


def test_only_system_administrators_manage_extensions(cell: Cell) -> None:
    anonymous = requests.get(
        f"{cell.url}/cloudapi/1.0.0/extensions/api", headers={"Accept": ACCEPT}, timeout=10
    )
    assert anonymous.status_code == 401
    tenant = post(cell, "extensions/api", EXT, bearer(cell, "alice@acme"))
    assert tenant.status_code == 403
    assert cell.extensions.extensions() == []


def test_an_extension_gets_its_topics_filters_and_a_token_shown_once(cell: Cell) -> None:
    admin = bearer(cell, "administrator@System")
    created = post(cell, "extensions/api", EXT, admin)
    assert created.status_code == 201
    doc = created.json()
    assert doc["id"] == "urn:vcloud:extension-api:acme:hello:1.0.0"
    assert doc["mqttTopics"] == {
        "monitor": "topic/extension/acme/hello/1.0.0/ext",
        "respond": "topic/extension/acme/hello/1.0.0/vcd",
    }
    assert post(cell, "extensions/api", EXT, admin).status_code == 400  # the trio is unique
    one = requests.get(f"{cell.url}/cloudapi/1.0.0/extensions/api/{doc['id']}", headers=admin)
    assert "/api/admin/extension/service/" in one.headers["Link"]
    matcher = {"urlPattern": "/api/acme/.*", "urlScope": "EXT_API"}
    system = {"id": doc["id"], "name": "hello"}
    assert post(cell, "apiFilters", {"externalSystem": system, "urlMatcher": matcher}, admin).ok
    wrong = {"externalSystem": system, "urlMatcher": {**matcher, "urlScope": "EXT_UI_TENANT"}}
    assert post(cell, "apiFilters", wrong, admin).status_code == 400
    token = post(
        cell, "tokens", {"name": "t", "type": "EXTENSION", "extensionId": doc["id"]}, admin
    )
    assert token.ok and len(token.json()["token"]) > 20
    listed = requests.get(f"{cell.url}/cloudapi/1.0.0/tokens", headers=admin, timeout=10).json()
    assert [(t["token"], t["owner"]["name"]) for t in listed["values"]] == [
        (None, "acme/hello/1.0.0")
    ]


def test_a_matching_request_without_a_broker_is_vcds_500(cell: Cell) -> None:
    admin = bearer(cell, "administrator@System")
    ext = post(cell, "extensions/api", EXT, admin).json()
    matcher = {"urlPattern": "/api/acme/.*", "urlScope": "EXT_API"}
    post(cell, "apiFilters", {"externalSystem": {"id": ext["id"]}, "urlMatcher": matcher}, admin)
    r = requests.get(f"{cell.url}/api/acme/x", headers=admin, timeout=10)
    assert r.status_code == 500
    assert "Cannot send message to extension" in r.text


def test_filters_are_listed_per_extension(cell: Cell) -> None:
    admin = bearer(cell, "administrator@System")
    ids = [
        post(cell, "extensions/api", {**EXT, "name": name}, admin).json()["id"]
        for name in ("one", "two")
    ]
    for ext_id, pattern in zip(ids, ("/api/one", "/api/two"), strict=True):
        matcher = {"urlPattern": pattern, "urlScope": "EXT_API"}
        post(cell, "apiFilters", {"externalSystem": {"id": ext_id}, "urlMatcher": matcher}, admin)
    listed = requests.get(
        f"{cell.url}/cloudapi/1.0.0/apiFilters",
        params={"filter": f"externalSystem.id=={ids[1]}", "page": "1"},
        headers=admin,
        timeout=10,
    ).json()["values"]
    assert [f["urlMatcher"]["urlPattern"] for f in listed] == ["/api/two"]


def test_an_extension_has_a_legacy_admin_service_for_its_rights_and_links(cell: Cell) -> None:
    admin = bearer(cell, "administrator@System")
    ext = post(cell, "extensions/api", EXT, admin).json()
    url = f"{cell.url}/cloudapi/1.0.0/extensions/api/{ext['id']}"
    got = requests.get(url, headers=admin, timeout=10)
    link = got.headers["Link"]
    (uuid,) = set(re.findall(r"/extension/service/([^/>]+)", link))
    assert f'/api/admin/extension/service/{uuid}/rights>;rel="add"' in link
    assert f"/api/admin/extension/service/{uuid}/links>" in link
    service = cell.state.service(uuid)
    assert (service.namespace, service.name, service.enabled) == ("acme.hello", "hello", True)
    xml = {**admin, "Accept": "application/*+xml;version=38.0"}
    right = requests.post(
        f"{cell.url}/api/admin/extension/service/{uuid}/rights",
        data=f'<Right xmlns="{VCLOUD_NS}" name="Use It"><Description>d</Description></Right>',
        headers={**xml, "Content-Type": "application/vnd.vmware.admin.right+xml"},
        timeout=10,
    )
    assert right.status_code == 201, right.text
    assert [r.name for r in cell.state.rights(uuid)] == ["{acme.hello}:Use It"]
    # disabling the extension disables its admin service (its links are no longer shown)
    put = requests.put(
        f"{cell.url}/cloudapi/1.0.0/extensions/api/{ext['id']}",
        data=json.dumps({**EXT, "enabled": False}),
        headers={**admin, "Content-Type": "application/json"},
        timeout=10,
    )
    assert put.status_code == 200 and cell.state.service(uuid).enabled is False
    # another version of the extension gets an admin service of its own
    two = post(cell, "extensions/api", {**EXT, "version": "2.0.0"}, admin).json()
    (other,) = [e for e in cell.extensions.extensions() if e.id == two["id"]]
    assert cell.state.service(other.uuid).namespace == "acme.hello.2.0.0"


def test_a_legacy_filter_of_the_admin_service_routes_to_the_extension(cell: Cell) -> None:
    admin = bearer(cell, "administrator@System")
    post(cell, "extensions/api", EXT, admin)
    (ext,) = cell.extensions.extensions()
    r = requests.post(
        f"{cell.url}/api/admin/extension/service/{ext.uuid}/apifilters",
        data=f'<vmext:ApiFilter xmlns:vmext="{VMEXT_NS}"><vmext:UrlPattern>/api/acme/.*'
        "</vmext:UrlPattern></vmext:ApiFilter>",
        headers={
            **admin,
            "Accept": "application/*+xml;version=38.0",
            "Content-Type": "application/vnd.vmware.admin.apiFilter+xml",
        },
        timeout=10,
    )
    assert r.status_code in (200, 201), r.text
    answer = requests.get(f"{cell.url}/api/acme/x", headers=admin, timeout=10)
    assert answer.status_code == 500  # over MQTT (the cell has no broker), not over AMQP
    assert f"Cannot send message to extension {ext.id}" in answer.text


def test_a_token_is_revoked_and_an_extension_deleted_with_its_filters_and_tokens(
    cell: Cell,
) -> None:
    admin = bearer(cell, "administrator@System")
    ext = post(cell, "extensions/api", EXT, admin).json()
    matcher = {"urlPattern": "/api/acme/.*", "urlScope": "EXT_API"}
    post(cell, "apiFilters", {"externalSystem": {"id": ext["id"]}, "urlMatcher": matcher}, admin)
    body = {"name": "t", "type": "EXTENSION", "extensionId": ext["id"]}
    first, second = (post(cell, "tokens", body, admin).json()["id"] for _ in range(2))
    url = f"{cell.url}/cloudapi/1.0.0"
    assert requests.delete(f"{url}/tokens/{first}", headers=admin, timeout=10).status_code == 204
    assert requests.delete(f"{url}/tokens/{first}", headers=admin, timeout=10).status_code == 404
    assert [t.id for t in cell.extensions.tokens()] == [second]
    tenant = bearer(cell, "alice@acme")
    assert requests.delete(f"{url}/tokens/{second}", headers=tenant, timeout=10).status_code == 403
    gone = requests.delete(f"{url}/extensions/api/{ext['id']}", headers=admin, timeout=10)
    assert gone.status_code == 204
    assert cell.extensions.extensions() == []
    assert cell.extensions.filters() == [] and cell.extensions.tokens() == []
