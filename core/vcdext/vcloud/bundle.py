"""vCD's localization bundle format, written once: the writer and the reader (protocol notes §7).

A bundle is a **zip of properties files** whose lines are ``key=value`` [doc, G51-p302]:

* each member is named after its locale code, with no extension (``en_US``, ``fr_FR``)
  [doc, G55-p350..353]; :data:`LOCALE` is the one pattern for that name: language (2-3
  lower-case letters), optionally ``_`` country (2 upper-case letters), optionally ``_``
  variant, as Java writes a ``Locale``. Directories inside the zip are ignored, so
  ``bundle/en_US`` is ``en_US`` too;
* files are UTF-8 (:data:`ENCODING`) [doc, G55-p350..353];
* lines are Java properties: ``key=value`` (or ``key:value``); blank lines and lines starting
  with ``#`` or ``!`` are comments; a trailing backslash continues the line; ``\\n``, ``\\t``,
  ``\\uXXXX`` and escaped separators are escapes;
* a key or a value has at most :data:`MAX_TEXT` characters and a file at most
  :data:`MAX_FILE` bytes [doc, G55-p350..353]; a bundle has at most :data:`MAX_FILES` files
  (vCD's own limit, if any, is [unknown]: this one is vcdext's, so that reading an uploaded
  bundle is bounded).

:func:`locale_files` and :func:`write_bundle` write a bundle (the vCD client uploads it);
:func:`read_bundle` reads one (the local cell receives it). Both refuse what the other would
refuse, with :class:`BundleFormatError`. Pure: no I/O.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from collections.abc import Mapping

#: A member's name: ``ll``, ``ll_CC`` or ``ll_CC_variant`` (``en``, ``en_US``, ``ja_JP_JP``).
LOCALE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2}(?:_[A-Za-z0-9]+)?)?")
#: The encoding of every file [doc].
ENCODING = "utf-8"
#: Characters of one key or one value [doc].
MAX_TEXT = 2000
#: Bytes of one locale file [doc].
MAX_FILE = 10 * 1024 * 1024
#: Files in one bundle (vcdext's limit; vCD's is [unknown]).
MAX_FILES = 256

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "f": "\f"}
_SEPARATOR = re.compile(r"(?<!\\)(?:\\\\)*[=:]")


class BundleFormatError(ValueError):
    """Something that is not a localization bundle vCD takes; the message names it."""


# -- writing ----------------------------------------------------------------------------------


def normalize_locale(locale: str) -> str:
    """``"en-us"`` → ``"en_US"``.

    :raises BundleFormatError: the code does not fit :data:`LOCALE`.
    """
    parts = locale.strip().replace("-", "_").split("_")
    code = "_".join([parts[0].lower(), *(p.upper() for p in parts[1:2]), *parts[2:]])
    if not LOCALE.fullmatch(code):
        raise BundleFormatError(f"locale {locale!r} is not a code like en_US or fr")
    return code


def _escape(value: str) -> str:
    # java.util.Properties syntax: backslash escapes; a line break would end the entry.
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )


def _check_key(locale: str, key: str) -> None:
    if not key or any(c in key for c in "=: \t\r\n\\#!") or len(key) > MAX_TEXT:
        raise BundleFormatError(
            f"bundle {locale}: key {key!r} must be 1-{MAX_TEXT} characters without "
            "spaces, '=', ':', '#', '!' or backslashes"
        )


def properties_file(locale: str, messages: Mapping[str, str]) -> bytes:
    """One locale file: ``key=value`` lines, sorted by key, UTF-8."""
    lines = []
    for key in sorted(messages):
        value = messages[key]
        _check_key(locale, key)
        if len(value) > MAX_TEXT:
            raise BundleFormatError(
                f"bundle {locale}: the value of {key!r} exceeds {MAX_TEXT} characters"
            )
        lines.append(f"{key}={_escape(value)}\n")
    data = "".join(lines).encode(ENCODING)
    if len(data) > MAX_FILE:
        raise BundleFormatError(f"bundle {locale}: the file exceeds {MAX_FILE} bytes")
    return data


def locale_files(messages: Mapping[str, Mapping[str, str]]) -> dict[str, bytes]:
    """``{locale: {key: value}}`` → ``{normalized locale: file content}``.

    :raises BundleFormatError: a bad locale code (or one given twice), key or value; no locale;
        more than :data:`MAX_FILES` locales.
    """
    files: dict[str, bytes] = {}
    for locale, entries in messages.items():
        code = normalize_locale(locale)
        if code in files:
            raise BundleFormatError(f"bundle: locale {code} is given twice")
        files[code] = properties_file(code, entries)
    if not files:
        raise BundleFormatError("bundle: no locale given")
    if len(files) > MAX_FILES:
        raise BundleFormatError(f"bundle: {len(files)} locales, at most {MAX_FILES}")
    return files


def write_bundle(files: Mapping[str, bytes]) -> bytes:
    """The zip of ``files`` (from :func:`locale_files`), byte for byte the same for the same
    files: members sorted by name, fixed timestamps and modes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for code in sorted(files):
            info = zipfile.ZipInfo(code, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[code])
    return buffer.getvalue()


# -- reading ----------------------------------------------------------------------------------


def _unescape(value: str) -> str:
    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if len(code) == 5 and code[0] == "u":
            return chr(int(code[1:], 16))
        return _SIMPLE.get(code, code)

    return _ESCAPE.sub(one, value)


def _logical_lines(content: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in content.splitlines():
        line = raw.lstrip() if pending else raw.strip()
        if not pending and (not line or line[0] in "#!"):
            continue
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        lines.append(pending + line)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def parse_properties(content: str, where: str) -> dict[str, str]:
    """One properties file as key → value; ``where`` names it in errors."""
    out: dict[str, str] = {}
    for line in _logical_lines(content):
        m = _SEPARATOR.search(line)
        if m is None:
            key, value = line, ""
        else:
            key, value = line[: m.end() - 1], line[m.end() :]
        key, value = _unescape(key.strip()), _unescape(value.strip())
        if not key:
            raise BundleFormatError(f"{where}: a line has no key")
        if len(key) > MAX_TEXT or len(value) > MAX_TEXT:
            raise BundleFormatError(
                f"{where}: key or value of {key[:40]!r} is over {MAX_TEXT} characters"
            )
        out[key] = value
    return out


def read_bundle(data: bytes) -> dict[str, dict[str, str]]:
    """locale → key → value for every file of a bundle zip.

    :raises BundleFormatError: not a zip, too many files, a file not named after a locale, too
        large, not UTF-8, unreadable, or not properties within the limits.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        raise BundleFormatError("The localization bundle is not a zip file") from None
    bundles: dict[str, dict[str, str]] = {}
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > MAX_FILES:
            raise BundleFormatError(
                f"The localization bundle has {len(members)} files; at most {MAX_FILES} are taken"
            )
        for info in members:
            locale = info.filename.rsplit("/", 1)[-1]
            if not LOCALE.fullmatch(locale):
                raise BundleFormatError(
                    f"Bundle member {info.filename!r} is not named after a locale (e.g. en_US)"
                )
            if info.file_size > MAX_FILE:
                raise BundleFormatError(f"Bundle file {locale} is larger than 10 MB")
            try:
                content = archive.read(info).decode(ENCODING)
            except UnicodeDecodeError:
                raise BundleFormatError(f"Bundle file {locale} is not UTF-8") from None
            except NotImplementedError:  # a compression method zipfile does not know
                raise BundleFormatError(f"Bundle file {locale} is compressed unreadably") from None
            except (
                zipfile.BadZipFile,
                OSError,
                RuntimeError,
                ValueError,
                EOFError,
                zlib.error,
            ) as exc:
                raise BundleFormatError(f"Bundle file {locale} cannot be read: {exc}") from None
            bundles.setdefault(locale, {}).update(parse_properties(content, locale))
    return bundles
