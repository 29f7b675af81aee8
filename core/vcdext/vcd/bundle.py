"""vCD localization bundles: a zip of ``key=value`` UTF-8 files, one per locale.

A plugin's messages arrive as ``{locale: {key: value}}`` (``{"en_US": {"backupInProgress":
"Backing up {resourceName}"}}``). :func:`make_bundle` turns them into the zip vCD takes, named
by locale code without extension (``en_US``, ``fr_FR``), and a digest of the files' content
(sorted keys, sorted locales), so the digest changes only when a message does. The reconcile
keeps the digest in the service's description and uploads again only when it differs (see
:mod:`vcdext.vcd.model`): vCD offers no way to read a bundle back.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: vCD's limits on one key or value, and on one locale file [doc].
MAX_TEXT = 2000
MAX_FILE = 10 * 1024 * 1024
#: Characters of the digest kept in the service description (64 bits).
DIGEST_LENGTH = 16

_LOCALE = re.compile(r"[a-z]{2,3}(?:_[A-Z]{2})?")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def normalize_locale(locale: str) -> str:
    """``"en-us"`` → ``"en_US"``; raises :class:`ValueError` for anything else than ll[_CC]."""
    parts = locale.strip().replace("-", "_").split("_")
    code = parts[0].lower() + ("_" + parts[1].upper() if len(parts) == 2 else "")
    if len(parts) > 2 or not _LOCALE.fullmatch(code):
        raise ValueError(f"locale {locale!r} is not a code like en_US or fr")
    return code


def _escape(value: str) -> str:
    # java.util.Properties syntax: backslash escapes; a line break would end the entry.
    return (
        value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )


def _check_key(locale: str, key: str) -> None:
    if not key or any(c in key for c in "=: \t\r\n\\#!") or len(key) > MAX_TEXT:
        raise ValueError(
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
            raise ValueError(f"bundle {locale}: the value of {key!r} exceeds {MAX_TEXT} characters")
        lines.append(f"{key}={_escape(value)}\n")
    data = "".join(lines).encode("utf-8")
    if len(data) > MAX_FILE:
        raise ValueError(f"bundle {locale}: the file exceeds {MAX_FILE} bytes")
    return data


@dataclass(frozen=True)
class LocalizationBundle:
    """The zip to upload and its digest. Build it with :func:`make_bundle`."""

    data: bytes = field(repr=False)
    #: The first :data:`DIGEST_LENGTH` hex digits of the SHA-256 of the locale files.
    digest: str
    locales: tuple[str, ...]
    messages: Mapping[str, Mapping[str, str]] = field(repr=False, compare=False)


def make_bundle(messages: Mapping[str, Mapping[str, str]]) -> LocalizationBundle:
    """Build the reproducible zip for ``{locale: {key: value}}``.

    :raises ValueError: a bad locale code, key or value (the message names it).
    """
    files: dict[str, bytes] = {}
    normalized: dict[str, Mapping[str, str]] = {}
    for locale, entries in messages.items():
        code = normalize_locale(locale)
        if code in files:
            raise ValueError(f"bundle: locale {code} is given twice")
        files[code] = properties_file(code, entries)
        normalized[code] = MappingProxyType(dict(entries))
    if not files:
        raise ValueError("bundle: no locale given")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for code in sorted(files):
            info = zipfile.ZipInfo(code, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[code])
    # The digest covers the files, not the zip, so a different zlib cannot change it.
    content = hashlib.sha256()
    for code in sorted(files):
        content.update(f"{code}\0{len(files[code])}\0".encode())
        content.update(files[code])
    digest = content.hexdigest()[:DIGEST_LENGTH]
    return LocalizationBundle(
        buffer.getvalue(), digest, tuple(sorted(files)), MappingProxyType(normalized)
    )
