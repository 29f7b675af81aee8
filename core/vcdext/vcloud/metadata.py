"""``Metadata`` and ``MetadataValue`` (string values): written once and read once.

``GET …/metadata`` answers ``Metadata`` (its ``MetadataEntry`` children each a ``Key`` and a
``TypedValue xsi:type="MetadataStringValue"``); ``PUT …/metadata/{key}`` takes a
``MetadataValue`` (``vcloud/common.xsd``). Other typed values are read as their text.
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from ..errors import BadRequest
from ..xml import parse
from .elements import expect, root, sub, v
from .media import VCLOUD_NS

METADATA = "application/vnd.vmware.vcloud.metadata+xml"
METADATA_VALUE = "application/vnd.vmware.vcloud.metadata.value+xml"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
Body = bytes | str | etree._Element


def _typed(parent: etree._Element, value: str) -> None:
    typed = sub(parent, "TypedValue")
    typed.set(f"{{{_XSI}}}type", "MetadataStringValue")
    sub(typed, "Value", value)


def write_metadata(entries: Mapping[str, str], *, href: str = "") -> etree._Element:
    """A ``Metadata`` document with one string entry per key, sorted."""
    el = root(VCLOUD_NS, "Metadata", href=href or None, type=METADATA)
    for key in sorted(entries):
        entry = sub(el, "MetadataEntry")
        sub(entry, "Key", key)
        _typed(entry, entries[key])
    return el


def read_metadata(body: Body) -> dict[str, str]:
    """key → value of a ``Metadata`` document."""
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VCLOUD_NS, "Metadata")
    found = {}
    for entry in el.findall(v("MetadataEntry")):
        key = (entry.findtext(v("Key")) or "").strip()
        if key:
            found[key] = _value(entry)
    return found


def write_metadata_value(value: str) -> etree._Element:
    """A ``MetadataValue`` holding a string."""
    el = root(VCLOUD_NS, "MetadataValue", type=METADATA_VALUE)
    _typed(el, value)
    return el


def read_metadata_value(body: Body) -> str:
    """The value of a ``MetadataValue``; 400 without one."""
    el = body if isinstance(body, etree._Element) else parse(body)
    expect(el, VCLOUD_NS, "MetadataValue")
    if el.find(v("TypedValue")) is None and el.find(v("Value")) is None:
        raise BadRequest("MetadataValue needs a TypedValue")
    return _value(el)


def _value(el: etree._Element) -> str:
    typed = el.find(v("TypedValue"))
    if typed is not None:
        return (typed.findtext(v("Value")) or "").strip()
    return (el.findtext(v("Value")) or "").strip()


__all__ = ["read_metadata", "read_metadata_value", "write_metadata", "write_metadata_value"]
