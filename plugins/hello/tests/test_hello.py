"""The hello plugin, tested the way a service author tests a plugin: in process."""

import vcdext_hello.plugin as hello

USER = "urn:vcloud:user:44fbd6f9-7a76-4bca-b273-3536b181ad09"
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


def test_echo_returns_body_and_content_type(vcdext_client_for):
    client = vcdext_client_for(hello)
    body = b"\x00binary\xffdata"
    response = client.post(
        "/api/hello/echo", body=body, headers={"Content-Type": "application/x-thing; v=1"}
    )
    assert (response.status, response.body) == (200, body)
    assert response.content_type == "application/x-thing; v=1"


def test_org_greeting_needs_the_right(vcdext_client_for):
    client = vcdext_client_for(hello)
    assert client.get("/api/org/acme/hello").status == 403
    response = client.get("/api/org/acme/hello", rights=[RIGHT])
    assert response.status == 200
    assert response.xml().get("org") == "acme"


def test_declares_its_service_link_and_right(vcdext_client_for):
    services = vcdext_client_for(hello).runtime.registry.services.values()
    (service,) = services
    assert service.namespace == "io.vcdext.hello"
    assert [r.full_name for r in service.rights] == [RIGHT]
    assert service.links[0].href == "{baseUri}org/{resourceId}/hello"
