"""Validate XML documents against VMware's vCloud API schemas (``../shared/vcd-schemas``).

The schemas are reference data kept outside the repository. They are found through
``$VCDEXT_SCHEMAS``, else ``<repo>/../shared/vcd-schemas`` (where CI puts them). Loading happens
with network access off; the W3C/DMTF schemas the API imports resolve to local copies.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from lxml import etree

REPO = Path(__file__).resolve().parents[2]
VERSIONS_NS = "http://www.vmware.com/vcloud/versions"

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
    root = Path(os.environ.get("VCDEXT_SCHEMAS", REPO.parent / "shared" / "vcd-schemas"))
    return root if (root / "1.5" / "schemas" / "extension" / "vmwextensions.xsd").exists() else None


class _LocalResolver(etree.Resolver):
    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def resolve(self, url, pubid, context):  # type: ignore[no-untyped-def]
        if url in _LOCAL_COPIES:
            return self.resolve_filename(str(self.root / _LOCAL_COPIES[url]), context)
        return None


@cache
def _schema(which: str) -> etree.XMLSchema:
    root = schema_root()
    if root is None:
        raise RuntimeError("vCloud schemas not found; set VCDEXT_SCHEMAS")
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    parser.resolvers.add(_LocalResolver(root))
    path = {
        "api": root / "1.5" / "schemas" / "extension" / "vmwextensions.xsd",
        "versions": root / "schemas" / "versioning" / "versions.xsd",
    }[which]
    return etree.XMLSchema(etree.parse(str(path), parser))


def schema_errors(document: bytes | str | etree._Element) -> list[str]:
    """``[]`` when the document is valid, else the schema's complaints."""
    if isinstance(document, etree._Element):
        doc = document
    else:
        data = document.encode() if isinstance(document, str) else document
        doc = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
    which = "versions" if etree.QName(doc).namespace == VERSIONS_NS else "api"
    schema = _schema(which)
    return [] if schema.validate(doc) else [str(e) for e in schema.error_log]
