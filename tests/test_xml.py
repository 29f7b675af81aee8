"""The hardened XML parser: no entities, no DTDs, no network, bounded depth."""

import pytest

from vcdext import BadRequest
from vcdext.xml import parse

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>"""


@pytest.mark.parametrize("doc", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_documents_with_a_doctype_are_refused(doc):
    with pytest.raises(BadRequest, match="DOCTYPE"):
        parse(doc)


def test_malformed_xml_is_a_bad_request():
    with pytest.raises(BadRequest, match="Malformed XML"):
        parse(b"<a><b></a>")


def test_deep_nesting_is_refused():
    deep = b"<a>" * 150 + b"</a>" * 150
    with pytest.raises(BadRequest, match="nested deeper"):
        parse(deep)


def test_ordinary_documents_parse():
    assert parse("<a x='1'><b/></a>").get("x") == "1"


def test_a_doctype_in_another_encoding_is_refused_too():
    utf16 = EXTERNAL_ENTITY.decode().replace(
        '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>'
    )
    with pytest.raises(BadRequest, match="DOCTYPE"):
        parse(utf16.encode("utf-16"))


def test_the_parser_itself_resolves_no_entities_and_reads_no_files(tmp_path):
    """Even without the DOCTYPE checks, the parser's own flags keep files and entities out."""
    from lxml import etree

    from vcdext.xml import parser

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">'
        '<!ENTITY y "yy">]><r>&x;&y;</r>'
    ).encode()
    root = etree.fromstring(doc, parser())
    assert "TOP-SECRET" not in etree.tostring(root).decode()
    assert "yy" not in (root.text or "")
