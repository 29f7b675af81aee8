"""Check the vCloud XML documents the tests see; validate them against VMware's schemas when
this checkout has them.

Every document is always checked for what holds without the schemas: it is well-formed XML (read
without entities or network), its root element is in a vCloud namespace, and no element is
unqualified. Schema validation is layered on top: the schemas are reference data kept outside
the repository, found through ``$VCDEXT_SCHEMAS``, else ``<repo>/../shared/vcd-schemas`` (where
CI puts them). Without them every test still runs; pytest's header says which mode is on.
Loading happens with network access off; the W3C/DMTF schemas the API imports resolve to local
copies.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[2]
VERSIONS_NS = "http://www.vmware.com/vcloud/versions"
#: The namespaces a vCloud document's root element may be in.
VCLOUD_NAMESPACES = frozenset(
    {
        "http://www.vmware.com/vcloud/v1.5",
        "http://www.vmware.com/vcloud/extension/v1.5",
        VERSIONS_NS,
    }
)

_LOCAL_COPIES = {
    "http://www.w3.org/2001/xml.xsd": "schemas/external/xml.xsd",
    "http://www.w3.org/2009/01/xml.xsd": "schemas/external/xml.xsd",
    "http://schemas.dmtf.org/ovf/envelope/1/dsp8023_1.1.0.xsd": "schemas/external/ovf1.1/dsp8023_1.1.0.xsd",
    "http://schemas.dmtf.org/ovf/environment/1/dsp8027_1.1.0.xsd": "schemas/external/ovf1.1/dsp8027_1.1.0.xsd",
    "http://schemas.dmtf.org/wbem/wscim/1/common.xsd": "schemas/external/ovf1.1/common.xsd",
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2.22.0/CIM_VirtualSystemSettingData.xsd": "schemas/external/ovf1.1/CIM_VirtualSystemSettingData.xsd",
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2.22.0/CIM_ResourceAllocationSettingData.xsd": "schemas/external/ovf1.1/CIM_ResourceAllocationSettingData.xsd",
    "http://www.vmware.com/schema/ovf.xsd": "schemas/external/ovf1.1/ovf-vmware.xsd",
}


def schema_root() -> Path | None:
    """Where the schemas are, or ``None`` when this checkout has none beside it."""
    root = Path(os.environ.get("VCDEXT_SCHEMAS") or REPO.parent / "shared" / "vcd-schemas")
    return root if (root / "1.5" / "schemas" / "extension" / "vmwextensions.xsd").exists() else None


def validation_status() -> str:
    """One line for pytest's header: whether XML documents are schema-validated, and from where."""
    root = schema_root()
    if root is not None:
        return f"vCloud schema validation: on ({root})"
    return (
        "vCloud schema validation: off (no schemas at $VCDEXT_SCHEMAS or ../shared/vcd-schemas; "
        "XML is checked for well-formedness and vCloud namespaces only)"
    )


class _LocalResolver(etree.Resolver):
    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def resolve(self, url, pubid, context):  # type: ignore[no-untyped-def]
        if url in _LOCAL_COPIES:
            return self.resolve_filename(str(self.root / _LOCAL_COPIES[url]), context)
        return None


@cache
def _schema(root: Path, which: str) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalResolver(root))
    path = {
        "api": root / "1.5" / "schemas" / "extension" / "vmwextensions.xsd",
        "versions": root / "schemas" / "versioning" / "versions.xsd",
    }[which]
    return etree.XMLSchema(etree.parse(str(path), parser))


def structure_errors(document: etree._Element) -> list[str]:
    """What is wrong with a parsed document as a vCloud document, schemas or not."""
    errors = []
    if etree.QName(document).namespace not in VCLOUD_NAMESPACES:
        errors.append(f"root element {document.tag} is not in a vCloud namespace")
    for el in document.iter(etree.Element):
        if etree.QName(el).namespace is None:
            errors.append(f"line {el.sourceline}: element <{el.tag}> has no namespace")
    return errors


def schema_errors(document: bytes | str | etree._Element) -> list[str]:
    """``[]`` when the document is a sound vCloud document, else the complaints: always whether
    it is well-formed and namespaced (:func:`structure_errors`), and where the schemas are found
    whether it is valid against them."""
    if isinstance(document, etree._Element):
        doc = document
    else:
        data = document.encode() if isinstance(document, str) else document
        try:
            doc = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.XMLSyntaxError as e:
            return [f"not well-formed XML: {e}"]
    errors = structure_errors(doc)
    root = schema_root()
    if errors or root is None:
        return errors
    which = "versions" if etree.QName(doc).namespace == VERSIONS_NS else "api"
    schema = _schema(root, which)
    return [] if schema.validate(doc) else [str(e) for e in schema.error_log]
