"""Building and reading vCloud elements: the small pieces every document kind is made of
(also for the documents :mod:`vcdext.vcloud` does not model, such as the local cell's
inventory).

Writers (:func:`root`, :func:`sub`, :func:`xs_boolean`) build with lxml, so every value is
escaped. Readers check what the schemas require: a wrong root, a missing required element or
a malformed value is a 400 ``BadRequest`` naming the problem (the local cell answers it as
is; for the vCD client it means vCD sent a document that is not valid). An optional element
left out reads as absent.
"""

from __future__ import annotations

from typing import cast

from lxml import etree

from ..errors import BadRequest
from .media import VCLOUD_NS, VMEXT_NS

_PREFIX = {VCLOUD_NS: "vcloud", VMEXT_NS: "vmext"}


def v(name: str) -> str:
    """``{vcloud}name``."""
    return f"{{{VCLOUD_NS}}}{name}"


def x(name: str) -> str:
    """``{vmext}name``."""
    return f"{{{VMEXT_NS}}}{name}"


# -- writing --------------------------------------------------------------------------------


def root(
    namespace: str, name: str, /, *, declare: bool = True, **attributes: str | None
) -> etree._Element:
    """A vCloud document root: ``vcloud`` is the default namespace, and ``vmext`` is declared
    too when the root is a vmext element. ``None`` attributes are left out.

    ``declare=False`` builds an element to append to another document (no declarations).
    """
    namespaces = (
        {None: VCLOUD_NS} if namespace == VCLOUD_NS else {None: VCLOUD_NS, "vmext": namespace}
    )
    el = etree.Element(
        f"{{{namespace}}}{name}", nsmap=cast("dict[str, str]", namespaces) if declare else None
    )
    for key, value in attributes.items():
        if value is not None:
            el.set(key, value)
    return el


def sub(
    parent: etree._Element,
    name: str,
    text: str | None = None,
    /,
    *,
    ns: str = VCLOUD_NS,
    **attributes: str | None,
) -> etree._Element:
    """A child element ``name`` (vcloud namespace unless ``ns``); ``None`` attributes are left
    out."""
    el = etree.SubElement(parent, f"{{{ns}}}{name}")
    for key, value in attributes.items():
        if value is not None:
            el.set(key, value)
    el.text = text
    return el


def xs_boolean(value: bool) -> str:
    """``true``/``false`` as ``xs:boolean`` text."""
    return "true" if value else "false"


# -- reading --------------------------------------------------------------------------------


def expect(el: etree._Element, namespace: str, name: str) -> None:
    """Raise a 400 unless ``el`` is ``{namespace}name``."""
    qname = etree.QName(el)
    if (qname.namespace, qname.localname) != (namespace, name):
        got = f"{{{qname.namespace}}}{qname.localname}" if qname.namespace else qname.localname
        raise BadRequest(f"Expected a {_PREFIX[namespace]}:{name} element ({namespace}), got {got}")


def required_root(namespace: str, name: str) -> BadRequest:
    """The 400 for an empty body where a ``{namespace}name`` document is required."""
    return BadRequest(f"A {_PREFIX[namespace]}:{name} document is required")


def find(el: etree._Element, name: str, ns: str = VMEXT_NS) -> etree._Element | None:
    """The first child ``{ns}name`` (``None`` if absent)."""
    return el.find(f"{{{ns}}}{name}")


def text(
    el: etree._Element, name: str, ns: str = VMEXT_NS, *, required: bool = False, limit: int = 0
) -> str | None:
    """The stripped text of child ``{ns}name``; ``None`` when absent or empty."""
    found = find(el, name, ns)
    if found is None or found.text is None or not found.text.strip():
        if required:
            raise BadRequest(f"{_PREFIX[ns]}:{name} is required in {etree.QName(el).localname}")
        return None
    value = found.text.strip()
    if limit and len(value) > limit:
        raise BadRequest(f"{_PREFIX[ns]}:{name} is longer than {limit} characters")
    return value


def strict_boolean(value: str | None, what: str, default: bool = False) -> bool:
    """An ``xs:boolean`` value (``true``/``false``/``1``/``0``); 400 otherwise."""
    if value is None:
        return default
    if value.strip() in ("true", "1"):
        return True
    if value.strip() in ("false", "0"):
        return False
    raise BadRequest(f"{what} must be true or false, got {value!r}")


def strict_integer(value: str | None, what: str, low: int, high: int) -> int | None:
    """An integer within ``[low, high]``; ``None`` stays ``None``; 400 otherwise."""
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        raise BadRequest(f"{what} must be an integer, got {value!r}") from None
    if not low <= number <= high:
        raise BadRequest(f"{what} must be between {low} and {high}, got {number}")
    return number


def name_attribute(el: etree._Element) -> str:
    """The required ``name`` attribute."""
    value = (el.get("name") or "").strip()
    if not value:
        raise BadRequest(f"The name attribute of {etree.QName(el).localname} is required")
    return value
