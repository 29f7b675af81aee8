"""Localization bundles: the zip vCD takes, reproducible, with a digest of its content."""

from __future__ import annotations

import io
import zipfile

import pytest

from vcdext.vcd.bundle import make_bundle
from vcdext.vcloud.bundle import read_bundle


def test_one_utf8_properties_file_per_locale_named_by_code():
    bundle = make_bundle(
        {"en-us": {"b": "Backup", "a": "Archive"}, "fr_FR": {"a": "Archivé\nligne 2"}}
    )
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert archive.namelist() == ["en_US", "fr_FR"]
        assert archive.read("en_US").decode("utf-8") == "a=Archive\nb=Backup\n"
        assert archive.read("fr_FR").decode("utf-8") == "a=Archivé\\nligne 2\n"
    assert bundle.locales == ("en_US", "fr_FR")
    assert len(bundle.digest) == 16


def test_same_messages_same_bytes_and_digest():
    one = make_bundle({"en_US": {"x": "1", "y": "2"}, "de": {"x": "eins"}})
    two = make_bundle({"de": {"x": "eins"}, "en_US": {"y": "2", "x": "1"}})
    assert one.data == two.data and one.digest == two.digest
    assert make_bundle({"en_US": {"x": "1", "y": "3"}, "de": {"x": "eins"}}).digest != one.digest


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ({"english": {"k": "v"}}, "locale 'english'"),
        ({"en_US": {"bad key": "v"}}, "key 'bad key'"),
        ({"en_US": {"k=v": "v"}}, "key 'k=v'"),
        ({"en_US": {"k": "x" * 2001}}, "exceeds 2000"),
        ({}, "no locale"),
        ({"en_US": {}, "en-us": {}}, "given twice"),
    ],
)
def test_bad_messages_are_refused_naming_the_problem(messages, problem):
    with pytest.raises(ValueError, match=problem):
        make_bundle(messages)


def test_the_zip_is_the_format_s_and_reads_back():
    messages = {"en_US": {"a": "Archive"}, "fr_FR": {"a": "Archivé"}}
    bundle = make_bundle(messages)
    assert read_bundle(bundle.data) == messages
    assert bundle.messages == messages
