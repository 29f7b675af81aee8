"""A greeting service: the smallest plugin that shows the whole vcdext surface.

Copy this file to start a service. It declares one vCD extension service with three
operations, one right and one service link; each handler receives the forwarded request.
"""

from __future__ import annotations

from lxml import etree

from vcdext import Registrar, Request, Response, hookimpl, operation
from vcdext.xml import element

#: Unique across vCD; prefixes our rights ({io.vcdext.hello}:...) and names our bundle.
NAMESPACE = "io.vcdext.hello"
#: The media type of our own XML documents (vCD clients send Accept: application/*+xml).
GREETING_TYPE = "application/vnd.io.vcdext.hello.greeting+xml"
#: The XML namespace of our documents (see greeting.xsd beside this file).
XMLNS = "urn:io.vcdext.hello"


def _greeting(text: str, **attributes: str) -> etree._Element:
    return element(XMLNS, "Greeting", text, **attributes)


@operation("GET", "/api/hello", produces=[GREETING_TYPE])
def hello(request: Request) -> Response:
    """Greet the caller by the user URN vCD put in the security context."""
    user = request.security.user or "anonymous"
    return Response.xml(_greeting(f"Hello, {user}!", user=user))


@operation("POST", "/api/hello/echo", produces=["application/octet-stream"])
def echo(request: Request) -> Response:
    """Send the request body back with its Content-Type, byte for byte."""
    content_type = request.headers.get("Content-Type") or "application/octet-stream"
    return Response(request.body, content_type=content_type)


# A short right name refers to a right this plugin declares below; vcdext expands it to
# "{io.vcdext.hello}:View Org Greeting" and refuses callers who do not hold it (403).
@operation("GET", "/api/org/{org_id}/hello", rights=["View Org Greeting"], produces=[GREETING_TYPE])
def org_hello(request: Request, org_id: str) -> Response:
    """Greet an organization; path parameters arrive as keyword arguments."""
    return Response.xml(_greeting(f"Hello, organization {org_id}!", org=org_id))


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    """Declare the service; called once when the runtime starts."""
    registrar.service(
        name="hello",
        namespace=NAMESPACE,
        vendor="vcdext",
        description="Greets vCloud Director users (vcdext example plugin)",
    )
    registrar.add_operations(hello, echo, org_hello)
    registrar.add_right(
        "View Org Greeting",
        description="Read the greeting of an organization",
        category="Hello",
        bundle_key="RIGHT_VIEW_ORG_GREETING",
    )
    # vCD adds this link to every organization it returns, expanding {baseUri} and
    # {resourceId}, so clients can discover the org greeting.
    registrar.add_link(
        rel="down",
        href="{baseUri}org/{resourceId}/hello",
        mime_type=GREETING_TYPE,
        resource_type="application/vnd.vmware.vcloud.org+xml",
    )
