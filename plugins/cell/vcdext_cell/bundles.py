"""Reading localization bundles: a zip of UTF-8 properties files named by locale.

Each member is named after its locale with no extension (``en_US``, ``fr_FR``); directories
inside the zip are ignored, so ``bundle/en_US`` is ``en_US`` too. Lines are ``key=value`` (or
``key:value``); blank lines and lines starting with ``#`` or ``!`` are comments; a trailing
backslash continues the line; ``\\n``, ``\\t``, ``\\uXXXX`` and escaped separators are decoded as
in Java properties. Keys and values are limited to 2000 characters, files to 10 MB.
"""

from __future__ import annotations

import io
import re
import zipfile

from vcdext.errors import BadRequest

MAX_FILE = 10 * 1024 * 1024
MAX_TEXT = 2000
_LOCALE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?(_[A-Za-z0-9]+)?")
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "f": "\f"}


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
    """One properties file as key → value."""
    out: dict[str, str] = {}
    for line in _logical_lines(content):
        m = re.search(r"(?<!\\)(?:\\\\)*[=:]", line)
        if m is None:
            key, value = line, ""
        else:
            key, value = line[: m.end() - 1], line[m.end() :]
        key, value = _unescape(key.strip()), _unescape(value.strip())
        if not key:
            raise BadRequest(f"{where}: a line has no key")
        if len(key) > MAX_TEXT or len(value) > MAX_TEXT:
            raise BadRequest(f"{where}: key or value of {key[:40]!r} is over {MAX_TEXT} characters")
        out[key] = value
    return out


def read_bundle(data: bytes) -> dict[str, dict[str, str]]:
    """locale → key → value for every file of a bundle zip; raises :class:`BadRequest`."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise BadRequest("The localization bundle is not a zip file") from None
    bundles: dict[str, dict[str, str]] = {}
    with archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            locale = info.filename.rsplit("/", 1)[-1]
            if not _LOCALE.fullmatch(locale):
                raise BadRequest(
                    f"Bundle member {info.filename!r} is not named after a locale (e.g. en_US)"
                )
            if info.file_size > MAX_FILE:
                raise BadRequest(f"Bundle file {locale} is larger than 10 MB")
            try:
                content = archive.read(info).decode("utf-8")
            except UnicodeDecodeError:
                raise BadRequest(f"Bundle file {locale} is not UTF-8") from None
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                raise BadRequest(f"Bundle file {locale} cannot be read: {exc}") from None
            bundles.setdefault(locale, {}).update(parse_properties(content, locale))
    return bundles
