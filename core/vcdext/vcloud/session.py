"""The ``Session`` document a login returns: who is logged in, and links to what they may
reach (the vCD client follows them; the local cell writes them)."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ..xml import parse
from .elements import expect, root, sub
from .media import SESSION, VCLOUD_NS
from .model import Held
from .reference import read_links, write_link


@dataclass(frozen=True)
class Login:
    """Who a ``Session`` is for."""

    user: str
    org: str
    #: ``urn:vcloud:user:<uuid>``.
    user_id: str = ""
    #: The user's role names, comma-separated as vCD sends them.
    roles: str = ""


def write_session(held: Held[Login]) -> etree._Element:
    """A ``vcloud:Session`` with its links and an empty ``AuthorizedLocations``."""
    login = held.value
    el = root(
        VCLOUD_NS,
        "Session",
        href=held.href,
        type=held.type or SESSION,
        user=login.user,
        org=login.org,
        userId=login.user_id or None,
        roles=login.roles or None,
    )
    for link in held.links:
        write_link(el, link)
    sub(el, "AuthorizedLocations")
    return el


def read_session(body: bytes | str | etree._Element) -> Held[Login]:
    """A ``vcloud:Session``: the login and the document's links."""
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VCLOUD_NS, "Session")
    login = Login(el.get("user", ""), el.get("org", ""), el.get("userId", ""), el.get("roles", ""))
    return Held(login, href=el.get("href", ""), type=el.get("type", ""), links=read_links(el))
