"""``Link`` and ``Reference``: the two ways one vCloud document points at another."""

from __future__ import annotations

from lxml import etree

from ..errors import BadRequest
from .elements import sub, v
from .model import Link, Reference


def write_link(parent: etree._Element, link: Link) -> etree._Element:
    """Append a ``vcloud:Link`` (empty ``type``, ``name`` and ``id`` are left out)."""
    return sub(
        parent,
        "Link",
        rel=link.rel,
        href=link.href,
        type=link.type or None,
        name=link.name or None,
        id=link.id or None,
    )


def read_links(el: etree._Element) -> tuple[Link, ...]:
    """The ``Link`` children of a document (those without an href are skipped)."""
    return tuple(
        Link(
            rel=link.get("rel", ""),
            href=link.get("href", ""),
            type=link.get("type", ""),
            name=link.get("name", ""),
            id=link.get("id", ""),
        )
        for link in el.findall(v("Link"))
        if link.get("href")
    )


def write_reference(
    parent: etree._Element, name: str, ref: Reference, *, ns: str | None = None
) -> etree._Element:
    """Append a ``ReferenceType`` element ``name`` (vcloud namespace unless ``ns``)."""
    attributes = {"href": ref.href, "id": ref.id, "type": ref.type, "name": ref.name}
    kept = {k: value for k, value in attributes.items() if value}
    if ns is None:
        return sub(parent, name, **kept)
    return sub(parent, name, ns=ns, **kept)


def read_reference(el: etree._Element, what: str) -> Reference:
    """A ``ReferenceType`` element; 400 without an ``href``."""
    href = el.get("href")
    if not href:
        raise BadRequest(f"{what} needs an href")
    return Reference(href, el.get("type", ""), el.get("name", ""), el.get("id", ""))
