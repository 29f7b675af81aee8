"""Safe XML parsing and generic element helpers (the lowest layer).

Every parse goes through :func:`parse`, whose parser resolves no entities, loads no DTD and
never touches the network, so a request body cannot read files or reach other hosts. The
vCloud vocabulary (namespaces, every document kind, vCD's ``Error``) is :mod:`vcdext.vcloud`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from lxml import etree

from .errors import BadRequest, PayloadTooLarge

_MAX_DEPTH = 100  # vCD's own limit on request documents


@dataclass(frozen=True)
class Budget:
    """How much XML one document may hold; a document over any limit is a 400 (413 for size).

    :data:`REQUEST_BUDGET` is vCD's own limit on API requests (512 KB, 4096 elements, depth
    100: protocol notes §2, vCloud API guide 5.5 p. 20); attributes are bounded too, since a
    single element may carry any number of them.
    """

    max_bytes: int | None = None
    max_elements: int | None = None
    max_attributes: int | None = None
    max_depth: int = _MAX_DEPTH


#: vCD's limit on an API request body, in bytes.
REQUEST_MAX_BYTES = 512 * 1024
#: The budget for request bodies a handler parses (:meth:`vcdext.Request.xml`).
REQUEST_BUDGET = Budget(
    max_bytes=REQUEST_MAX_BYTES, max_elements=4096, max_attributes=8 * 4096, max_depth=_MAX_DEPTH
)
#: The default: documents vcdext reads from vCD, depth-limited only.
_DEFAULT_BUDGET = Budget()


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


def parse(data: bytes | str, *, budget: Budget = _DEFAULT_BUDGET) -> etree._Element:
    """Parse an XML document safely; malformed or hostile input raises :class:`BadRequest`,
    a document over ``budget`` too (:class:`PayloadTooLarge` for its size)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if budget.max_bytes is not None and len(data) > budget.max_bytes:
        raise PayloadTooLarge(f"XML document is larger than {budget.max_bytes} bytes")
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
    _check_budget(root, budget)
    return root


def _check_budget(root: etree._Element, budget: Budget) -> None:
    depth = elements = attributes = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        depth += 1
        elements += 1
        attributes += len(el.attrib)
        if depth > budget.max_depth:
            raise BadRequest(f"XML document is nested deeper than {budget.max_depth} levels")
        if budget.max_elements is not None and elements > budget.max_elements:
            raise BadRequest(f"XML document has more than {budget.max_elements} elements")
        if budget.max_attributes is not None and attributes > budget.max_attributes:
            raise BadRequest(f"XML document has more than {budget.max_attributes} attributes")


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
