"""The localization bundle format, stated once: what the writer writes, the reader reads
(protocol notes §7: files named by locale, UTF-8, key=value, the limits)."""

from __future__ import annotations

import io
import zipfile

import pytest

from vcdext.vcloud.bundle import (
    MAX_FILE,
    MAX_FILES,
    MAX_TEXT,
    BundleFormatError,
    locale_files,
    normalize_locale,
    parse_properties,
    read_bundle,
    write_bundle,
)


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_the_documented_limits():
    assert (MAX_TEXT, MAX_FILE) == (2000, 10 * 1024 * 1024)
    assert MAX_FILES > 0


def test_what_the_writer_writes_the_reader_reads():
    messages = {
        "en_US": {"plain": "Backup of {resourceName}", "multi": "line 1\nline 2\ttab"},
        "fr_FR": {"accent": "Sauvegardé", "slash": "a\\b", "equals": "a=b: c"},
        "de": {"x" * MAX_TEXT: "y" * MAX_TEXT},
    }
    assert read_bundle(write_bundle(locale_files(messages))) == messages


@pytest.mark.parametrize("name", ["en", "fr_FR", "ast", "ja_JP_JP", "no_NO_NY"])
def test_locale_names_both_sides_take(name):
    assert normalize_locale(name) == name
    assert read_bundle(zipped({name: b"k=v"})) == {name: {"k": "v"}}


@pytest.mark.parametrize(
    "name", ["english", "en-US", "EN", "en_us", "e", "messages.properties", "en_US.properties"]
)
def test_names_the_reader_refuses(name):
    with pytest.raises(BundleFormatError, match="not named after a locale"):
        read_bundle(zipped({name: b"k=v"}))


def test_locale_codes_are_normalized_for_the_writer():
    assert normalize_locale("EN-gb") == "en_GB"
    assert normalize_locale("fr") == "fr"
    assert normalize_locale("ja-jp-JP") == "ja_JP_JP"
    for bad in ("english", "en__POSIX", "", "12"):
        with pytest.raises(BundleFormatError, match="not a code like en_US"):
            normalize_locale(bad)


def test_the_number_of_files_is_limited_both_ways():
    codes = [f"{a}{b}" for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnop"]
    assert len(codes) > MAX_FILES
    within = {code: {"k": "v"} for code in codes[:MAX_FILES]}
    assert len(read_bundle(write_bundle(locale_files(within)))) == MAX_FILES
    over = {code: {"k": "v"} for code in codes[: MAX_FILES + 1]}
    with pytest.raises(BundleFormatError, match=f"at most {MAX_FILES}"):
        locale_files(over)
    with pytest.raises(BundleFormatError, match=f"at most {MAX_FILES}"):
        read_bundle(zipped({code: b"k=v" for code in over}))


def test_directories_do_not_count_and_their_files_are_named_by_locale():
    data = zipped({"bundle/": b"", "bundle/en_US": b"a=1", "en_US": b"b=2"})
    assert read_bundle(data) == {"en_US": {"a": "1", "b": "2"}}


def test_the_reader_refuses_what_is_not_a_bundle():
    with pytest.raises(BundleFormatError, match="not a zip"):
        read_bundle(b"not a zip")
    with pytest.raises(BundleFormatError, match="not UTF-8"):
        read_bundle(zipped({"en_US": "k=é".encode("latin-1")}))


def test_a_file_over_the_size_limit_is_refused_before_it_is_read():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("en_US", b"k=" + b"v" * MAX_FILE)
    with pytest.raises(BundleFormatError, match="larger than 10 MB"):
        read_bundle(buffer.getvalue())


def test_properties_format():
    text = (
        "# comment\n! another\n\n"
        "plain=value\n"
        "colon: spaced value \n"
        "escaped\\=key=a\\tb\\n\n"
        "unicode=caf\\u00e9\n"
        "utf8=Größe\n"
        "long=first \\\n    second\n"
        "empty=\n"
    )
    assert parse_properties(text, "en_US") == {
        "plain": "value",
        "colon": "spaced value",
        "escaped=key": "a\tb\n",
        "unicode": "café",
        "utf8": "Größe",
        "long": "first second",
        "empty": "",
    }
    with pytest.raises(BundleFormatError, match="over 2000"):
        parse_properties("k=" + "x" * 2001, "en_US")
    with pytest.raises(BundleFormatError, match="no key"):
        parse_properties("=no key", "en_US")


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ({"english": {"k": "v"}}, "locale 'english'"),
        ({"en_US": {"bad key": "v"}}, "key 'bad key'"),
        ({"en_US": {"k=v": "v"}}, "key 'k=v'"),
        ({"en_US": {"k": "x" * 2001}}, "exceeds 2000"),
        ({"en_US": {"x" * 2001: "v"}}, "1-2000 characters"),
        ({}, "no locale"),
        ({"en_US": {}, "en-us": {}}, "given twice"),
    ],
)
def test_the_writer_refuses_naming_the_problem(messages, problem):
    with pytest.raises(BundleFormatError, match=problem):
        locale_files(messages)
