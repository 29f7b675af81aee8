"""A greeting service: the smallest plugin that shows the whole vcdext surface.

Copy this file to start a service. It declares one vCD extension service with three
operations, one right and one service link, each once, on a :class:`vcdext.Service`; the
``vcdext_register`` hook hands that service to the runtime.

It speaks the caller's language (``Accept-Language``: English, German, French): its catalogs
are ``vcdext_hello/locales/<lang>/LC_MESSAGES/vcdext_hello.po``, its XML is rendered from
``vcdext_hello/templates/greeting.xml``, and :func:`vcdext.i18n.bundle_key` marks the texts
of the localization bundle vcdext uploads to vCD (docs/translating.md).
"""

from __future__ import annotations

from vcdext import Registrar, Request, Response, Service, current, hookimpl
from vcdext.i18n import bundle_key

#: Unique across vCD; prefixes our rights ({io.vcdext.hello}:...) and names our bundle.
NAMESPACE = "io.vcdext.hello"
#: The media type of our own XML documents (vCD clients send Accept: application/*+xml).
GREETING_TYPE = "application/vnd.io.vcdext.hello.greeting+xml"
#: Its JSON form, for clients that send Accept: application/*+json.
GREETING_JSON = "application/vnd.io.vcdext.hello.greeting+json"
#: The XML namespace of our documents.
XMLNS = "urn:io.vcdext.hello"

# The service's name in vCD's own UI, in each language (key = the namespace).
bundle_key("io.vcdext.hello", "Hello World Service")

service = Service(
    "hello",
    namespace=NAMESPACE,
    vendor="vcdext",
    description="Greets vCloud Director users (vcdext example plugin)",
)

VIEW_ORG_GREETING = service.right(
    "View Org Greeting",
    description="Read the greeting of an organization",
    category="Hello",
    bundle_key=bundle_key("RIGHT_VIEW_ORG_GREETING", "View Org Greeting"),
)

# vCD adds this link to every organization it returns, expanding {baseUri} and
# {resourceId}, so clients can discover the org greeting.
service.link(
    rel="down",
    href="{baseUri}org/{resourceId}/hello",
    mime_type=GREETING_TYPE,
    resource_type="application/vnd.vmware.vcloud.org+xml",
)


# inline=True: the handler only computes (no I/O, no sleep, no call to vCD), so the transport
# answers it on its own thread instead of handing it to a worker; leave it out otherwise.
@service.operation("GET", "/api/hello", produces=[GREETING_TYPE, GREETING_JSON], inline=True)
def hello(request: Request) -> Response:
    """Greet the caller by the user URN vCD put in the security context, in the caller's
    language: JSON through ``current().gettext``, XML through the template."""
    ctx = current()
    user = request.security.user or "anonymous"
    if ctx.wants_json:
        return Response.json({"text": ctx.gettext("Hello, {user}!", user=user), "user": user})
    return Response(ctx.render("greeting.xml", lang=ctx.locale, user=user))


@service.operation("POST", "/api/hello/echo", produces=["*/*"], inline=True)
def echo(request: Request) -> Response:
    """Send the request body back with its Content-Type, byte for byte."""
    content_type = request.headers.get("Content-Type") or "application/octet-stream"
    return Response(request.body, content_type=content_type)


# A short right name refers to a right this service declares (above); vcdext expands it to
# "{io.vcdext.hello}:View Org Greeting" and refuses callers who do not hold it (403).
# same_org="org_id": only members of that organization (or System administrators) get in.
@service.operation(
    "GET",
    "/api/org/{org_id}/hello",
    rights=["View Org Greeting"],
    same_org="org_id",
    produces=[GREETING_TYPE, GREETING_JSON],
    inline=True,
)
def org_hello(request: Request, org_id: str) -> Response:
    """Greet an organization; path parameters arrive as keyword arguments."""
    ctx = current()
    if ctx.wants_json:
        text = ctx.gettext("Hello, organization {org}!", org=org_id)
        return Response.json({"text": text, "org": org_id})
    return Response(ctx.render("greeting.xml", lang=ctx.locale, org=org_id))


@hookimpl
def vcdext_register(registrar: Registrar) -> None:
    """Hand the service to the runtime; called once when the runtime starts."""
    registrar.add_service(service)
