"""The hello plugin, tested the way a service author tests a plugin: in process."""

import vcdext_hello.plugin as hello

USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
ACME = "9aee51e8-654e-49a8-8dab-3fdbf00a21ae"
GLOBEX = "1c8b7c5e-3f0e-4d55-9e0b-2c7f4a1d0b11"
SYSTEM = "urn:vcloud:org:a93c9db9-7471-3192-8d09-a8f7eeda85f9"
RIGHT = "{io.vcdext.hello}:View Org Greeting"


def test_greets_the_caller_by_user_urn(vcdext_client_for):
    client = vcdext_client_for(hello, user=USER)
    response = client.get("/api/hello")
    assert response.status == 200
    assert response.content_type == hello.GREETING_TYPE
    greeting = response.xml()
    assert greeting.tag == f"{{{hello.XMLNS}}}Greeting"
    assert greeting.get("user") == USER
    assert USER in greeting.text


def test_greets_in_json_when_the_client_asks_for_json(vcdext_client_for):
    client = vcdext_client_for(hello, user=USER)
    response = client.get("/api/hello", headers={"Accept": "application/*+json;version=36.0"})
    assert response.status == 200
    assert response.content_type == hello.GREETING_JSON
    assert response.json() == {"text": f"Hello, {USER}!", "user": USER}


def test_a_client_that_accepts_neither_gets_406(vcdext_client_for):
    response = vcdext_client_for(hello).get("/api/hello", headers={"Accept": "text/html"})
    assert response.status == 406
    assert response.xml().get("minorErrorCode") == "NOT_ACCEPTABLE"


def test_echo_returns_body_and_content_type(vcdext_client_for):
    client = vcdext_client_for(hello)
    body = b"\x00binary\xffdata"
    response = client.post(
        "/api/hello/echo", body=body, headers={"Content-Type": "application/x-thing; v=1"}
    )
    assert (response.status, response.body) == (200, body)
    assert response.content_type == "application/x-thing; v=1"


def test_org_greeting_needs_the_right(vcdext_client_for):
    client = vcdext_client_for(hello, org=f"urn:vcloud:org:{ACME}")
    assert client.get(f"/api/org/{ACME}/hello").status == 403
    response = client.get(f"/api/org/{ACME}/hello", rights=[RIGHT])
    assert response.status == 200
    assert response.xml().get("org") == ACME


def test_org_greeting_is_only_for_the_callers_own_org(vcdext_client_for):
    alice_of_acme = vcdext_client_for(hello, org=f"urn:vcloud:org:{ACME}", rights=[RIGHT])
    response = alice_of_acme.get(f"/api/org/{GLOBEX}/hello")
    assert response.status == 403
    assert response.xml().get("minorErrorCode") == "ACCESS_TO_RESOURCE_IS_FORBIDDEN"


def test_a_system_administrator_reads_any_org_greeting(vcdext_client_for):
    admin = vcdext_client_for(hello, org=SYSTEM, rights=[RIGHT])
    assert admin.get(f"/api/org/{GLOBEX}/hello").status == 200


def test_declares_its_service_link_and_right(vcdext_client_for):
    services = vcdext_client_for(hello).runtime.registry.services.values()
    (service,) = services
    assert service.namespace == "io.vcdext.hello"
    assert [r.full_name for r in service.rights] == [RIGHT]
    assert hello.VIEW_ORG_GREETING == RIGHT
    assert service.links[0].href == "{baseUri}org/{resourceId}/hello"
    assert [op.name for op in service.operations] == ["hello", "echo", "org_hello"]
