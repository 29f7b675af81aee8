"""The XML check every test applies to vCloud documents: structure always, schemas when found."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.schemas import schema_errors, schema_root, validation_status

V = "http://www.vmware.com/vcloud/v1.5"

#: A stand-in for VMware's schema tree: one element, one required integer attribute.
MINI_SCHEMA = f"""<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{V}"
           elementFormDefault="qualified">
  <xs:element name="Error">
    <xs:complexType><xs:attribute name="majorErrorCode" type="xs:int" use="required"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


@pytest.fixture
def no_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCDEXT_SCHEMAS", str(tmp_path))


@pytest.fixture
def mini_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    xsd = tmp_path / "1.5" / "schemas" / "extension" / "vmwextensions.xsd"
    xsd.parent.mkdir(parents=True)
    xsd.write_text(MINI_SCHEMA)
    monkeypatch.setenv("VCDEXT_SCHEMAS", str(tmp_path))
    return tmp_path


@pytest.mark.usefixtures("no_schemas")
def test_without_schemas_structure_is_still_checked() -> None:
    assert schema_root() is None
    assert validation_status().startswith("vCloud schema validation: off")
    assert schema_errors(f'<Error xmlns="{V}" majorErrorCode="404"/>') == []
    assert schema_errors(b"<Error")[0].startswith("not well-formed XML")
    assert "not in a vCloud namespace" in schema_errors(b"<Error/>")[0]
    (unqualified,) = schema_errors(f'<v:Error xmlns:v="{V}"><v:Link/><Oops/></v:Error>')
    assert "<Oops> has no namespace" in unqualified


def test_with_schemas_documents_are_validated(mini_schemas: Path) -> None:
    assert schema_root() == mini_schemas
    assert validation_status() == f"vCloud schema validation: on ({mini_schemas})"
    assert schema_errors(f'<Error xmlns="{V}" majorErrorCode="404"/>') == []
    (error,) = schema_errors(f'<Error xmlns="{V}" majorErrorCode="four"/>')
    assert "majorErrorCode" in error and "xs:int" in error


def test_the_assert_fixture_fails_on_a_bad_document(assert_valid_vcd_xml) -> None:
    assert_valid_vcd_xml(
        f'<Error xmlns="{V}" majorErrorCode="404" minorErrorCode="NOT_FOUND" message="gone"/>'
    )
    with pytest.raises(AssertionError, match="not a valid vCloud document"):
        assert_valid_vcd_xml(b"<Error/>")
