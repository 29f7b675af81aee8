"""Safe XML parsing and generic element helpers (the lowest layer).

Every parse goes through :func:`parse`, whose parser resolves no entities, loads no DTD and
never touches the network, so a request body cannot read files or reach other hosts. The
vCloud vocabulary (namespaces, every document kind, vCD's ``Error``) is :mod:`vcdext.vcloud`.
"""

from __future__ import annotations

from typing import cast

from lxml import etree

from .errors import BadRequest

_MAX_DEPTH = 100  # vCD's own limit on request documents


def parser() -> etree.XMLParser:
    """The hardened parser: no entity resolution, no DTD loading, no network."""
    return _parser()


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def parse(data: bytes | str) -> etree._Element:
    """Parse an XML document safely; malformed or hostile input raises :class:`BadRequest`."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise BadRequest("XML documents with a DOCTYPE are not accepted")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise BadRequest(f"Malformed XML: {exc.msg}") from None
    if root is None:
        raise BadRequest("Empty XML document")
    # The byte check above misses other encodings (UTF-16); the parsed tree does not.
    docinfo = root.getroottree().docinfo
    doctype = docinfo.doctype  # type: ignore[union-attr]  # lxml-stubs lack DocInfo.doctype
    if doctype or docinfo.internalDTD is not None:
        raise BadRequest("XML documents with a DOCTYPE are not accepted")
    if _depth(root) > _MAX_DEPTH:
        raise BadRequest(f"XML document is nested deeper than {_MAX_DEPTH} levels")
    return root


def _depth(root: etree._Element) -> int:
    depth = deepest = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        depth += 1 if event == "start" else -1
        deepest = max(deepest, depth)
    return deepest


def tostring(element: etree._Element) -> bytes:
    """Serialise an element as a UTF-8 document with an XML declaration."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8", standalone=True)


def element(
    namespace: str, name: str, text: str | None = None, **attributes: str
) -> etree._Element:
    """A new element ``name`` in ``namespace``, declared as the default namespace."""
    # lxml accepts None as the default prefix; its stubs do not know that.
    nsmap = cast("dict[str, str]", {None: namespace})
    el = etree.Element(f"{{{namespace}}}{name}", nsmap=nsmap)
    for key, value in attributes.items():
        el.set(key, value)
    el.text = text
    return el
